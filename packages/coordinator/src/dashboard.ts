/**
 * The live dashboard, one self-contained page: inline CSS and JS, charts drawn as inline SVG, no
 * request but its own event stream (`/dashboard/events`, same token). It reads three events:
 * `snapshot` (every round so far, the live state, the privacy promise), `round` (one finished
 * round) and `live` (client counts, round phase, ε; every second). Every value reaches the page as
 * text (`textContent`, SVG attributes), never as markup, so an abort reason cannot inject any.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shoal coordinator</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f4f6f8; color: #1c2733; }
  header { background: #17324d; color: #fff; padding: 10px 20px; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  #stream { margin-left: auto; font-size: 12px; }
  main { padding: 16px 20px; display: grid; gap: 16px; }
  .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 12px; }
  .card, .panel { background: #fff; border-radius: 6px; padding: 10px 14px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  .card .label { font-size: 12px; color: #5a6b7b; }
  .card .value { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; white-space: nowrap; }
  .card.wide { grid-column: span 2; }
  .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 16px; }
  .panel h2 { font-size: 14px; margin: 0 0 6px; }
  svg { width: 100%; height: 180px; display: block; }
  .axis { stroke: #9aa8b5; stroke-width: 1; }
  .tick { fill: #5a6b7b; font-size: 10px; }
  .legend { font-size: 12px; color: #5a6b7b; }
  .legend span { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 10px; vertical-align: middle; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { text-align: right; padding: 3px 8px; border-bottom: 1px solid #e3e8ed; }
  th:first-child, td:first-child { text-align: left; }
  .aborted { color: #b3261e; }
  .empty { color: #8593a0; font-style: italic; }
</style>
</head>
<body>
<header><h1>Shoal coordinator</h1><span id="run"></span><span id="stream">connecting…</span></header>
<main>
  <section class="cards">
    <div class="card"><div class="label">Connected clients</div><div class="value" id="connected">–</div></div>
    <div class="card"><div class="label">Idle / training</div><div class="value" id="idle-training">–</div></div>
    <div class="card wide"><div class="label">Round phase</div><div class="value" id="phase">–</div></div>
    <div class="card"><div class="label">Committed rounds</div><div class="value" id="committed">0</div></div>
    <div class="card"><div class="label">Aborted rounds</div><div class="value" id="aborted">0</div></div>
    <div class="card wide"><div class="label">ε spent / budget</div><div class="value" id="epsilon">off</div></div>
    <div class="card"><div class="label">Clip norm</div><div class="value" id="clip-norm">off</div></div>
  </section>
  <section class="charts">
    <div class="panel"><h2>Accuracy</h2><svg id="chart-accuracy" viewBox="0 0 420 180"></svg><div class="legend" id="legend-accuracy"></div></div>
    <div class="panel"><h2>Loss</h2><svg id="chart-loss" viewBox="0 0 420 180"></svg><div class="legend" id="legend-loss"></div></div>
    <div class="panel"><h2>ε spent vs budget</h2><svg id="chart-epsilon" viewBox="0 0 420 180"></svg><div class="legend" id="legend-epsilon"></div></div>
    <div class="panel"><h2>Clip norm</h2><svg id="chart-clip" viewBox="0 0 420 180"></svg><div class="legend" id="legend-clip"></div></div>
    <div class="panel"><h2>Cohort and dropouts</h2><svg id="chart-cohort" viewBox="0 0 420 180"></svg><div class="legend" id="legend-cohort"></div></div>
  </section>
  <section class="panel"><h2>Rounds</h2>
    <table><thead><tr><th>Round</th><th>Status</th><th>Cohort</th><th>Participants</th><th>Dropouts by stage</th><th>Accuracy</th><th>Loss</th><th>ε</th><th>Seconds</th></tr></thead>
    <tbody id="rounds"></tbody></table>
  </section>
</main>
<script>
"use strict";
const SVG = 'http://www.w3.org/2000/svg';
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const state = { rounds: new Map(), live: undefined, totalRounds: undefined, budget: undefined };

// The admin token came in this page's URL (?token=); the event stream needs it too.
const token = new URLSearchParams(location.search).get('token');

function $(id) { return document.getElementById(id); }
function setText(id, text) { $(id).textContent = text; }
function fmt(value, digits) { return value === undefined || value === null || !Number.isFinite(value) ? '–' : value.toFixed(digits); }

function svgElement(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/** Draws series of [x, y] points (and optional horizontal reference lines) with min/max ticks. */
function lineChart(id, series, references) {
  const svg = $(id), legend = $('legend-' + id.slice('chart-'.length));
  svg.replaceChildren();
  legend.replaceChildren();
  const points = series.flatMap((s) => s.points);
  const levels = (references || []).map((r) => r.value);
  if (points.length === 0) {
    svg.append(svgElement('text', { x: 150, y: 95, class: 'tick' }, 'no data yet'));
    return;
  }
  const left = 44, right = 410, top = 10, bottom = 160;
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]).concat(levels);
  const xMin = Math.min(...xs), xMax = Math.max(...xs, xMin + 1);
  let yMin = Math.min(0, ...ys), yMax = Math.max(...ys);
  if (yMax <= yMin) yMax = yMin + 1;
  const x = (v) => left + ((v - xMin) / (xMax - xMin)) * (right - left);
  const y = (v) => bottom - ((v - yMin) / (yMax - yMin)) * (bottom - top);
  svg.append(svgElement('line', { x1: left, y1: bottom, x2: right, y2: bottom, class: 'axis' }));
  svg.append(svgElement('line', { x1: left, y1: top, x2: left, y2: bottom, class: 'axis' }));
  svg.append(svgElement('text', { x: 2, y: top + 8, class: 'tick' }, yMax.toPrecision(3)));
  svg.append(svgElement('text', { x: 2, y: bottom, class: 'tick' }, yMin.toPrecision(3)));
  svg.append(svgElement('text', { x: left, y: bottom + 14, class: 'tick' }, 'round ' + xMin));
  svg.append(svgElement('text', { x: right - 50, y: bottom + 14, class: 'tick' }, 'round ' + xMax));
  for (const reference of references || []) {
    svg.append(svgElement('line', { x1: left, y1: y(reference.value), x2: right, y2: y(reference.value), stroke: reference.color, 'stroke-dasharray': '5 4' }));
    addLegend(legend, reference.color, reference.name);
  }
  series.forEach((s, index) => {
    const color = s.color || COLORS[index % COLORS.length];
    if (s.points.length === 0) return;
    const path = s.points.map((p, i) => (i === 0 ? 'M' : 'L') + x(p[0]).toFixed(1) + ' ' + y(p[1]).toFixed(1)).join(' ');
    svg.append(svgElement('path', { d: path, fill: 'none', stroke: color, 'stroke-width': 2, 'data-series': s.name }));
    for (const p of s.points) svg.append(svgElement('circle', { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: 2.5, fill: color }));
    addLegend(legend, color, s.name);
  });
}

