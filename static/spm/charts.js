// Draws every Plotly figure on the page from its JSON <script> (built by dashboards/charts.py).
// Loaded as a file, not inline, so a strict Content-Security-Policy holds.
(function () {
  "use strict";

  // The Plotly locale that dashboards/plotly_locale.py renders into #plotly-locale; without it Plotly's
  // toolbar stays English. Passed in each chart's config, so Plotly fills missing format keys from "en".
  function localeConfig() {
    var source = document.getElementById("plotly-locale");
    if (!source) {
      return {};
    }
    var locale = JSON.parse(source.textContent);
    var locales = {};
    locales[locale.name] = { dictionary: locale.dictionary, format: locale.format };
    return { locale: locale.name, locales: locales };
  }

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
      var config = Object.assign(localeConfig(), {
        responsive: true,
        displaylogo: false,
        // plotly.js 4.1 shows "Share chart..." by default, an upload to a Chart Studio server that SPM does not use.
        showSendToCloud: false,
        modeBarButtonsToRemove: ["select2d", "lasso2d"],
      });
      // newPlot replaces whatever a history snapshot left in the element.
      window.Plotly.newPlot(element, figure.data, figure.layout, config);
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
