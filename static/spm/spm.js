// Behaviour kept out of inline attributes so a strict Content-Security-Policy holds.
document.addEventListener("change", (event) => {
  if (event.target.matches("[data-autosubmit]")) {
    event.target.form.requestSubmit();
  }
});

// Undefined KPI values ("–") explain themselves in a tooltip on hover and on keyboard focus.
function initUndefinedTooltips(root) {
  if (!window.bootstrap || !root || !root.querySelectorAll) {
    return;
  }
  root.querySelectorAll(".undefined-value[title]").forEach((element) => {
    window.bootstrap.Tooltip.getOrCreateInstance(element);
  });
}

document.addEventListener("DOMContentLoaded", () => initUndefinedTooltips(document));
document.addEventListener("htmx:afterSettle", (event) => initUndefinedTooltips(event.detail.elt));
