// The admin UI's one script: small conveniences; every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // a "select all" box ticks every box of its name
  for (const all of document.querySelectorAll("input[data-select-all]")) {
    all.addEventListener("change", () => {
      const name = all.dataset.selectAll;
      for (const box of document.querySelectorAll(`input[type=checkbox][name="${name}"]`)) {
        box.checked = all.checked;
      }
    });
  }
  // a window or store picker applies itself at once
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
});
