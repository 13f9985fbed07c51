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
})();
