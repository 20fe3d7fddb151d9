// docqa chat page: Enter sends, Copy, keep the newest text in view. Streaming itself is
// htmx's SSE extension; this only adds what htmx has no attribute for.
(function () {
  "use strict";

  function log() { return document.getElementById("chat-log"); }

  function nearBottom() {
    var doc = document.scrollingElement || document.documentElement;
    return doc.scrollHeight - doc.scrollTop - window.innerHeight < 160;
  }

  function toBottom() {
    var doc = document.scrollingElement || document.documentElement;
    doc.scrollTop = doc.scrollHeight;
  }

  // Enter sends; Shift+Enter is a new line; Enter while an IME is composing (pinyin) is not a send.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (!target || target.id !== "question-input") return;
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    if (target.value.trim() && target.form) target.form.requestSubmit();
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-role=copy]");
    if (!button) return;
    var answer = button.closest("[data-role=answer]");
    var source = answer && answer.querySelector(".chat-answer-source");
    if (!source) return;
    var text = source.value;
    var done = function () {
      var label = button.textContent;
      button.textContent = button.dataset.copied || label;
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {
      source.hidden = false; source.select(); document.execCommand("copy"); source.hidden = true; done();
    }
  });

  // Code blocks get a Copy button (added after every render: a streaming answer's HTML is
  // replaced as it grows). Labels come from the log's data attributes, translated there.
  function codeButtons(root) {
    var container = log();
    if (!root || !container) return;
    root.querySelectorAll(".chat-markdown pre").forEach(function (pre) {
      if (pre.querySelector(".chat-code-copy")) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "chat-code-copy";
      button.dataset.role = "copy-code";
      button.textContent = container.dataset.copyLabel || "Copy";
      pre.appendChild(button);
    });
  }

  function copyText(text, done) {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
      return;
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed"; area.style.opacity = "0";
    document.body.appendChild(area); area.select(); document.execCommand("copy"); area.remove(); done();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-role=copy-code]");
    if (!button) return;
    var code = button.parentNode.querySelector("code") || button.parentNode;
    var text = code === button.parentNode ? code.textContent.replace(button.textContent, "") : code.textContent;
    copyText(text, function () {
      var container = log();
      var label = button.textContent;
      button.textContent = (container && container.dataset.copiedLabel) || label;
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  ["htmx:afterSettle", "htmx:sseMessage"].forEach(function (name) {
    document.addEventListener(name, function () { codeButtons(log()); });
  });

  // Follow the answer as it grows, unless the reader scrolled up to read something else.
  var following = true;
  window.addEventListener("scroll", function () { following = nearBottom(); }, { passive: true });
  document.addEventListener("htmx:sseMessage", function () { if (following) toBottom(); });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail && event.detail.target === log()) { following = true; toBottom(); }
    if (event.detail && event.detail.target && event.detail.target.id === "ask-form") {
      var input = document.getElementById("question-input");
      if (input) input.focus();
    }
  });
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.detail && event.detail.target && event.detail.target.id === "ask-form") {
      var input = document.getElementById("question-input");
      if (input) input.focus();
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    codeButtons(log());
    if (log() && log().querySelector("[data-role=answer]")) toBottom();
  });
})();
