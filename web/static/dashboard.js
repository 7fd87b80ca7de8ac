// The dashboard (/dashboard) and its 大屏 (/dashboard/screen): Apache ECharts charts drawn from the
// figures the page carries as JSON in #dashboard[data-dashboard] (web/dashboard.py builds them from
// the assessment's rollups). Every text shown here comes from that JSON, in the page's language
// (state.texts: the catalogue's dash.js.* messages, the indicators', ratings' and stages' names);
// this file holds no user-visible words. Every chart element carries the URL of the list behind its
// number (its `url`): a click opens that list. The 大屏 fetches its page again every
// data-refresh-seconds and redraws from the new figures (KPIs and the heat table are swapped in).
(function () {
  'use strict';
  var root = document.getElementById('dashboard');
  if (!root || typeof window.echarts === 'undefined') return;
  var echarts = window.echarts;
  var state = JSON.parse(root.getAttribute('data-dashboard'));
  var screen = !!state.screen;
  var charts = {};
  var refreshes = 0;
  var COLOURS = screen
    ? {main: '#4fc3f7', second: '#81c784', bar: '#5c7cfa', target: '#ff8a65', yellow: '#ffd54f', red: '#ef5350',
       ok: '#66bb6a', basic: '#aed581', bad: '#ef5350', none: '#90a4ae', zero: '#607d8b'}
    : {main: '#1565c0', second: '#2e7d32', bar: '#90a4c8', target: '#b3261e', yellow: '#e0a100', red: '#b3261e',
       ok: '#1b6e3a', basic: '#7cb342', bad: '#b3261e', none: '#9e9e9e', zero: '#b0bec5'};

  function t(key) { return (state.texts && state.texts[key]) || ''; }
  function name(o) { return state.lang === 'en' ? o.name_en : o.name_zh; }
  function pct(v) { return v === null || v === undefined ? '—' : (v * 100).toFixed(1) + '%'; }
  function num(v) { return v === null || v === undefined ? '—' : String(Math.round(v * 10) / 10); }
  function rateValue(f) { return f.value === null ? '-' : f.value; }

  function base(hasData) {
    var option = {
      backgroundColor: 'transparent',
      aria: {enabled: true},
      animationDuration: 300,
      // Drawn on the canvas (richText), not as HTML: ECharts' HTML tooltips carry style attributes,
      // which the Content-Security-Policy (style-src 'self') refuses.
      tooltip: {trigger: 'item', confine: true, renderMode: 'richText'},
      grid: {left: 48, right: 48, top: 44, bottom: 40, containLabel: true}
    };
    if (!hasData) {
      option.title = {text: t('empty'), left: 'center', top: 'middle',
                      textStyle: {fontSize: 14, fontWeight: 'normal', color: screen ? '#b0bec5' : '#555'}};
    }
    return option;
  }

  function rateAxis(withTarget) {
    return {
      type: 'value', name: t('rate'), max: 1,
      min: function (v) {
        var low = isFinite(v.min) ? v.min : 1;
        if (withTarget) low = Math.min(low, state.data.target);
        return Math.max(0, Math.floor(low * 10 - 0.5) / 10);
      },
      axisLabel: {formatter: function (v) { return Math.round(v * 100) + '%'; }}
    };
  }

  function monthAxis() {
    return {type: 'category', name: t('month'), nameLocation: 'middle', nameGap: 28, data: state.data.months.map(function (m) { return m.month; })};
  }

  function rateTooltip(p) {
    var d = p.data || {};
    if (d.denominator === undefined) return p.seriesName + '\n' + p.name + ': ' + num(p.value);
    return p.seriesName + '\n' + p.name + ': ' + pct(d.ratio) + ' (' + num(d.numerator) + ' / ' + num(d.denominator) + ')';
  }

  function ratePoint(f) {
    return {value: rateValue(f), url: f.url, ratio: f.value, numerator: f.numerator, denominator: f.denominator};
  }

  var BUILD = {
    grassroots: function (d) {
      var o = base(d.months.length > 0);
      var share = t('indicator.grassroots_share');
      o.legend = {top: 0, data: [share, t('closed')]};
      o.xAxis = monthAxis();
      o.yAxis = [rateAxis(true), {type: 'value', name: t('closed'), splitLine: {show: false}, minInterval: 1}];
      o.tooltip.formatter = rateTooltip;
      o.series = [
        {type: 'bar', name: t('closed'), yAxisIndex: 1, barMaxWidth: 28, itemStyle: {color: COLOURS.bar},
         data: d.months.map(function (m) { return {value: m.closed.count, url: m.closed.url}; })},
        {type: 'line', name: share, symbolSize: 9, itemStyle: {color: COLOURS.main}, lineStyle: {width: 3},
         data: d.months.map(function (m) { return ratePoint(m.values.grassroots_share); }),
         markLine: {silent: true, symbol: 'none', lineStyle: {type: 'dashed', width: 2, color: COLOURS.target},
                    label: {formatter: t('target'), position: 'insideEndTop', color: COLOURS.target},
                    data: [{yAxis: d.target}]}}
      ];
      return o;
    },
    ontime: function (d) {
      var o = base(d.months.length > 0);
      var codes = ['on_time_handled_rate', 'on_time_closed_rate'];
      o.legend = {top: 0, data: codes.map(function (c) { return t('indicator.' + c); })};
      o.xAxis = monthAxis();
      o.yAxis = rateAxis(false);
      o.tooltip.formatter = rateTooltip;
      o.series = codes.map(function (c, i) {
        return {type: 'line', name: t('indicator.' + c), symbolSize: 9, lineStyle: {width: 3},
                itemStyle: {color: i ? COLOURS.second : COLOURS.main},
                data: d.months.map(function (m) { return ratePoint(m.values[c]); })};
      });
      return o;
    },
    categories: function (d) {
      var rows = d.categories.slice().reverse();
      var o = base(rows.length > 0);
      o.grid.right = 32;
      o.xAxis = {type: 'value', name: t('events'), nameLocation: 'middle', nameGap: 28, minInterval: 1};
      o.yAxis = {type: 'category', data: rows.map(name), axisLabel: {width: 120, overflow: 'truncate'}};
      o.series = [{type: 'bar', name: t('events'), barMaxWidth: 22, itemStyle: {color: COLOURS.main},
                   label: {show: true, position: 'right'},
                   data: rows.map(function (c) { return {value: c.count, url: c.url, code: c.code}; })}];
      return o;
    },
    map: function (d) {
      var grids = d.grids;
      var o = base(grids.length > 0);
      var top = Math.max.apply(null, [1].concat(grids.map(function (g) { return g.count; })));
      var size = function (v) { return v[2] > 0 ? 10 + 34 * Math.sqrt(v[2] / top) : 7; };
      var point = function (g) {
        return {name: name(g), value: [g.lon, g.lat, g.count], url: g.url, code: g.code,
                itemStyle: g.count > 0 ? undefined : {color: COLOURS.zero}};
      };
      var hot = grids.filter(function (g) { return g.count > 0; })
        .sort(function (a, b) { return b.count - a.count; }).slice(0, 5);
      var pad = function (v, by) { return isFinite(v) ? v + by : v; };
      o.grid = {left: 56, right: 40, top: 44, bottom: 40, containLabel: true};
      o.xAxis = {type: 'value', name: t('lon'), nameLocation: 'middle', nameGap: 28, scale: true, splitLine: {show: false},
                 min: function (v) { return pad(v.min, -0.004); }, max: function (v) { return pad(v.max, 0.004); },
                 axisLabel: {showMinLabel: false, showMaxLabel: false, formatter: function (v) { return v.toFixed(3); }}};
      o.yAxis = {type: 'value', name: t('lat'), scale: true, splitLine: {show: false},
                 min: function (v) { return pad(v.min, -0.003); }, max: function (v) { return pad(v.max, 0.003); },
                 axisLabel: {showMinLabel: false, showMaxLabel: false, formatter: function (v) { return v.toFixed(3); }}};
      o.legend = {top: 0, data: [t('grids'), t('hotspots')]};
      o.tooltip.formatter = function (p) { return p.name + '\n' + t('events') + ': ' + p.value[2]; };
      o.series = [
        {type: 'scatter', name: t('grids'), symbolSize: size, itemStyle: {color: COLOURS.main, opacity: 0.75},
         data: grids.map(point)},
        {type: 'effectScatter', name: t('hotspots'), symbolSize: size, rippleEffect: {scale: 2.5, brushType: 'stroke'},
         itemStyle: {color: COLOURS.red}, label: {show: true, position: 'right', formatter: '{b}'},
         labelLayout: {hideOverlap: true},
         data: hot.map(point)}
      ];
      return o;
    },
    overdue: function (d) {
      var rows = d.overdue.slice().reverse();
      var o = base(rows.length > 0);
      o.grid.right = 32;
      o.xAxis = {type: 'value', name: t('overdue'), nameLocation: 'middle', nameGap: 28, minInterval: 1};
      o.yAxis = {type: 'category', data: rows.map(name), axisLabel: {width: 120, overflow: 'truncate'}};
      o.tooltip.formatter = function (p) {
        return p.name + '\n' + t('overdue') + ': ' + p.value + ' (' + pct(p.data.rate) + ')';
      };
      o.series = [{type: 'bar', name: t('overdue'), barMaxWidth: 22, itemStyle: {color: COLOURS.red},
                   label: {show: true, position: 'right'},
                   data: rows.map(function (r) { return {value: r.count, url: r.url, rate: r.rate, code: r.code}; })}];
      return o;
    },
    satisfaction: function (d) {
      var colour = {satisfied: COLOURS.ok, basically_satisfied: COLOURS.basic, dissatisfied: COLOURS.bad,
                    'default': COLOURS.none};
      var total = d.satisfaction.reduce(function (s, r) { return s + r.count; }, 0);
      var o = base(total > 0);
      delete o.grid;
      o.legend = {bottom: 0};
      o.tooltip.formatter = '{b}: {c} ({d}%)';  // richText: plain text
      o.series = [{type: 'pie', name: t('ratings'), radius: ['38%', '66%'], center: ['50%', '46%'],
                   label: {formatter: '{b}\n{c}'},
                   data: d.satisfaction.filter(function (r) { return total === 0 || r.count > 0; }).map(function (r) {
                     return {name: t('rating.' + r.key), value: r.count, url: r.url, key: r.key,
                             itemStyle: {color: colour[r.key]}, selected: r.key === 'default'};
                   }),
                   selectedOffset: 8, selectedMode: false}];
      return o;
    },
    hours: function (d) {
      var has = d.hours.some(function (h) { return h.value !== null; });
      var o = base(has);
      o.xAxis = {type: 'category', data: d.hours.map(function (h) { return t('stage.' + h.stage); })};
      o.yAxis = {type: 'value', name: t('hours')};
      o.tooltip.formatter = function (p) { return p.name + ': ' + num(p.data.hours) + ' ' + t('hours_unit'); };
      o.series = [{type: 'bar', name: t('hours'), barMaxWidth: 40, itemStyle: {color: COLOURS.main},
                   label: {show: true, position: 'top', formatter: function (p) { return num(p.data.hours); }},
                   data: d.hours.map(function (h) {
                     return {value: h.value === null ? '-' : Math.round(h.value * 10) / 10, hours: h.value, url: h.url};
                   })}];
      return o;
    },
    // Proxy services (代办) by service item: done on time, done late, not done yet (stacked).
    proxy: function (d) {
      var rows = (d.processes ? d.processes.proxy : []).slice(0, 12).reverse();
      var o = base(rows.length > 0);
      o.grid.right = 32;
      o.legend = {top: 0, data: [t('proxy_on_time'), t('proxy_late'), t('proxy_open')]};
      o.xAxis = {type: 'value', name: t('proxy_services'), nameLocation: 'middle', nameGap: 28, minInterval: 1};
      o.yAxis = {type: 'category', data: rows.map(name), axisLabel: {width: 120, overflow: 'truncate'}};
      o.tooltip.formatter = function (p) {
        var r = p.data.row;
        return p.name + '\n' + t('proxy_services') + ': ' + r.requested + ' · ' + t('proxy_on_time_rate') + ': ' +
          pct(r.on_time_rate);
      };
      o.series = [['on_time', t('proxy_on_time'), COLOURS.ok], ['late', t('proxy_late'), COLOURS.red],
                  ['open', t('proxy_open'), COLOURS.none]].map(function (s) {
        return {type: 'bar', name: s[1], stack: 'proxy', barMaxWidth: 22, itemStyle: {color: s[2]},
                data: rows.map(function (r) {
                  var n = {on_time: r.on_time, late: r.done - r.on_time, open: r.requested - r.done}[s[0]];
                  return {value: n, row: r, url: '/processes?kind=proxy_service'};
                })};
      });
      return o;
    },
    // Volunteer hours credited by team (志愿服务时长), with the team's activities in the tooltip.
    volunteer: function (d) {
      var rows = (d.processes ? d.processes.teams : []).slice(0, 12).reverse();
      var o = base(rows.length > 0);
      o.grid.right = 32;
      o.xAxis = {type: 'value', name: t('volunteer_hours'), nameLocation: 'middle', nameGap: 28};
      o.yAxis = {type: 'category', data: rows.map(name), axisLabel: {width: 120, overflow: 'truncate'}};
      o.tooltip.formatter = function (p) {
        var r = p.data.row;
        return p.name + '\n' + t('volunteer_hours') + ': ' + num(r.hours) + ' · ' + t('activities') + ': ' +
          r.activities + ' · ' + t('volunteers') + ': ' + r.volunteers;
      };
      o.series = [{type: 'bar', name: t('volunteer_hours'), barMaxWidth: 22, itemStyle: {color: COLOURS.second},
                   label: {show: true, position: 'right', formatter: function (p) { return num(p.data.row.hours); }},
                   data: rows.map(function (r) {
                     return {value: r.hours, row: r, url: '/processes?kind=volunteer_activity'};
                   })}];
      return o;
    },
    warnings: function (d) {
      var o = base(d.months.length > 0);
      o.legend = {top: 0, data: [t('yellow'), t('red')]};
      o.xAxis = monthAxis();
      o.yAxis = {type: 'value', name: t('warnings'), minInterval: 1};
      o.series = [['yellow_warnings', t('yellow'), COLOURS.yellow], ['red_warnings', t('red'), COLOURS.red]]
        .map(function (s) {
          return {type: 'bar', name: s[1], stack: 'warnings', barMaxWidth: 28, itemStyle: {color: s[2]},
                  data: d.months.map(function (m) {
                    var f = m.values[s[0]];
                    return {value: f.value === null ? 0 : f.value, url: f.url};
                  })};
        });
      return o;
    }
  };

  // A chart without data shows its note alone: no axes, no legend.
  function bare(option) {
    if (!option.title) return option;
    [option.xAxis, option.yAxis].forEach(function (axes) {
      [].concat(axes || []).forEach(function (axis) { axis.show = false; });
    });
    delete option.legend;
    return option;
  }

  function draw() {
    root.querySelectorAll('[data-chart]').forEach(function (el) {
      var kind = el.getAttribute('data-chart');
      if (!BUILD[kind]) return;
      var chart = charts[kind];
      if (!chart) {
        chart = echarts.init(el, screen ? 'dark' : null, {locale: state.lang === 'en' ? 'EN' : 'ZH'});
        chart.on('click', function (p) {
          var url = p.data && p.data.url;
          if (url) window.location.assign(url);
        });
        charts[kind] = chart;
      }
      chart.setOption(bare(BUILD[kind](state.data)), true);
    });
  }

  function refresh() {
    return fetch(window.location.href, {credentials: 'same-origin', cache: 'no-store'})
      .then(function (r) {
        if (r.redirected) { window.location.reload(); throw new Error('signed out'); }
        if (!r.ok) throw new Error(String(r.status));
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var fresh = doc.getElementById('dashboard');
        if (!fresh || !fresh.getAttribute('data-dashboard')) throw new Error('no figures');
        state = JSON.parse(fresh.getAttribute('data-dashboard'));
        fresh.querySelectorAll('[data-swap][id]').forEach(function (el) {
          var old = document.getElementById(el.id);
          if (old) old.replaceWith(document.importNode(el, true));
        });
        draw();
        root.classList.remove('stale');
        refreshes += 1;
        root.setAttribute('data-refreshed', String(refreshes));
      })
      .catch(function () { root.classList.add('stale'); });
  }

  draw();
  window.addEventListener('resize', function () {
    Object.keys(charts).forEach(function (k) { charts[k].resize(); });
  });
  // For the browser test and the curious: the chart instances and the refresh.
  window.wulianDashboard = {charts: charts, refresh: refresh};

  if (screen) {
    var seconds = parseInt(root.getAttribute('data-refresh-seconds'), 10) || 60;
    window.setInterval(refresh, seconds * 1000);
    var clock = document.getElementById('screen-clock');
    var tick = function () {
      if (!clock) return;
      var now = new Date();
      clock.textContent = now.toLocaleString(state.lang === 'en' ? 'en-GB' : 'zh-CN',
                                             {timeZone: 'Asia/Shanghai', hour12: false});
      clock.setAttribute('datetime', now.toISOString());
    };
    tick();
    window.setInterval(tick, 1000);
  }
})();
