// Quota editor: keyboard movement between cells and pasting blocks copied from Excel.
// Saving a single cell is plain htmx (hx-post on change); this file adds only what htmx cannot.
(function () {
  "use strict";

  function grid() {
    return document.querySelector("table.quota-grid");
  }

  function cellInput(row, column) {
    const table = grid();
    return table && table.querySelector(`.quota-input[data-row="${row}"][data-column="${column}"]`);
  }

  function focusCell(row, column) {
    const target = cellInput(row, column);
    if (target) {
      target.focus();
      target.select();
    }
    return Boolean(target);
  }

  // Arrow keys move between cells when the caret is at the text's edge; Enter moves down like Excel.
  document.addEventListener("keydown", (event) => {
    const input = event.target;
    if (!input.matches || !input.matches(".quota-input")) {
      return;
    }
    const row = Number(input.dataset.row);
    const column = Number(input.dataset.column);
    const atStart = input.selectionStart === 0 && input.selectionEnd === 0;
    const atEnd = input.selectionStart === input.value.length;
    const moves = {
      ArrowUp: [row - 1, column],
      ArrowDown: [row + 1, column],
      Enter: [event.shiftKey ? row - 1 : row + 1, column],
      ArrowLeft: atStart ? [row, column - 1] : null,
      ArrowRight: atEnd ? [row, column + 1] : null,
    };
    const move = moves[event.key];
    if (!move) {
      return;
    }
    if (event.key === "Enter") {
      // Enter saves like leaving the cell does; the change event fires on blur.
      event.preventDefault();
    }
    if (focusCell(move[0], move[1])) {
      event.preventDefault();
    }
  });

  // A paste with tabs or line breaks is a block: the server validates every cell and saves all or none.
  document.addEventListener("paste", (event) => {
    const input = event.target;
    if (!input.matches || !input.matches(".quota-input") || !window.htmx) {
      return;
    }
    const text = (event.clipboardData || window.clipboardData).getData("text");
    if (!/[\t\n]/.test(text.replace(/[\r\n]+$/, ""))) {
      return;
    }
    event.preventDefault();
    const context = new FormData(document.getElementById("quota-context"));
    const values = Object.fromEntries(context.entries());
    values.subject = input.dataset.subject;
    values.period = input.dataset.period;
    values.block = text;
    window.htmx.ajax("POST", grid().dataset.pasteUrl, { target: "#quota-grid", swap: "outerHTML", values: values });
  });

  // The reason field sits in a form only to be included in requests; Enter must not submit it.
  // The upload and template forms lie outside the grid that htmx swaps, so their query string
  // is rewritten from the grid's current year, granularity, level and metric before they are sent.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.id === "quota-context") {
      event.preventDefault();
      return;
    }
    const context = document.getElementById("quota-context");
    if (!form.matches("form[data-grid-query]") || !context) {
      return;
    }
    const query = new URLSearchParams();
    for (const name of ["year", "granularity", "level", "metric"]) {
      const input = context.elements.namedItem(name);
      if (input) {
        query.set(name, input.value);
      }
    }
    const action = new URL(form.action, window.location.href);
    action.search = query.toString();
    form.action = action.toString();
  });
})();