function addLegend(legend, color, name) {
  const swatch = document.createElement('span');
  swatch.style.background = color;
  legend.append(swatch, document.createTextNode(name));
}

/** Per round, stacked bars: participants, then the dropouts of each stage on top. */
function cohortChart(rounds) {
  const svg = $('chart-cohort'), legend = $('legend-cohort');
  svg.replaceChildren();
  legend.replaceChildren();
  if (rounds.length === 0) {
    svg.append(svgElement('text', { x: 150, y: 95, class: 'tick' }, 'no data yet'));
    return;
  }
  const stages = [...new Set(rounds.flatMap((r) => Object.keys(dropoutsByStage(r))))];
  const left = 44, right = 410, top = 10, bottom = 160;
  const yMax = Math.max(1, ...rounds.map((r) => r.selected));
  const width = (right - left) / rounds.length;
  svg.append(svgElement('line', { x1: left, y1: bottom, x2: right, y2: bottom, class: 'axis' }));
  svg.append(svgElement('text', { x: 2, y: top + 8, class: 'tick' }, String(yMax)));
  svg.append(svgElement('text', { x: 2, y: bottom, class: 'tick' }, '0'));
  rounds.forEach((round, index) => {
    let base = 0;
    const bar = (count, color) => {
      if (count <= 0) return;
      const height = (count / yMax) * (bottom - top);
      svg.append(svgElement('rect', { x: (left + index * width + 1).toFixed(1), y: (bottom - base - height).toFixed(1), width: Math.max(1, width - 2).toFixed(1), height: height.toFixed(1), fill: color }));
      base += height;
    };
    bar(round.participants, '#2ca02c');
    const dropouts = dropoutsByStage(round);
    stages.forEach((stage, i) => bar(dropouts[stage] || 0, COLORS[(i + 1) % COLORS.length]));
  });
  addLegend(legend, '#2ca02c', 'participants');
  stages.forEach((stage, i) => addLegend(legend, COLORS[(i + 1) % COLORS.length], 'dropped at ' + stage));
}

