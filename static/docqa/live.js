// When a live (SSE) connection opens or re-opens, refresh what may have changed while it was
// closed: htmx's SSE extension opens a new EventSource on reconnect, which sends no
// Last-Event-ID, so events sent in the gap would otherwise be missed.
(function () {
  "use strict";
  document.body.addEventListener("htmx:sseOpen", function (event) {
    const root = event.target;
    const elements = Array.from(root.querySelectorAll("[data-live-resync]"));
    if (root.matches("[data-live-resync]")) elements.push(root);
    elements.forEach(function (element) {
      window.htmx.trigger(element, "docqa:resync");
    });
  });
})();
