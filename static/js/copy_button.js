// Copy buttons: <button data-copy-target="<id of a field>" hidden> next to a read-only field,
// such as a new API token. Without this file the button stays hidden and the field can be
// selected and copied by hand. Listeners sit on the document, so buttons htmx swaps in work too.
(function () {
  "use strict";

  function revealButtons() {
    document.querySelectorAll("button[data-copy-target][hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }

  function say(button, text) {
    var status = button.parentElement && button.parentElement.querySelector("[data-copy-status]");
    if (status) status.textContent = text;
  }

  // The Clipboard API needs a secure context and a permission; selecting the text and running
  // the older copy command covers the rest, and selecting alone still lets Ctrl+C work.
  function copyBySelecting(field, button) {
    field.focus();
    field.select();
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    say(button, copied ? "Copied" : "Selected: press Ctrl+C (⌘C) to copy");
  }

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("button[data-copy-target]") : null;
    if (!button) return;
    var field = document.getElementById(button.dataset.copyTarget);
    if (!field) return;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(
        function () {
          say(button, "Copied");
        },
        function () {
          copyBySelecting(field, button);
        }
      );
    } else {
      copyBySelecting(field, button);
    }
  });

  revealButtons();
  document.addEventListener("htmx:load", revealButtons);
})();
