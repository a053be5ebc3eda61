/**
 * The live status page: static HTML and a small script of our own (no framework, nothing from a
 * CDN). The script polls /status.json and draws inline SVG; it is served from /status.js so the
 * page can run under a Content-Security-Policy without inline scripts.
 */

export const STATUS_CSP =
  "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const STATUS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flanstream status</title>
<link rel="icon" href="data:,">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f5f6f8; }
  header { display: flex; gap: 16px; align-items: baseline; padding: 12px 20px; background: #1d2330; color: #fff; }
  header h1 { font-size: 18px; margin: 0; }
  header .muted { color: #aab; }
  main { padding: 12px 20px; }
  h2 { font-size: 15px; margin: 16px 0 8px; }
  table { border-collapse: collapse; background: #fff; }
  th, td { padding: 4px 10px; border-bottom: 1px solid #e3e5ea; text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  .cards { display: flex; flex-wrap: wrap; gap: 12px; }
  .card { background: #fff; border: 1px solid #dde0e6; border-radius: 6px; padding: 10px 12px; width: 600px; }
  .card h3 { font-size: 14px; margin: 0 0 6px; }
  .kv { display: flex; flex-wrap: wrap; gap: 4px 16px; margin-bottom: 6px; color: #444; }
  .kv b { color: #1d2330; }
  .legend { display: flex; gap: 12px; font-size: 12px; color: #444; }
  .legend i { display: inline-block; width: 18px; height: 3px; vertical-align: middle; margin-right: 4px; }
  .empty { color: #777; }
  .state-ok { color: #7fd88f; } .state-bad { color: #ff8a80; }
  svg text { font-size: 10px; fill: #667; }
</style>
</head>
<body>
<header><h1>flanstream</h1><span id="state" class="muted">connecting…</span><span id="index" class="muted"></span><span id="updated" class="muted"></span></header>
<main>
  <section id="corpus"><h2>Corpus</h2><div id="corpus-summary" class="kv"></div>
    <table id="domains"><thead><tr><th>domain</th><th>tasks</th><th>train</th><th>dev</th><th>test</th><th>text tokens</th><th>audio tokens</th><th>unseen tasks</th></tr></thead><tbody></tbody></table>
  </section>
  <section><h2>Open streams (<span id="stream-count">0</span>)</h2>
    <p class="legend">Per domain: solid = realized share of examples so far, dotted = realized share over the recent window (shows a mixture update taking effect at its step), dashed = target (a closed-loop policy moves it; its weights and the losses it saw are listed under the chart); the legend adds the share since the last update. Lower plots: fill ratio and tokens/s.</p>
    <div id="streams" class="cards"><p class="empty">No open streams.</p></div>
  </section>
</main>
<script src="/status.js"></script>
</body>
</html>
`;

export const STATUS_JS = String.raw`(function () {
  'use strict';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var COLORS = ['#1f6fd1', '#d6453d', '#2e9e52', '#8a5ad1', '#e0882a', '#16a0a8'];
  var POLL_MS = 1000;
  var polls = 0;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function svgEl(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs || {}) e.setAttribute(k, String(attrs[k]));
    return e;
  }
  function fmt(n) {
    if (n === null || n === undefined || !isFinite(n)) return '–';
    var a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(2) + 'G';
    if (a >= 1e6) return (n / 1e6).toFixed(2) + 'M';
    if (a >= 1e4) return (n / 1e3).toFixed(1) + 'k';
    return String(Math.round(n * 100) / 100);
  }
  function pct(x) { return x === null || x === undefined ? '–' : (100 * x).toFixed(1) + '%'; }
  function kv(parent, label, value, role) {
    var s = el('span', {}, label + ' ');
    var b = el('b', role ? { 'data-role': role } : {}, value);
    s.appendChild(b);
    parent.appendChild(s);
  }

  function renderCorpus(s) {
    var sum = document.getElementById('corpus-summary');
    sum.textContent = '';
    kv(sum, 'records', fmt(s.corpus.records), 'records');
    kv(sum, 'tasks', s.corpus.tasks, 'tasks');
    kv(sum, 'quarantined', fmt(s.corpus.quarantined), 'quarantined');
    kv(sum, 'held-out sets', s.corpus.heldoutSets.map(function (h) { return h.name + ' (' + h.tasks + ')'; }).join(', ') || '–');
    var body = document.querySelector('#domains tbody');
    body.textContent = '';
    s.corpus.domains.forEach(function (d) {
      var tr = el('tr', { 'data-domain': d.domain });
      [d.domain, d.tasks, fmt(d.train), fmt(d.dev), fmt(d.test), fmt(d.textTokens), fmt(d.audioTokens), d.unseenTasks].forEach(function (v) { tr.appendChild(el('td', {}, v)); });
      body.appendChild(tr);
    });
  }

  // Lines of y(sample) over the samples' steps, in a w × h box with a left margin for labels.
  function plot(svg, samples, series, box) {
    var n = samples.length;
    var x0 = samples[0].step, x1 = samples[n - 1].step;
    if (x1 === x0) x1 = x0 + 1;
    var X = function (step) { return box.left + (box.w - box.left - 4) * (step - x0) / (x1 - x0); };
    var Y = function (v) { return box.top + (box.h - box.top - 14) * (1 - Math.min(1, Math.max(0, v / box.max))); };
    [0, 0.5, 1].forEach(function (f) {
      var y = Y(f * box.max);
      svg.appendChild(svgEl('line', { x1: box.left, x2: box.w - 4, y1: y, y2: y, stroke: '#e3e5ea' }));
      var t = svgEl('text', { x: box.left - 4, y: y + 3, 'text-anchor': 'end' });
      t.textContent = box.label(f * box.max);
      svg.appendChild(t);
    });
    var tl = svgEl('text', { x: box.left, y: box.h - 2 }); tl.textContent = 'step ' + samples[0].step; svg.appendChild(tl);
    var tr = svgEl('text', { x: box.w - 4, y: box.h - 2, 'text-anchor': 'end' }); tr.textContent = 'step ' + samples[n - 1].step; svg.appendChild(tr);
    series.forEach(function (s) {
      var d = '';
      var prev = null;
      samples.forEach(function (p) {
        var v = s.value(p);
        if (v === null || v === undefined || !isFinite(v)) return;
        // Targets change at a step, not gradually: draw them as steps.
        if (s.steps && prev !== null && v !== prev) d += 'L' + X(p.step).toFixed(1) + ',' + Y(prev).toFixed(1);
        d += (d === '' ? 'M' : 'L') + X(p.step).toFixed(1) + ',' + Y(v).toFixed(1);
        prev = v;
      });
      if (d === '') return;
      var attrs = { d: d, fill: 'none', stroke: s.color, 'stroke-width': s.width || 1.5, class: s.cls };
      if (s.dash) attrs['stroke-dasharray'] = s.dash === true ? '5,3' : s.dash;
      if (s.domain) attrs['data-domain'] = s.domain;
      svg.appendChild(svgEl('path', attrs));
    });
  }

  function mixtureChart(st, domains) {
    var svg = svgEl('svg', { width: 576, height: 170, class: 'mixture', role: 'img', 'aria-label': 'target versus realized mixture' });
    if (st.samples.length === 0) return svg;
    var max = 0;
    st.samples.forEach(function (p) { p.target.concat(p.realized, p.recent || []).forEach(function (v) { if (v > max) max = v; }); });
    max = Math.min(1, Math.max(0.1, Math.ceil(max * 10) / 10));
    var series = [];
    domains.forEach(function (d, i) {
      var c = COLORS[i % COLORS.length];
      series.push({ cls: 'target', domain: d, color: c, dash: true, steps: true, width: 1.2, value: function (p) { return p.target[i]; } });
      series.push({ cls: 'realized', domain: d, color: c, width: 2, value: function (p) { return p.realized[i]; } });
      series.push({ cls: 'recent', domain: d, color: c, dash: '2,2', width: 1.5, value: function (p) { return p.recent && p.recent.length ? p.recent[i] : null; } });
    });
    plot(svg, st.samples, series, { left: 40, top: 6, w: 576, h: 170, max: max, label: function (v) { return (100 * v).toFixed(0) + '%'; } });
    return svg;
  }

  function spark(st, cls, value, max, label, color) {
    var svg = svgEl('svg', { width: 284, height: 70, class: cls });
    if (st.samples.length === 0) return svg;
    plot(svg, st.samples, [{ cls: cls, color: color, value: value }], { left: 40, top: 4, w: 284, h: 70, max: max, label: label });
    return svg;
  }

  // A closed-loop policy: its weight per arm and the mean loss it saw (its weights over time are the target lines above).
  function policyTable(p) {
    var box = el('div', { class: 'policy' });
    box.appendChild(el('p', { class: 'legend' }, 'policy ' + p.name + ' · ' + p.decisions + ' decisions · last report: step ' + (p.lastReportStep === null ? '–' : p.lastReportStep)));
    var table = el('table', { class: 'policy-arms' });
    var head = el('tr');
    ['selector', 'weight', 'loss seen'].forEach(function (h) { head.appendChild(el('th', {}, h)); });
    table.appendChild(head);
    p.selectors.forEach(function (sel, i) {
      var tr = el('tr', { 'data-selector': sel });
      [sel, pct(p.weights[i]), p.losses[i] === null ? '–' : p.losses[i].toFixed(3)].forEach(function (v) { tr.appendChild(el('td', {}, v)); });
      table.appendChild(tr);
    });
    box.appendChild(table);
    return box;
  }

  function streamCard(st, domains) {
    var last = st.samples.length ? st.samples[st.samples.length - 1] : null;
    var card = el('div', { class: 'card', 'data-stream': st.id });
    card.appendChild(el('h3', {}, st.id + ' · ' + st.split + ' · ' + st.packing + ' · ' + st.batchSize + '×' + st.seqLen + ' · rank ' + st.rank + '/' + st.worldSize));
    var info = el('div', { class: 'kv' });
    kv(info, 'step', st.step === null ? '–' : st.step, 'step');
    kv(info, 'batches', fmt(st.batches), 'batches');
    kv(info, 'tokens', fmt(st.tokens), 'tokens');
    kv(info, 'fill', pct(last ? last.fill : null), 'fill');
    kv(info, 'tokens/s', fmt(last ? last.tokensPerSecond : null), 'tokens-per-second');
    kv(info, 'batches/s', fmt(last ? last.batchesPerSecond : null), 'batches-per-second');
    card.appendChild(info);
    var legend = el('div', { class: 'legend' });
    domains.forEach(function (d, i) {
      var since = st.sinceUpdate && st.sinceUpdate.length ? ' · since step ' + st.sinceUpdateStep + ' ' + pct(st.sinceUpdate[i]) : '';
      var s = el('span', { 'data-domain': d }, d + ' ' + pct(st.realized[i]) + since + ' / ' + pct(st.target[i]));
      var sw = el('i'); sw.style.background = COLORS[i % COLORS.length];
      s.insertBefore(sw, s.firstChild);
      legend.appendChild(s);
    });
    card.appendChild(legend);
    card.appendChild(mixtureChart(st, domains));
    if (st.policy) card.appendChild(policyTable(st.policy));
    var maxTps = 1;
    st.samples.forEach(function (p) { if (p.tokensPerSecond > maxTps) maxTps = p.tokensPerSecond; });
    card.appendChild(spark(st, 'fill', function (p) { return p.fill; }, 1, function (v) { return (100 * v).toFixed(0) + '%'; }, '#2e9e52'));
    card.appendChild(spark(st, 'throughput', function (p) { return p.tokensPerSecond; }, maxTps, fmt, '#1f6fd1'));
    return card;
  }

  function render(s) {
    var state = document.getElementById('state');
    state.textContent = s.ready ? 'serving' : 'draining';
    state.className = s.ready ? 'state-ok' : 'state-bad';
    document.getElementById('index').textContent = 'index ' + s.corpus.fingerprint.slice(0, 12);
    document.getElementById('updated').textContent = 'updated ' + new Date(s.now).toLocaleTimeString();
    if (polls === 1) renderCorpus(s);
    document.getElementById('stream-count').textContent = s.streams.length;
    var box = document.getElementById('streams');
    box.textContent = '';
    if (s.streams.length === 0) box.appendChild(el('p', { class: 'empty' }, 'No open streams.'));
    s.streams.forEach(function (st) { box.appendChild(streamCard(st, s.domains)); });
    document.body.setAttribute('data-polls', String(polls));
  }

  function poll() {
    fetch('/status.json', { cache: 'no-store' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (s) { polls++; render(s); })
      .catch(function (e) {
        var state = document.getElementById('state');
        state.textContent = 'disconnected (' + e.message + ')';
        state.className = 'state-bad';
      })
      .then(function () { setTimeout(poll, POLL_MS); });
  }
  poll();
})();
`;
