// Runs in <head>, before the first paint: applies the remembered theme so a dark page never
// flashes light. The key and values are the ones Django's admin uses ("theme": auto | light |
// dark), so the app and the admin share one choice. "auto" (or none) follows the system.
(function () {
  "use strict";
  var theme = null;
  try { theme = window.localStorage.getItem("theme"); } catch (e) { /* storage blocked */ }
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else document.documentElement.dataset.theme = "auto";
  document.documentElement.classList.add("js");
})();
