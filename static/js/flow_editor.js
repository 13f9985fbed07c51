// The flow editor's enhancements. The page works without this file: every button posts the whole
// editor and the server renders it again. With it: binding cards collapse and expand in place,
// drag and drop reordering inside a slot, Enter in "Try it" runs instead of saving, and a warning
// before leaving unsaved changes.
(function () {
  "use strict";

  var form = document.getElementById("flow-editor-form");
  if (!form) return;
  var dirty = false;
  var leaving = false;

  function markDirty() {
    dirty = true;
  }

  // With htmx the version select swaps the config form on change; "Show" is the no-JS way.
  function hideShowButtons() {
    if (!window.htmx) return;
    document.querySelectorAll("[data-show-button]").forEach(function (button) {
      button.hidden = true;
    });
  }
  hideShowButtons();
  document.body.addEventListener("htmx:afterSettle", hideShowButtons);

  // A refused save comes back with what went wrong at the top of the editor, while the operator
  // is at the Save button below: bring that summary (or the stale-save box) into view and focus it,
  // so screen readers read it too.
  document.body.addEventListener("flowSaveRefused", function () {
    var notice = document.getElementById("stale-box") || document.getElementById("editor-errors");
    if (!notice) return;
    notice.setAttribute("tabindex", "-1");
    notice.focus({ preventScroll: true });
    notice.scrollIntoView({ block: "start" });
  });

  // --- Collapse and expand binding cards in place. The form only hides: its inputs are still
  // posted, so nothing typed is lost. The card's hidden "expanded" field keeps the choice across
  // the editor's round trips (Add, Move, a version change). Without JS the button posts. ---
  form.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-toggle-binding]");
    if (!button) return;
    event.preventDefault();
    var card = button.closest("li.binding");
    var body = document.getElementById(button.getAttribute("aria-controls"));
    if (!card || !body) return;
    var open = body.hidden;
    body.hidden = !open;
    card.classList.toggle("is-collapsed", !open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
    var label = button.querySelector("[data-toggle-label]");
    if (label) label.textContent = open ? "Collapse" : "Expand";
    var field = card.querySelector("input[data-expanded-field]");
    if (field) field.value = open ? "1" : "0";
    if (!open) refreshSummary(card);
  });

  // The summary line says what the card's controls hold now, not what the page was loaded with.
  function controlText(card, item) {
    var controls = Array.prototype.slice.call(card.querySelectorAll("[name]")).filter(function (el) {
      return el.name === item.dataset.summaryOf;
    });
    var kind = item.dataset.summaryKind;
    if (!controls.length) return null;
    if (kind === "enabled") return controls[0].checked ? "enabled" : "disabled";
    if (kind === "checkbox") return controls[0].checked ? "yes" : "no";
    if (kind === "choices") {
      return controls.filter(function (el) { return el.checked; }).map(function (el) { return el.value; }).join(", ");
    }
    if (kind === "lines") {
      return controls[0].value.split("\n").map(function (line) { return line.trim(); })
        .filter(Boolean).join(", ");
    }
    return controls[0].value.trim();
  }

  function refreshSummary(card) {
    card.querySelectorAll("[data-binding-summary] [data-summary-of]").forEach(function (item) {
      var text = controlText(card, item);
      if (text === null) return;
      item.textContent = text || "—";
      var entry = item.closest(".summary-setting");
      if (entry) entry.classList.toggle("is-empty", !text);
      if (item.dataset.summaryKind === "enabled") {
        item.classList.toggle("status-published", text === "enabled");
        item.classList.toggle("status-disabled", text !== "enabled");
        card.classList.toggle("is-disabled", text !== "enabled");
      }
    });
  }

  function refreshFrom(event) {
    var card = event.target.closest && event.target.closest("li.binding");
    if (card) refreshSummary(card);
  }
  form.addEventListener("input", refreshFrom);
  form.addEventListener("change", refreshFrom);

  // A merged flow comes back with what was merged said at the top of the editor.
  document.body.addEventListener("flowMerged", function () {
    var notice = document.querySelector("#flow-editor .message-info[role=status]");
    if (!notice) return;
    notice.setAttribute("tabindex", "-1");
    notice.focus({ preventScroll: true });
    notice.scrollIntoView({ block: "start" });
  });

  // --- Reorder within a slot by drag and drop; the order lives in the slot's hidden field. ---
  var dragged = null;

  function syncOrder(list) {
    var slot = list.closest("[data-slot]");
    var field = slot && slot.querySelector("input[data-order-field]");
    var items = Array.prototype.slice.call(list.children).filter(function (el) {
      return el.matches("li.binding");
    });
    if (field) {
      field.value = items.map(function (li) { return li.dataset.uid; }).join(",");
    }
    items.forEach(function (li, index) {
      var position = li.querySelector("[data-position]");
      if (position) position.textContent = "#" + (index + 1);
      var up = li.querySelector("[data-move=up]");
      var down = li.querySelector("[data-move=down]");
      if (up) up.disabled = index === 0;
      if (down) down.disabled = index === items.length - 1;
    });
  }

  form.addEventListener("dragstart", function (event) {
    var handle = event.target.closest && event.target.closest("[data-drag-handle]");
    if (!handle) return;
    dragged = handle.closest("li.binding");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.dataset.uid);
    event.dataTransfer.setDragImage(dragged, 16, 16);
    dragged.classList.add("is-dragging");
  });

  form.addEventListener("dragover", function (event) {
    if (!dragged) return;
    var over = event.target.closest && event.target.closest("li.binding");
    // Only within the slot it belongs to: a binding never changes slot.
    if (!over || over.parentElement !== dragged.parentElement) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    if (over === dragged) return;
    // Take the other binding's place once the pointer passes its middle, in the direction of
    // travel, so a binding does not flip back and forth while the pointer rests on it.
    var siblings = Array.prototype.slice.call(over.parentElement.children);
    var movingUp = siblings.indexOf(dragged) > siblings.indexOf(over);
    var box = over.getBoundingClientRect();
    var middle = box.top + box.height / 2;
    if (movingUp && event.clientY < middle) over.parentElement.insertBefore(dragged, over);
    if (!movingUp && event.clientY > middle) over.parentElement.insertBefore(dragged, over.nextSibling);
  });

  form.addEventListener("drop", function (event) {
    if (dragged) event.preventDefault();
  });

  form.addEventListener("dragend", function () {
    if (!dragged) return;
    var list = dragged.parentElement;
    dragged.classList.remove("is-dragging");
    dragged = null;
    syncOrder(list);
    markDirty();
  });

  // --- Enter in a "Try it" box runs the flow rather than saving it. ---
  form.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.target instanceof HTMLInputElement)) return;
    if (!event.target.closest("#try-panel")) return;
    // The whole sign-in is the panel's first button; Enter presses it, as it would in a form.
    var run = document.getElementById("try-sign-in-button");
    if (run) {
      event.preventDefault();
      run.click();
    }
  });

  // --- Unsaved changes: ask before leaving the page. ---
  function trackChange(event) {
    if (event.target.closest && event.target.closest("#try-panel")) return;
    markDirty();
  }
  form.addEventListener("input", trackChange);
  form.addEventListener("change", trackChange);
  form.addEventListener("submit", function () {
    // Without htmx every editor button reloads the page with the whole state posted: nothing is lost.
    if (!window.htmx) leaving = true;
  });
  // "Reload and discard my changes" after a stale save: the operator already chose to leave.
  form.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("a[data-discard-changes]")) leaving = true;
  });
  document.body.addEventListener("htmx:beforeOnLoad", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.getResponseHeader("HX-Redirect")) leaving = true;
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty && !leaving) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();