function dropoutsByStage(round) {
  if (round.secagg) return round.secagg.dropouts;
  return round.dropouts > 0 ? { update: round.dropouts } : {};
}

function render() {
  const rounds = [...state.rounds.values()].sort((a, b) => a.round - b.round);
  const committed = rounds.filter((r) => r.status === 'committed');
  setText('committed', String(committed.length));
  setText('aborted', String(rounds.length - committed.length));
  const live = state.live;
  if (live) {
    setText('connected', String(live.connected));
    setText('idle-training', live.idle + ' / ' + live.training);
    setText('phase', live.phase + (live.round > 0 ? ' · round ' + live.round + (state.totalRounds ? ' of ' + state.totalRounds : '') : ''));
    if (live.privacy) {
      const epsilon = $('epsilon');
      epsilon.dataset.value = String(live.privacy.epsilon);
      epsilon.textContent = fmt(live.privacy.epsilon, 3) + (live.privacy.epsilonBudget !== undefined ? ' / ' + live.privacy.epsilonBudget : ' / no budget');
      const clip = $('clip-norm');
      clip.dataset.value = String(live.privacy.clipNorm);
      clip.textContent = fmt(live.privacy.clipNorm, 3);
    }
  }
  const at = (pick) => committed.filter((r) => Number.isFinite(pick(r))).map((r) => [r.round, pick(r)]);
  lineChart('chart-accuracy', [
    { name: 'central test accuracy', points: at((r) => r.accuracy) },
    { name: 'federated evaluation accuracy', points: at((r) => r.federatedEvaluation && r.federatedEvaluation.accuracy) },
  ]);
  lineChart('chart-loss', [
    { name: 'central test loss', points: at((r) => r.loss) },
    { name: 'mean training loss', points: at((r) => r.trainLoss) },
  ]);
  const budget = live && live.privacy && live.privacy.epsilonBudget;
  lineChart('chart-epsilon', [{ name: 'ε spent', points: rounds.filter((r) => Number.isFinite(r.epsilon)).map((r) => [r.round, r.epsilon]) }],
    budget !== undefined ? [{ name: 'budget (dp.targetEpsilon)', value: budget, color: '#d62728' }] : []);
  lineChart('chart-clip', [{ name: 'clip norm', points: rounds.filter((r) => Number.isFinite(r.clipNorm)).map((r) => [r.round, r.clipNorm]) }]);
  cohortChart(rounds);
  renderTable(rounds);
}

function renderTable(rounds) {
  const body = $('rounds');
  body.replaceChildren();
  if (rounds.length === 0) {
    const row = body.insertRow();
    const cell = row.insertCell();
    cell.colSpan = 9;
    cell.className = 'empty';
    cell.textContent = 'no round has finished yet';
    return;
  }
  for (const r of rounds.slice(-20).reverse()) {
    const row = body.insertRow();
    const dropouts = Object.entries(dropoutsByStage(r)).filter(([, n]) => n > 0).map(([stage, n]) => stage + ' ' + n).join(', ') || '0';
    const cells = [r.round, r.status + (r.reason ? ': ' + r.reason : ''), r.selected, r.participants, dropouts, fmt(r.accuracy, 4), fmt(r.loss, 4), fmt(r.epsilon, 4), fmt(r.durationMs / 1000, 2)];
    for (const value of cells) row.insertCell().textContent = String(value);
    if (r.status !== 'committed') row.className = 'aborted';
  }
}

function connect() {
  const events = new EventSource('/dashboard/events' + (token !== null ? '?token=' + encodeURIComponent(token) : ''));
  events.addEventListener('open', () => setText('stream', 'live'));
  events.addEventListener('error', () => setText('stream', 'reconnecting…'));
  events.addEventListener('snapshot', (event) => {
    const snapshot = JSON.parse(event.data);
    state.rounds = new Map(snapshot.rounds.map((r) => [r.round, r]));
    state.live = snapshot.live;
    state.totalRounds = snapshot.totalRounds;
    const promise = snapshot.promise;
    setText('run', 'SecAgg ' + promise.secureAggregation.mode + ' · DP ' + promise.differentialPrivacy.mode);
    render();
  });
  events.addEventListener('round', (event) => {
    const data = JSON.parse(event.data);
    state.rounds.set(data.metrics.round, data.metrics);
    state.live = data.live;
    render();
  });
  events.addEventListener('live', (event) => {
    state.live = JSON.parse(event.data);
    render();
  });
}
render();
connect();
</script>
</body>
</html>
`;
