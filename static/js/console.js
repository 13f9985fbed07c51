// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // Tenant switcher: navigate as soon as another tenant is chosen.
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!(select instanceof HTMLSelectElement) || !select.closest("[data-tenant-switcher]")) return;
    var option = select.options[select.selectedIndex];
    if (option && option.dataset.url) window.location.assign(option.dataset.url);
  });

  // A box whose text scrolls (code, JSON, a wide table on a phone) gets a tab stop, so it can be
  // scrolled with the arrow keys; a box that fits gets none, and keeps the tab order short.
  var scrollBoxes = "pre, table.data";
  function focusScrollingBoxes() {
    document.querySelectorAll(scrollBoxes).forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth || box.scrollHeight > box.clientHeight;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.tabIndex = 0;
        box.dataset.scrollFocus = "";
      } else if (!scrolls && box.hasAttribute("data-scroll-focus")) {
        box.removeAttribute("tabindex");
        box.removeAttribute("data-scroll-focus");
      }
    });
  }
  var pending = false;
  function soon() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () { pending = false; focusScrollingBoxes(); });
  }
  focusScrollingBoxes();
  window.addEventListener("resize", soon);
  document.addEventListener("htmx:afterSettle", soon);
  document.addEventListener("toggle", soon, true);  // a <details> opened shows its boxes
})();
