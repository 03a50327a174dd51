// Behaviour kept out of inline attributes so a strict Content-Security-Policy holds.
document.addEventListener("change", (event) => {
  if (event.target.matches("[data-autosubmit]")) {
    event.target.form.requestSubmit();
  }
});
