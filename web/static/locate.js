// "Use my location" on the report form: the browser's position (asked only when the resident presses
// the button) is sent to /api/grids/nearest, and the nearest grid is picked in the grid list. The
// position itself is not put into the form or stored. Without geolocation the button stays hidden.
(function () {
  var button = document.getElementById('locate');
  var grid = document.getElementById('grid');
  var out = document.getElementById('locate-status');
  if (!button || !grid || !out || !navigator.geolocation) return;
  button.hidden = false;
  function say(text) { out.textContent = text; }
  button.addEventListener('click', function () {
    button.disabled = true;
    say(button.getAttribute('data-busy'));
    navigator.geolocation.getCurrentPosition(function (pos) {
      var url = '/api/grids/nearest?lat=' + encodeURIComponent(pos.coords.latitude.toFixed(6)) +
        '&lon=' + encodeURIComponent(pos.coords.longitude.toFixed(6));
      fetch(url, { headers: { 'Accept': 'application/json' } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
        .then(function (found) {
          button.disabled = false;
          if (!found.grid) { say(button.getAttribute('data-none')); return; }
          grid.value = found.grid;
          grid.dispatchEvent(new Event('change'));  // the nearby reports follow the grid
          var option = grid.options[grid.selectedIndex];
          say(button.getAttribute('data-found').replace('{grid}', option ? option.textContent : found.grid)
            .replace('{km}', String(found.km)));
        })
        .catch(function () { button.disabled = false; say(button.getAttribute('data-denied')); });
    }, function () {
      button.disabled = false;
      say(button.getAttribute('data-denied'));
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  });
})();
