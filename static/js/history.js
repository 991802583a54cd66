/* The history's "Compare": enabled while 2 to N sessions are ticked (the server checks it too). */
(function () {
  "use strict";
  function update(form) {
    var max = parseInt(form.dataset.compareMax, 10) || 4;
    var ticked = form.querySelectorAll("[data-compare-pick]:checked").length;
    var button = form.querySelector("[data-compare-button]");
    var hint = form.querySelector("[data-compare-hint]");
    if (button) { button.disabled = ticked < 2 || ticked > max; }
    if (hint) { hint.textContent = ticked > max ? "At most " + max + " sessions." : ticked + " ticked; tick 2 to " + max + " sessions."; }
  }
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("[data-compare-form]");
    if (form) { update(form); }
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-compare-form]").forEach(update);
  });
})();
