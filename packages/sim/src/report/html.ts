// The report pages: one self-contained HTML file each, the charts inlined as SVG, no script, no
// external URL, so the file can be mailed, archived or opened offline. Pure: the SVGs come in.
import { csvNumber, type Chart } from './charts.js';
import { valueAtPath, type RoundRecord } from './records.js';
import type { RunData, SweepData } from './read.js';

/** A chart as placed on the page: drawn ones carry their SVG and the path of their saved spec. */
export type Figure = (Chart & { readonly omitted: string }) | (Extract<Chart, { spec: unknown }> & { readonly svg: string; readonly specPath: string });

/** Where the charts' Vega-Lite specs are saved, relative to report.html. */
export const SPECS_FOLDER = 'report-specs';

export function specPath(chartId: string): string {
  return `${SPECS_FOLDER}/${chartId}.vl.json`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

const CSS = `
  :root { color-scheme: light; }
  body { font: 15px/1.5 Helvetica, Arial, sans-serif; color: #1f2328; background: #fff; margin: 0 auto; max-width: 980px; padding: 24px 28px 48px; }
  h1 { font-size: 26px; margin: 0 0 4px; }
  h2 { font-size: 19px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #e3e6ea; }
  p.lead { color: #59636e; margin: 0 0 20px; }
  code { font: 13px/1.4 ui-monospace, Menlo, Consolas, monospace; background: #f3f4f6; padding: 1px 4px; border-radius: 3px; }
  table { border-collapse: collapse; font-size: 14px; }
  th, td { text-align: left; padding: 4px 12px 4px 0; border-bottom: 1px solid #eceef1; vertical-align: top; }
  table.facts th { font-weight: 600; white-space: nowrap; padding-right: 24px; }
  table.runs { display: block; overflow-x: auto; max-width: 100%; font-size: 13px; }
  table.runs th { font-weight: 600; white-space: nowrap; border-bottom: 2px solid #d0d4da; }
  table.runs td.number { text-align: right; font-variant-numeric: tabular-nums; }
  figure { margin: 8px 0 0; }
  figure svg { display: block; max-width: 100%; height: auto; }
  figcaption { color: #59636e; font-size: 14px; margin-top: 6px; max-width: 760px; }
  p.omitted { color: #59636e; font-style: italic; margin: 4px 0; }
  .status-in-progress { color: #9a6700; font-weight: 600; }
  nav ul { padding-left: 20px; margin: 4px 0; columns: 2; }
  a { color: #0969da; }
`;

function page(title: string, heading: string, lead: string, sections: readonly string[]): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${heading}</h1>
<p class="lead">${lead}</p>
</header>
${sections.join('\n')}
</body>
</html>
`;
}

/** The key facts as a table; labels and values are plain text. */
function factsTable(facts: readonly (readonly [string, string])[]): string {
  const rows = facts.map(([label, value]) => `<tr><th scope="row">${escapeHtml(label)}</th><td>${escapeHtml(value)}</td></tr>`);
  return `<section id="facts">\n<h2>Key facts</h2>\n<table class="facts">\n${rows.join('\n')}\n</table>\n</section>`;
}

function contents(figures: readonly Figure[]): string {
  const items = figures.map((figure) => `<li><a href="#${figure.id}">${escapeHtml(figure.title)}</a>${'omitted' in figure ? ' (not drawn)' : ''}</li>`);
  return `<nav>\n<h2>Figures</h2>\n<ul>\n${items.join('\n')}\n</ul>\n</nav>`;
}

function figureSection(figure: Figure): string {
  const heading = `<h2>${escapeHtml(figure.title)}</h2>`;
  if ('omitted' in figure) return `<section id="${figure.id}" class="chart omitted">\n${heading}\n<p class="omitted">Not drawn: ${escapeHtml(figure.omitted)}.</p>\n</section>`;
  const specLink = `<a href="${escapeHtml(figure.specPath)}">Vega-Lite spec</a>`;
  return `<section id="${figure.id}" class="chart">\n${heading}\n<figure>\n${figure.svg}\n<figcaption>${escapeHtml(figure.caption)} ${specLink}.</figcaption>\n</figure>\n</section>`;
}

function percent(value: number | undefined): string | undefined {
  return value === undefined ? undefined : `${(100 * value).toFixed(2)} %`;
}

function seconds(ms: number): string {
  return ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`;
}

