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

// Category suggestions from the description (the list's keywords, served by /api/categories/suggest).
(function () {
  var box = document.querySelector('[data-suggest]');
  var out = document.getElementById('suggestions');
  if (!box || !out) return;
  var select = document.getElementById(box.getAttribute('data-suggest'));
  var zh = document.documentElement.lang === 'zh-CN';
  var timer = null;
  box.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var text = box.value.trim();
      if (!text) { out.textContent = ''; return; }
      fetch('/api/categories/suggest?limit=3&text=' + encodeURIComponent(text))
        .then(function (r) { return r.ok ? r.json() : { suggestions: [] }; })
        .then(function (data) {
          out.textContent = '';
          if (!data.suggestions.length) return;
          var label = document.createElement('span');
          label.textContent = out.getAttribute('data-label') + ' ';
          out.appendChild(label);
          data.suggestions.forEach(function (s) {
            var b = document.createElement('button');
            b.type = 'button';
            b.className = 'chip';
            b.textContent = zh ? s.name_zh : s.name_en;
            b.addEventListener('click', function () { select.value = s.code; });
            out.appendChild(b);
          });
        });
    }, 300);
  });
})();
