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

// Versions, Ask ⇄ Stop, Esc, the sidebar's filter and the one-time announcement of a finished
// answer (issue 14).
(function () {
  "use strict";

  function log() { return document.getElementById("chat-log"); }

  function streamingAnswer() {
    var container = log();
    return container && container.querySelector("[data-role=answer][data-state=streaming]");
  }

  // ‹ n/m ›: the versions of one question's answer; the latest shows first.
  function versionItems(group) {
    return Array.from(group.children).filter(function (el) { return !el.matches("[data-role=version-nav]"); });
  }

  function shownAnswerIds() {
    var ids = [];
    document.querySelectorAll("[data-role=versions]").forEach(function (group) {
      var shown = versionItems(group).filter(function (el) { return !el.hidden; })[0];
      var answer = shown && (shown.matches("[data-role=answer]") ? shown : shown.querySelector("[data-role=answer]"));
      if (answer) ids.push(answer.dataset.answerId);
    });
    return ids;
  }

  function syncExport() {
    var link = document.querySelector("[data-role=export]");
    if (!link) return;
    var base = link.getAttribute("href").split("?")[0];
    var ids = shownAnswerIds();
    link.setAttribute("href", ids.length ? base + "?answers=" + ids.join(",") : base);
  }

  function showVersion(group, index) {
    var items = versionItems(group);
    if (!items.length) return;
    index = Math.max(0, Math.min(items.length - 1, index));
    items.forEach(function (el, i) { el.hidden = i !== index; });
    var label = group.querySelector("[data-role=version-label]");
    if (label) label.textContent = (index + 1) + "/" + items.length;
    var prev = group.querySelector("[data-role=version-prev]");
    var next = group.querySelector("[data-role=version-next]");
    if (prev) prev.disabled = index === 0;
    if (next) next.disabled = index === items.length - 1;
    syncExport();
  }

  function setupVersions(root) {
    (root || document).querySelectorAll("[data-role=versions]").forEach(function (group) {
      var items = versionItems(group);
      var shown = items.findIndex(function (el) { return !el.hidden; });
      showVersion(group, shown < 0 ? items.length - 1 : shown);
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-role=version-prev], [data-role=version-next]");
    if (!button) return;
    var group = button.closest("[data-role=versions]");
    var items = versionItems(group);
    var current = items.findIndex(function (el) { return !el.hidden; });
    showVersion(group, current + (button.dataset.role === "version-next" ? 1 : -1));
  });

  // Ask becomes Stop while an answer is being written.
  function syncComposer() {
    var ask = document.querySelector("[data-role=ask]");
    var stop = document.querySelector("[data-role=composer-stop]");
    if (!ask || !stop) return;
    var streaming = !!streamingAnswer();
    ask.hidden = streaming;
    stop.hidden = !streaming;
  }

  function stopStreaming() {
    var answer = streamingAnswer();
    var button = answer && answer.querySelector("[data-role=stop]");
    if (button) { button.click(); return true; }
    return false;
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-role=composer-stop]")) stopStreaming();
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    if (document.querySelector("dialog[open]")) return;
    if (streamingAnswer() && stopStreaming()) event.preventDefault();
  });

  // A finished answer is announced once (the log itself is not a live region: it would read
  // every token); what was streaming and now is not gets read.
  var watching = {};
  function announce() {
    var container = log();
    var region = document.querySelector("[data-role=announce]");
    if (!container || !region) return;
    Object.keys(watching).forEach(function (id) {
      var answer = document.getElementById("answer-" + id);
      if (answer && answer.dataset.state !== "streaming") {
        delete watching[id];
        var text = answer.querySelector("[data-role=answer-text]");
        region.textContent = text ? text.textContent.trim().slice(0, 4000) : "";
      }
    });
    container.querySelectorAll("[data-role=answer][data-state=streaming]").forEach(function (answer) {
      watching[answer.dataset.answerId] = true;
    });
  }

  function changed() { syncComposer(); announce(); }

  // The sidebar's box filters the recent conversations as you type; Enter searches them all.
  document.addEventListener("input", function (event) {
    if (event.target.id !== "sidebar-search") return;
    var query = event.target.value.trim().toLowerCase();
    document.querySelectorAll("[data-role=sidebar-list] li").forEach(function (item) {
      item.hidden = query && item.textContent.toLowerCase().indexOf(query) === -1;
    });
  });

  function start() {
    var container = log();
    if (!container) return;
    setupVersions(document);
    changed();
    new MutationObserver(changed).observe(container, {
      childList: true, subtree: true, attributes: true, attributeFilter: ["data-state"],
    });
    document.addEventListener("htmx:afterSettle", function (event) {
      setupVersions(event.target && event.target.closest ? event.target.closest("#chat-log") || document : document);
      changed();
    });
    var input = document.getElementById("question-input");
    if (input && document.activeElement !== input) input.focus();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
