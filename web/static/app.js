// Live deadline countdown: colours a due time by urgency and writes the time left (or overdue) into
// its .left span, in the page's language (the words come from the catalogue via <body data-due-*>).
(function () {
  var body = document.body;
  var units = (body.getAttribute('data-due-units') || 'd,h,min').split(',');
  function span(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var d = Math.floor(minutes / 1440), h = Math.floor(minutes % 1440 / 60), m = minutes % 60;
    if (d) return d + units[0] + (h ? ' ' + h + units[1] : '');
    if (h) return h + units[1] + (m ? ' ' + m + units[2] : '');
    return m + units[2];
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll('[data-due]').forEach(function (el) {
      var due = Date.parse(el.getAttribute('data-due'));
      if (isNaN(due)) return;
      var left = due - now;
      el.classList.toggle('overdue', left < 0);
      el.classList.toggle('soon', left >= 0 && left < 4 * 3600 * 1000);
      var out = el.querySelector('.left');
      if (out) {
        var pattern = body.getAttribute(left < 0 ? 'data-due-late' : 'data-due-left') || '{}';
        out.textContent = '(' + pattern.replace('{}', span(left)) + ')';
      }
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

// Open reports of the same category near the resident's place (/api/events/nearby), so they can
// follow one ("me too": POST /api/events/<id>/follow, with the phone typed in the form, if any)
// instead of reporting it again. The list shows no receipt codes. The form works the same without this.
(function () {
  var box = document.getElementById('nearby');
  var category = document.getElementById('category');
  var grid = document.getElementById('grid');
  var address = document.getElementById('address');
  var phone = document.getElementById('phone');
  if (!box || !category || !grid) return;
  var timer = null;
  function say(pattern, n) { return (pattern || '').replace('{n}', n); }
  function follow(e, button, meta) {
    button.disabled = true;
    fetch('/api/events/' + encodeURIComponent(e.event_id) + '/follow', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ phone: phone && phone.checkValidity() ? phone.value.trim() : '' })
    }).then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
      .then(function (data) {
        var done = document.createElement('span');
        done.className = 'hint';
        done.setAttribute('role', 'status');
        done.textContent = ' ' + say(box.getAttribute('data-followed'), data.followers);
        button.replaceWith(done);
        meta.textContent = say(box.getAttribute('data-followers'), data.followers);
      })
      .catch(function () {
        button.disabled = false;
        button.textContent = box.getAttribute('data-failed');
      });
  }
  function look() {
    var params = 'category=' + encodeURIComponent(category.value) + '&grid=' + encodeURIComponent(grid.value) +
      '&address=' + encodeURIComponent(address ? address.value.trim() : '');
    if (!category.value || (!grid.value && !(address && address.value.trim()))) { box.hidden = true; box.textContent = ''; return; }
    fetch('/api/events/nearby?' + params)
      .then(function (r) { return r.ok ? r.json() : { events: [] }; })
      .then(function (data) {
        box.textContent = '';
        if (!data.events || !data.events.length) { box.hidden = true; return; }
        var h = document.createElement('strong');
        h.textContent = box.getAttribute('data-title');
        box.appendChild(h);
        var p = document.createElement('p');
        p.className = 'hint';
        p.textContent = box.getAttribute('data-help');
        box.appendChild(p);
        var ul = document.createElement('ul');
        data.events.forEach(function (e) {
          var li = document.createElement('li');
          var state = document.createElement('span');
          state.className = 'badge';
          state.textContent = e.state_label;
          var text = document.createElement('span');
          text.textContent = ' ' + e.created + ' · ' + e.description + ' ';
          var meta = document.createElement('span');
          meta.className = 'hint';
          meta.textContent = e.followers ? say(box.getAttribute('data-followers'), e.followers) : '';
          var button = document.createElement('button');
          button.type = 'button';
          button.className = 'secondary metoo';
          button.textContent = box.getAttribute('data-metoo');
          button.addEventListener('click', function () { follow(e, button, meta); });
          li.appendChild(state); li.appendChild(text); li.appendChild(meta); li.appendChild(document.createTextNode(' '));
          li.appendChild(button);
          ul.appendChild(li);
        });
        box.appendChild(ul);
        box.hidden = false;
      });
  }
  function later() { clearTimeout(timer); timer = setTimeout(look, 300); }
  category.addEventListener('change', look);
  grid.addEventListener('change', look);
  if (address) address.addEventListener('input', later);
})();

// "Back" on the error page: history.back() needs script, and the Content-Security-Policy refuses
// inline script (a javascript: link), so the button is wired here and shown only when it can work.
(function () {
  if (window.history.length < 2) return;
  document.querySelectorAll('[data-back]').forEach(function (wrap) {
    var button = wrap.querySelector('button');
    if (!button) return;
    button.addEventListener('click', function () { window.history.back(); });
    wrap.hidden = false;
  });
})();

// A submit button marked data-once is disabled once its form is sent, so a second click sends nothing
// (the server makes one report of a form's one-time key anyway: web/idempotency.py). Enabled again when
// the page comes back from the browser's back-forward cache.
(function () {
  document.querySelectorAll('button[data-once]').forEach(function (button) {
    if (!button.form) return;
    var form = button.form;
    form.addEventListener('submit', function (event) {
      // A flag set at once, not only the disabled button: on a busy phone a second click can come
      // before the timer below has run, and a second submission would cancel the first page load.
      if (form.getAttribute('data-sent')) { event.preventDefault(); return; }
      form.setAttribute('data-sent', '1');
      setTimeout(function () { button.disabled = true; }, 0);
    });
    window.addEventListener('pageshow', function () { button.disabled = false; form.removeAttribute('data-sent'); });
  });
})();

// The reassign picker (event page, console bulk form): the server lists the active users of every unit
// in the supervisor's scope, one <optgroup data-unit> each; here only the chosen unit's group is shown,
// and a person of another unit is unpicked when the unit changes. The server checks the pick anyway.
(function () {
  document.querySelectorAll('select[data-assignee-of]').forEach(function (picker) {
    var unit = document.getElementById(picker.getAttribute('data-assignee-of'));
    if (!unit) return;
    function show() {
      picker.querySelectorAll('optgroup[data-unit]').forEach(function (group) {
        var mine = group.getAttribute('data-unit') === unit.value;
        group.hidden = !mine;
        group.disabled = !mine;
      });
      var chosen = picker.selectedOptions[0];
      if (chosen && chosen.parentElement && chosen.parentElement.disabled) picker.value = '';
    }
    unit.addEventListener('change', show);
    show();
  });
})();

// The console's bulk form: void and close need a reason and the confirmation box (the server refuses
// them without either); other actions do not.
(function () {
  var action = document.querySelector('select[data-confirm-actions]');
  if (!action || !action.form) return;
  var needing = action.getAttribute('data-confirm-actions').split(' ');
  var reason = action.form.querySelector('[name=reason]');
  var confirm = action.form.querySelector('[name=confirm]');
  function update() {
    var needs = needing.indexOf(action.value) >= 0;
    if (reason) reason.required = needs;
    if (confirm) { confirm.required = needs; confirm.closest('label').hidden = !needs; }
  }
  action.addEventListener('change', update);
  update();
})();

// The receipt page: open reports the new one may duplicate (issue 12), each followed with one click
// ("me too": POST /api/events/<id>/follow, counted by the client address; the reporter's own report
// already tells them of its progress, and a supervisor's merge makes them follow the primary).
(function () {
  var box = document.getElementById('duplicates');
  if (!box) return;
  box.querySelectorAll('button.dup-follow').forEach(function (button) {
    button.addEventListener('click', function () {
      var meta = button.nextElementSibling;
      button.disabled = true;
      fetch('/api/events/' + encodeURIComponent(button.getAttribute('data-event-id')) + '/follow', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ phone: '' })
      }).then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
        .then(function () { if (meta) meta.textContent = box.getAttribute('data-done'); })
        .catch(function () { button.disabled = false; if (meta) meta.textContent = box.getAttribute('data-failed'); });
    });
  });
})();
