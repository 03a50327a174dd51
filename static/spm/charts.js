// Draws every Plotly figure on the page from its JSON <script> (built by dashboards/charts.py).
// Loaded as a file, not inline, so a strict Content-Security-Policy holds.
(function () {
  "use strict";

  function renderCharts(root) {
    if (!window.Plotly || !root || !root.querySelectorAll) {
      return;
    }
    root.querySelectorAll("[data-plotly-figure]").forEach(function (element) {
      var source = document.getElementById(element.dataset.plotlyFigure);
      if (!source) {
        return;
      }
      var figure = JSON.parse(source.textContent);
      // newPlot replaces whatever a history snapshot left in the element.
      window.Plotly.newPlot(element, figure.data, figure.layout, {
        responsive: true,
        displaylogo: false,
        modeBarButtonsToRemove: ["select2d", "lasso2d"],
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    renderCharts(document);
  });
  // htmx swaps the KPI content on a period change, and restores it from its history cache on "back".
  document.addEventListener("htmx:afterSettle", function (event) {
    renderCharts(event.detail.elt);
  });
  document.addEventListener("htmx:historyRestore", function () {
    renderCharts(document);
  });
})();
