// The shell around every page: the theme switch, keyboard shortcuts (Ctrl/⌘+K new chat, `/`
// search, `?` help), drop files anywhere. Page scripts (chat.js, upload.js) add their own.
(function () {
  "use strict";
  var root = document.documentElement;
  var ORDER = ["auto", "light", "dark"];

  function storedTheme() {
    try { return window.localStorage.getItem("theme") || "auto"; } catch (e) { return "auto"; }
  }

  function showTheme(button) {
    var theme = root.dataset.theme || "auto";
    button.textContent = button.dataset["label" + theme.charAt(0).toUpperCase() + theme.slice(1)] || theme;
    button.setAttribute("data-theme-value", theme);
  }

  function setupTheme() {
    var button = document.querySelector("[data-role=theme-toggle]");
    if (!button) return;
    root.dataset.theme = storedTheme();
    button.hidden = false;
    showTheme(button);
    button.addEventListener("click", function () {
      var next = ORDER[(ORDER.indexOf(root.dataset.theme || "auto") + 1) % ORDER.length];
      root.dataset.theme = next;
      try { window.localStorage.setItem("theme", next); } catch (e) { /* not remembered */ }
      showTheme(button);
    });
  }

  function editable(element) {
    if (!element) return false;
    var tag = element.tagName;
    return element.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  function searchBox() {
    return document.querySelector("[data-role=search-input]");
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) return;
    var key = event.key;
    if ((event.ctrlKey || event.metaKey) && !event.altKey && (key === "k" || key === "K")) {
      event.preventDefault();
      window.location.assign(document.body.dataset.newChatUrl);
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || editable(event.target)) return;
    if (key === "/") {
      var search = searchBox();
      if (search) {
        event.preventDefault();
        var drawer = search.closest("details");
        if (drawer) drawer.open = true;
        search.focus();
        search.select();
      }
    } else if (key === "?") {
      var dialog = document.getElementById("shortcuts");
      if (dialog && !dialog.open && dialog.showModal) {
        event.preventDefault();
        dialog.showModal();
      }
    }
  });

  // A <details> menu or drawer closes with Esc and after following a link in it.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.querySelector("details.menu[open], details.drawer[open]:not(.drawer-pinned)");
    if (open && open.contains(document.activeElement)) {
      open.open = false;
      var summary = open.querySelector("summary");
      if (summary) summary.focus();
    }
  });

  // Notes that can be dismissed (upload failures and duplicates, messages).
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-role=dismiss]");
    if (!button) return;
    var item = button.closest("[data-dismissable]");
    if (item) item.remove();
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setupTheme);
  else setupTheme();
})();