/** A config value at `path` as display text, when the config has it. */
function configText(config: unknown, path: string): string | undefined {
  const value = valueAtPath(config, path);
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function lastWith<K extends keyof RoundRecord>(rounds: readonly RoundRecord[], key: K): RoundRecord | undefined {
  return [...rounds].reverse().find((r) => r[key] !== undefined);
}

/** DP settings in one line: mode, noise multiplier, clip norm (adaptive or fixed), δ and budget. */
function dpText(config: unknown): string | undefined {
  const mode = configText(config, 'dp.mode');
  if (mode === undefined || mode === 'off') return mode;
  const adaptive = valueAtPath(config, 'dp.adaptiveClip') !== undefined;
  const parts = [
    `noise multiplier z = ${configText(config, 'dp.noiseMultiplier') ?? '?'}`,
    `clip norm ${adaptive ? `adaptive from ${configText(config, 'dp.clipNorm') ?? '?'}` : `C = ${configText(config, 'dp.clipNorm') ?? '?'}`}`,
    `δ = ${configText(config, 'dp.delta') ?? '?'}`,
  ];
  const target = configText(config, 'dp.targetEpsilon');
  if (target !== undefined) parts.push(`budget ε ≤ ${target}`);
  return `${mode}: ${parts.join(', ')}`;
}

/** The key facts of a run, label and plain-text value; a fact the files do not hold is left out. */
export function runFacts(run: RunData): [string, string][] {
  const config = run.summary?.config;
  const committed = run.rounds.filter((r) => r.status === 'committed').length;
  const aborted = run.rounds.length - committed;
  const facts: [string, string | undefined][] = [];
  if (run.summary === undefined) {
    facts.push(['Status', `in progress: ${run.rounds.length} round${run.rounds.length === 1 ? '' : 's'} recorded so far (summary.json not written yet, so the config is not known here)`]);
  } else if (run.summary.stoppedBy === 'budget') {
    facts.push(['Status', `stopped early: privacy budget spent${run.summary.stopReason ? ` (${run.summary.stopReason})` : ''}`]);
  } else {
    facts.push(['Status', run.summary.stoppedBy === 'completed' ? 'finished: every round ran' : `finished (${run.summary.stoppedBy ?? 'unknown'})`]);
  }
  const clients = configText(config, 'simulation.numClients');
  const perRound = configText(config, 'clientsPerRound');
  const sampling = configText(config, 'sampling');
  const partition = run.summary?.partitionKind ?? configText(config, 'simulation.partition.kind') ?? configText(config, 'simulation.partition');
  const model = configText(config, 'model.builtin') ?? (valueAtPath(config, 'model.path') !== undefined ? `saved model ${configText(config, 'model.path')}` : undefined);
  facts.push(
    ['Dataset', configText(config, 'simulation.dataset')],
    ['Clients', clients === undefined ? undefined : `${clients} virtual clients${perRound === undefined ? '' : `, ${perRound} per round`}${sampling === undefined ? '' : ` (${sampling} sampling)`}`],
    ['Partition', partition],
    ['Model', model],
    ['Strategy', configText(config, 'strategy.name')],
    ['SecAgg', configText(config, 'secagg.mode')],
    ['Differential privacy', dpText(config)],
  );
  const configuredRounds = configText(config, 'rounds');
  facts.push(['Rounds', `${committed} committed, ${aborted} aborted${configuredRounds === undefined ? '' : ` (of ${configuredRounds} configured)`}`]);
  const finalAccuracy = run.summary?.finalAccuracy ?? lastWith(run.rounds.filter((r) => r.status === 'committed'), 'accuracy')?.accuracy;
  facts.push([run.summary === undefined ? 'Latest test accuracy' : 'Final test accuracy', percent(finalAccuracy)]);
  const privacy = lastWith(run.rounds, 'epsilon');
  facts.push(['ε spent', privacy === undefined ? (configText(config, 'dp.mode') === 'off' ? 'none (DP off)' : undefined) : `${privacy.epsilon!.toPrecision(4)}${privacy.delta === undefined ? '' : ` at δ = ${privacy.delta}`}`]);
  facts.push(['Wall time', run.summary?.durationMs === undefined ? undefined : seconds(run.summary.durationMs)]);
  facts.push(['Training backend', run.summary?.backend]);
  return facts.filter((fact): fact is [string, string] => fact[1] !== undefined);
}

function abortedTable(rounds: readonly RoundRecord[]): string {
  const aborted = rounds.filter((r) => r.status === 'aborted');
  if (aborted.length === 0) return '';
  const rows = aborted.map((r) => `<tr><td class="number">${r.round}</td><td>${escapeHtml(r.reason ?? '(no reason recorded)')}</td></tr>`);
  return `<section id="aborted">\n<h2>Aborted rounds</h2>\n<p>The global model did not change in these rounds; the charts mark them with dashed red lines.</p>\n<table class="runs">\n<tr><th>round</th><th>reason</th></tr>\n${rows.join('\n')}\n</table>\n</section>`;
}

/** The run report page. */
export function runReportHtml(run: RunData, figures: readonly Figure[]): string {
  const notes =
    run.unreadableLines.length === 0
      ? ''
      : `<section id="notes">\n<h2>Notes</h2>\n<p>Skipped ${run.unreadableLines.length} line${run.unreadableLines.length === 1 ? '' : 's'} of metrics.jsonl that ${run.unreadableLines.length === 1 ? 'was' : 'were'} not a round record (line ${run.unreadableLines.join(', ')})${run.summary === undefined ? '; a run in progress may be writing the last one' : ''}.</p>\n</section>`;
  const lead = `Shoal simulation report. Rebuild it with <code>shoal report DIR</code>; each figure's Vega-Lite spec, with its data, is in <code>${SPECS_FOLDER}/</code> next to this file.`;
  const state = run.summary === undefined ? ' <span class="status-in-progress">(in progress)</span>' : '';
  return page(`Shoal run ${run.name}`, `Run ${escapeHtml(run.name)}${state}`, lead, [factsTable(runFacts(run)), contents(figures), ...figures.map(figureSection), abortedTable(run.rounds), notes].filter((s) => s !== ''));
}

/** The sweep's summary.csv as a table; a run's name links to its own report when it has one. */
function runsTable(sweep: SweepData): string {
  const header = sweep.header.map((column) => `<th>${escapeHtml(column)}</th>`).join('');
  const rows = sweep.runs.map((run) => {
    const cells = sweep.header.map((column) => {
      const text = run.cells[column] ?? '';
      if (column === 'run') return `<td>${run.hasReport ? `<a href="${escapeHtml(encodeURIComponent(run.name))}/report.html">${escapeHtml(text)}</a>` : escapeHtml(text)}</td>`;
      const number = csvNumber(text);
      if (number === undefined) return `<td>${escapeHtml(text)}</td>`;
      // Six significant digits read better than float32's seventeen; the exact value is the tooltip and in summary.csv.
      const short = String(Number(number.toPrecision(6)));
      return short === text ? `<td class="number">${escapeHtml(text)}</td>` : `<td class="number" title="${escapeHtml(text)}">${escapeHtml(short)}</td>`;
    });
    return `<tr>${cells.join('')}</tr>`;
  });
  return `<section id="runs">\n<h2>Runs (summary.csv)</h2>\n<table class="runs">\n<tr>${header}</tr>\n${rows.join('\n')}\n</table>\n</section>`;
}

/** The sweep report page. */
export function sweepReportHtml(sweep: SweepData, figures: readonly Figure[]): string {
  const withEpsilon = sweep.runs.filter((run) => csvNumber(run.cells['final_epsilon']) !== undefined).length;
  const best = sweep.runs
    .map((run) => ({ run, accuracy: csvNumber(run.cells['final_accuracy']) }))
    .filter((entry): entry is { run: (typeof sweep.runs)[number]; accuracy: number } => entry.accuracy !== undefined)
    .sort((a, b) => b.accuracy - a.accuracy)[0];
  const facts: [string, string][] = [
    ['Runs', String(sweep.runs.length)],
    ['Swept keys', sweep.sweptKeys.length === 0 ? 'none (seeds only)' : sweep.sweptKeys.join(', ')],
    ['Runs with ε (DP on)', String(withEpsilon)],
  ];
  if (best !== undefined) facts.push(['Best final accuracy', `${percent(best.accuracy)} (${best.run.name})`]);
  const lead = `Shoal sweep report: the runs of this folder's summary.csv. Rebuild it with <code>shoal report DIR</code>; each figure's Vega-Lite spec, with its data, is in <code>${SPECS_FOLDER}/</code> next to this file.`;
  return page(`Shoal sweep ${sweep.name}`, `Sweep ${escapeHtml(sweep.name)}`, lead, [factsTable(facts), contents(figures), ...figures.map(figureSection), runsTable(sweep)]);
}
