// Uploads each chosen or dropped file in its own request, so every file gets a progress bar,
// then puts the server's row for it into the table (where htmx keeps it live over SSE).
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("upload-input");
  const progressList = document.getElementById("upload-progress");
  const rows = document.getElementById("document-rows");
  const maxBytes = parseInt(form.dataset.maxBytes, 10);
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const PARALLEL = 3;
  const queue = [];
  let active = 0;

  function addProgressItem(file) {
    const item = document.createElement("li");
    item.className = "upload-item";
    const name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    const note = document.createElement("span");
    note.className = "upload-note";
    item.append(name, bar, note);
    progressList.prepend(item);
    return { item, bar, note };
  }

  // Failure and duplicate notes stay until dismissed (shell.js removes [data-dismissable]).
  function dismissable(item) {
    if (item.querySelector("[data-role=dismiss]")) return;
    item.setAttribute("data-dismissable", "");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "dismiss";
    button.dataset.role = "dismiss";
    button.setAttribute("aria-label", form.dataset.dismissLabel || "Dismiss");
    button.textContent = "×";
    item.prepend(button);
  }

  function placeRows(container) {
    container.querySelectorAll("template[data-row-for]").forEach(function (template) {
      const row = template.content.firstElementChild;
      const existing = document.getElementById(row.id);
      if (existing) {
        existing.replaceWith(row);
      } else {
        const empty = rows.querySelector(".empty-row");
        if (empty) empty.remove();
        rows.prepend(row);
      }
      if (window.htmx) {
        window.htmx.process(row);
        // Its status may have moved on between rendering and now, before the row listened
        // for live events: fetch it once more now that it listens.
        if (row.hasAttribute("data-live-resync")) window.htmx.trigger(row, "docqa:resync");
      }
    });
  }

  function upload(file, ui) {
    active += 1;
    const data = new FormData();
    data.append("csrfmiddlewaretoken", csrf);
    data.append("files", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) ui.bar.value = Math.round((event.loaded / event.total) * 100);
    });
    xhr.addEventListener("load", function () {
      const container = document.createElement("div");
      if (xhr.getResponseHeader("Content-Type") && xhr.getResponseHeader("Content-Type").indexOf("text/html") === 0) {
        container.innerHTML = xhr.responseText;
      }
      const errors = container.querySelectorAll(".upload-error");
      const notes = container.querySelectorAll(".upload-note");
      if (xhr.status >= 400 || errors.length) {
        ui.item.classList.add("failed");
        ui.note.textContent = errors.length ? Array.from(errors).map((e) => e.textContent).join(" ")
          : (xhr.responseText && xhr.status === 413 ? xhr.responseText : form.dataset.failed + " (" + xhr.status + ")");
        ui.note.setAttribute("role", "alert");
        dismissable(ui.item);
      } else {
        ui.bar.value = 100;
        ui.item.classList.add("done");
        ui.note.textContent = Array.from(notes).map((e) => e.textContent).join(" ");
        if (ui.note.textContent) dismissable(ui.item);
        if (!ui.note.textContent) {
          ui.note.textContent = "✓ " + form.dataset.done;
          setTimeout(function () { ui.item.remove(); }, 3000);
        }
      }
      placeRows(container);
      next();
    });
    xhr.addEventListener("error", function () {
      ui.item.classList.add("failed");
      ui.note.textContent = form.dataset.network;
      ui.note.setAttribute("role", "alert");
      dismissable(ui.item);
      next();
    });
    xhr.send(data);
  }

  function next() {
    active -= 1;
    pump();
  }

  function pump() {
    while (active < PARALLEL && queue.length) {
      const job = queue.shift();
      upload(job.file, job.ui);
    }
  }

  function enqueue(files) {
    Array.from(files).forEach(function (file) {
      const ui = addProgressItem(file);
      if (file.size > maxBytes) {
        ui.item.classList.add("failed");
        ui.note.textContent = "“" + file.name + "” " + form.dataset.tooLarge;
        ui.note.setAttribute("role", "alert");
        dismissable(ui.item);
        return;
      }
      queue.push({ file, ui });
    });
    pump();
  }

  input.addEventListener("change", function () {
    enqueue(input.files);
    input.value = "";
  });
  // Files dropped anywhere on the page upload (not only on the dashed box), and so do files
  // pasted from the clipboard (outside text fields).
  function hasFiles(event) {
    return event.dataTransfer && Array.from(event.dataTransfer.types || []).indexOf("Files") !== -1;
  }
  ["dragenter", "dragover"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      if (!hasFiles(event)) return;
      event.preventDefault();
      document.body.classList.add("dragging");
    });
  });
  document.addEventListener("dragleave", function (event) {
    if (!event.relatedTarget) document.body.classList.remove("dragging");
  });
  document.addEventListener("drop", function (event) {
    document.body.classList.remove("dragging");
    if (!hasFiles(event)) return;
    event.preventDefault();
    if (event.dataTransfer.files.length) enqueue(event.dataTransfer.files);
  });
  document.addEventListener("paste", function (event) {
    const target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable)) return;
    const files = event.clipboardData && event.clipboardData.files;
    if (files && files.length) {
      event.preventDefault();
      enqueue(files);
    }
  });
})();
