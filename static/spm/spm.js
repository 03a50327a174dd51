// Behaviour kept out of inline attributes so a strict Content-Security-Policy holds.
document.addEventListener("change", (event) => {
  if (event.target.matches("[data-autosubmit]")) {
    event.target.form.requestSubmit();
  }
});

// The language switch returns to the address shown now: htmx may have pushed filters into it
// since the page, and the form's `next` value, were rendered.
document.addEventListener("submit", (event) => {
  const next = event.target.querySelector("input[name=next][data-current-location]");
  if (next) {
    next.value = window.location.pathname + window.location.search;
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

// The pipeline's "as of" day belongs to the period: picking another period moves it to that period's
// first day, the server's default, instead of sending the old day along. Capture runs this before
// htmx reads the form.
document.addEventListener(
  "change",
  (event) => {
    const select = event.target;
    if (!select.matches("select[name=period]") || !select.form) {
      return;
    }
    const asOf = select.form.querySelector("input[name=as_of]");
    const start = select.selectedOptions[0]?.dataset.start;
    if (asOf && start) {
      asOf.value = start;
    }
  },
  true,
);

// htmx 2 (2.0.10 here) swaps no 4xx response by default (htmx.config.responseHandling). The
// views return 400 and a fragment for the request's hx-target when htmx sends an invalid filter
// or form, so 400 and 422 are swapped, while 403, 404 and 5xx responses still leave the page as
// it is. base.html loads htmx before this file, and both run before htmx sends its first request
// on DOMContentLoaded.
// NOTE: Django's own 400 page (for a SuspiciousOperation) is a whole page and is swapped in too.
if (window.htmx) {
  window.htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "^(400|422)$", swap: true, error: false },
    { code: "[45]..", swap: false, error: true },
  ];
}

// htmx restores Back and Forward from snapshots of the page's HTML, taken when the page leaves an
// address. The HTML keeps a select's or input's value as the page was rendered, and by the time
// of the snapshot the user has already changed the control that triggered the navigation. So each
// time htmx pushes a new address, the controls' values, which now match that address, are written
// into the HTML, and the snapshot taken on leaving it restores them. (Loading the address again
// instead fails for a page that a rejected form POST rendered, whose address accepts only POST.)
function controlValuesToHtml() {
  document.querySelectorAll("select").forEach((select) => {
    select.querySelectorAll("option").forEach((option) => option.toggleAttribute("selected", option.selected));
  });
  document.querySelectorAll("input").forEach((input) => {
    if (input.type === "checkbox" || input.type === "radio") {
      input.toggleAttribute("checked", input.checked);
    } else if (input.type !== "file" && input.type !== "password") {
      input.setAttribute("value", input.value);
    }
  });
  document.querySelectorAll("textarea").forEach((textarea) => {
    textarea.textContent = textarea.value;
  });
}

document.addEventListener("htmx:pushedIntoHistory", controlValuesToHtml);
document.addEventListener("htmx:replacedInHistory", controlValuesToHtml);
