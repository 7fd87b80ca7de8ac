// Live deadline countdown: colours a due time by urgency (no external scripts).
(function () {
  function tick() {
    var now = Date.now();
    document.querySelectorAll('[data-due]').forEach(function (el) {
      var due = Date.parse(el.getAttribute('data-due'));
      if (isNaN(due)) return;
      var left = due - now;
      el.classList.toggle('overdue', left < 0);
      el.classList.toggle('soon', left >= 0 && left < 4 * 3600 * 1000);
    });
  }
  tick();
  setInterval(tick, 30000);
})();
