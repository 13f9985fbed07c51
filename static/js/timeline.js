// The timeline chart as one tab stop: Tab enters it on one bar or marker and leaves it on the next;
// the arrow keys, Home and End move between bars and markers in time order; Enter opens one. The
// table under the chart holds the same figures for anyone who prefers it (and for pages without
// this file, where every bar keeps its own tab stop).
(function () {
  "use strict";
  var items = "a.tl-bar, a.tl-marker";

  function when(item) {
    return Date.parse(item.dataset.start || item.dataset.at || "") || 0;
  }

  function ordered(chart) {
    return Array.prototype.slice.call(chart.querySelectorAll(items)).sort(function (a, b) {
      return when(a) - when(b);
    });
  }

  function rove(chart, target) {
    ordered(chart).forEach(function (item) {
      item.setAttribute("tabindex", item === target ? "0" : "-1");
    });
  }

  function setUp(root) {
    (root || document).querySelectorAll("svg.timeline-chart").forEach(function (chart) {
      if (chart.dataset.roving) return;
      chart.dataset.roving = "";
      var all = ordered(chart);
      if (!all.length) return;
      rove(chart, all[0]);
      chart.addEventListener("focusin", function (event) {
        var item = event.target.closest && event.target.closest(items);
        if (item) rove(chart, item);
      });
      chart.addEventListener("keydown", function (event) {
        var list = ordered(chart);
        var at = list.indexOf(event.target.closest && event.target.closest(items));
        if (at < 0) return;
        var next = { ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1, Home: 0, End: list.length - 1 }[event.key];
        if (next === undefined) return;
        event.preventDefault();
        var target = list[Math.max(0, Math.min(list.length - 1, next))];
        rove(chart, target);
        target.focus();
      });
    });
  }

  setUp(document);
  document.addEventListener("htmx:afterSwap", function (event) {
    setUp(event.target);
  });
})();
