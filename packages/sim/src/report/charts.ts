// The report's charts as Vega-Lite specs, one small function per chart, each with its data inlined
// so a saved spec re-renders on its own. A chart whose data the run does not have is returned as
// omitted, with the reason the page shows in its place, never drawn empty. Pure.
import { paretoFrontier } from './frontier.js';
import type { RoundRecord } from './records.js';
import type { SweepData } from './read.js';

/** A Vega-Lite spec as JSON (the renderer hands it to vega-lite's compiler, which checks it). */
export type VegaLiteSpec = Readonly<Record<string, unknown>>;

/** One figure of a report: drawn (its spec and a caption) or omitted (and why). */
export type Chart =
  | { readonly id: string; readonly title: string; readonly caption: string; readonly spec: VegaLiteSpec }
  | { readonly id: string; readonly title: string; readonly omitted: string };

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const WIDTH = 560;
const HEIGHT = 220;
/** Aborted rounds are marked in this colour on every per-round chart. */
const ABORTED_COLOUR = '#c0392b';
/** Above this many rounds, lines are drawn without a point per round (they would blot the line). */
const MAX_POINTS = 60;

/** Shared look: part of each spec, so a saved spec renders as it does in the report. */
const CONFIG = {
  font: 'Helvetica, Arial, sans-serif',
  view: { stroke: '#d0d4da' },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', gridColor: '#eceef1' },
  // Without a canvas, vega estimates text widths generously (~0.8 em a character), so the limit is
  // set high enough that labels of ~50 characters are not cut.
  legend: { labelFontSize: 11, orient: 'bottom', direction: 'horizontal', labelLimit: 480, titleLimit: 480 },
  range: { category: ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f', '#aec7e8', '#ffbb78', '#98df8a'] },
};

function topLevel(description: string, spec: Readonly<Record<string, unknown>>): VegaLiteSpec {
  return { $schema: SCHEMA, description, width: WIDTH, height: HEIGHT, config: CONFIG, ...spec };
}

/** One value of one named series at one round: the long format every per-round chart plots. */
interface SeriesValue {
  readonly round: number;
  readonly series: string;
  readonly value: number;
}

/** The x scale's [first, last] round, widened by a round each side when there is only one. */
function roundDomain(rounds: readonly RoundRecord[]): [number, number] {
  const numbers = rounds.map((r) => r.round);
  const first = Math.min(...numbers);
  const last = Math.max(...numbers);
  return first === last ? [first - 1, last + 1] : [first, last];
}

function roundAxis(rounds: readonly RoundRecord[], padding = 0) {
  const [first, last] = roundDomain(rounds);
  // A few pixels beyond the first and last round, so their points are not cut in half by the frame.
  return { title: 'round', type: 'quantitative', scale: { domain: [first - padding, last + padding], nice: false, padding: 8 }, axis: { format: 'd', tickMinStep: 1 } };
}

/** A dashed red rule at each aborted round, over the whole height, so aborts are seen where they happened. */
function abortedRoundsLayer(rounds: readonly RoundRecord[]): Record<string, unknown>[] {
  const aborted = rounds.filter((r) => r.status === 'aborted');
  if (aborted.length === 0) return [];
  return [
    {
      description: 'aborted rounds (the global model did not change)',
      data: { values: aborted.map((r) => ({ round: r.round, reason: r.reason ?? '' })) },
      mark: { type: 'rule', color: ABORTED_COLOUR, strokeDash: [4, 3], strokeWidth: 1.5 },
      encoding: { x: { field: 'round', type: 'quantitative' } },
    },
  ];
}

/** The caption's sentence about aborted rounds, or '' when none aborted. */
function abortedNote(rounds: readonly RoundRecord[]): string {
  const aborted = rounds.filter((r) => r.status === 'aborted').map((r) => r.round);
  if (aborted.length === 0) return '';
  const list = aborted.length <= 12 ? aborted.join(', ') : `${aborted.slice(0, 12).join(', ')}, …`;
  return ` Dashed red lines: the ${aborted.length} aborted round${aborted.length === 1 ? '' : 's'} (${list}; reasons in the table of aborted rounds).`;
}

/** Lines of named series against the round, with the run's aborted rounds marked. */
function seriesChart(options: {
  readonly description: string;
  readonly rounds: readonly RoundRecord[];
  readonly values: readonly SeriesValue[];
  readonly series: readonly string[];
  readonly yTitle: string;
  readonly yFormat?: string;
  readonly zero?: boolean;
  readonly extraLayers?: readonly Record<string, unknown>[];
}): VegaLiteSpec {
  const { rounds, values, series } = options;
  return topLevel(options.description, {
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: rounds.length <= MAX_POINTS, strokeWidth: 2, clip: true },
        encoding: {
          x: { field: 'round', ...roundAxis(rounds) },
          // A few pixels of room above and below, so a constant series (a fixed clip norm) is not drawn on the frame.
          y: { field: 'value', type: 'quantitative', title: options.yTitle, scale: { zero: options.zero ?? false, padding: 6 }, ...(options.yFormat ? { axis: { format: options.yFormat } } : {}) },
          color: { field: 'series', type: 'nominal', title: null, scale: { domain: series } },
        },
      },
      ...(options.extraLayers ?? []),
      ...abortedRoundsLayer(rounds),
    ],
  });
}

/** Each round's value of each series that it has (a round without the field adds no point). */
function seriesValues(rounds: readonly RoundRecord[], fields: readonly (readonly [series: string, read: (r: RoundRecord) => number | undefined])[]): SeriesValue[] {
  return rounds.flatMap((r) =>
    fields.flatMap(([series, read]) => {
      const value = read(r);
      return value === undefined ? [] : [{ round: r.round, series, value }];
    }),
  );
}

/** The series of `fields` that have at least one value, in the given order. */
function presentSeries(values: readonly SeriesValue[], fields: readonly (readonly [string, unknown])[]): string[] {
  return fields.map(([series]) => series).filter((series) => values.some((v) => v.series === series));
}

const NO_ROUNDS = 'no rounds recorded yet';

/** A percent axis format with enough decimals that neighbouring ticks of a narrow range do not read alike. */
function percentFormat(values: readonly number[]): string {
  const range = Math.max(...values) - Math.min(...values);
  return range < 0.02 ? '.2%' : range < 0.2 ? '.1%' : '.0%';
}

/** Central test accuracy after each committed round. */
export function accuracyChart(rounds: readonly RoundRecord[]): Chart {
  const id = 'accuracy';
  const title = 'Test accuracy';
  if (rounds.length === 0) return { id, title, omitted: NO_ROUNDS };
  const fields = [['central test accuracy', (r: RoundRecord) => r.accuracy]] as const;
  const values = seriesValues(rounds, fields);
  if (values.length === 0) return { id, title, omitted: 'no round recorded a central test accuracy (no committed round, or no central evaluation)' };
  return {
    id,
    title,
    caption: `Accuracy of the global model on the central test split after each committed round.${abortedNote(rounds)}`,
    spec: seriesChart({ description: title, rounds, values, series: presentSeries(values, fields), yTitle: 'accuracy', yFormat: percentFormat(values.map((v) => v.value)) }),
  };
}

/** Central test loss, and the participants' mean training loss, per round. */
export function lossChart(rounds: readonly RoundRecord[]): Chart {
  const id = 'loss';
  const title = 'Loss';
  if (rounds.length === 0) return { id, title, omitted: NO_ROUNDS };
  const fields = [
    ['central test loss', (r: RoundRecord) => r.loss],
    ['training loss (participants)', (r: RoundRecord) => r.trainLoss],
  ] as const;
  const values = seriesValues(rounds, fields);
  if (values.length === 0) return { id, title, omitted: 'no round recorded a test or training loss' };
  return {
    id,
    title,
    caption: `Cross-entropy on the central test split, and the participants' own mean training loss, per round.${abortedNote(rounds)}`,
    spec: seriesChart({ description: title, rounds, values, series: presentSeries(values, fields), yTitle: 'loss' }),
  };
}

/** ε spent so far after each round, with the budget `dp.targetEpsilon` as a line when there is one. */
export function epsilonChart(rounds: readonly RoundRecord[], targetEpsilon: number | undefined): Chart {
  const id = 'epsilon';
  const title = 'Privacy spent (ε)';
  if (rounds.length === 0) return { id, title, omitted: NO_ROUNDS };
  const fields = [['ε spent', (r: RoundRecord) => r.epsilon]] as const;
  const values = seriesValues(rounds, fields);
  if (values.length === 0) return { id, title, omitted: 'DP off: no round recorded ε' };
  const delta = rounds.find((r) => r.delta !== undefined)?.delta;
  const budget =
    targetEpsilon === undefined
      ? []
      : [{ data: { values: [{ budget: targetEpsilon }] }, mark: { type: 'rule', color: '#555', strokeDash: [2, 2] }, encoding: { y: { field: 'budget', type: 'quantitative' } } }];
  return {
    id,
    title,
    caption: `Cumulative ε (RDP accountant${delta === undefined ? '' : `, δ = ${delta}`}) after each round.${targetEpsilon === undefined ? '' : ` Grey dotted line: the budget dp.targetEpsilon = ${targetEpsilon}.`}${abortedNote(rounds)}`,
    spec: seriesChart({ description: title, rounds, values, series: presentSeries(values, fields), yTitle: 'ε', zero: true, extraLayers: budget }),
  };
}

/** The DP clip norm per round (it moves under adaptive clipping), and in plain mode the update-norm bound and median. */
export function clipNormChart(rounds: readonly RoundRecord[]): Chart {
  const id = 'clip-norm';
  const title = 'Clip norm and update norms';
  if (rounds.length === 0) return { id, title, omitted: NO_ROUNDS };
  const fields = [
    ['DP clip norm', (r: RoundRecord) => r.clipNorm],
    // With DP on the bound is the clip norm itself: drawn once, as the clip norm.
    ['update-norm bound (maxUpdateNorm)', (r: RoundRecord) => (r.clipNorm === undefined ? r.maxUpdateNorm : undefined)],
    ['median update norm', (r: RoundRecord) => r.medianUpdateNorm],
  ] as const;
  const values = seriesValues(rounds, fields);
  if (values.length === 0) {
    const secagg = rounds.some((r) => r.secagg !== undefined);
    return { id, title, omitted: secagg ? 'DP off, and SecAgg hides the individual update norms: no clip norm or update norms recorded' : 'no round recorded a clip norm or update norms' };
  }
  return {
    id,
    title,
    caption: `L2 norms per round: the DP clip norm (with DP on; every update is clipped to it), the update-norm bound (plain mode without DP) and, in plain mode, the median norm of the updates as sent.${abortedNote(rounds)}`,
    spec: seriesChart({ description: title, rounds, values, series: presentSeries(values, fields), yTitle: 'L2 norm', zero: true }),
  };
}

/** Clients lost per round, stacked by the SecAgg stage they were lost in. */
export function dropoutsChart(rounds: readonly RoundRecord[]): Chart {
  const id = 'secagg-dropouts';
  const title = 'Dropouts per SecAgg stage';
  if (rounds.length === 0) return { id, title, omitted: NO_ROUNDS };
  const secaggRounds = rounds.filter((r) => r.secagg !== undefined);
  if (secaggRounds.length === 0) return { id, title, omitted: 'SecAgg off: no per-stage dropouts (plain rounds record only a total)' };
  const stages = [...new Set(secaggRounds.flatMap((r) => r.secagg!.dropouts.map(([stage]) => stage)))];
  // Stacked here rather than by vega-lite, whose stacking does not apply to bars given as x..x2
  // ranges; each bar spans round ± 0.4 on the same numeric round axis as the other charts.
  const values = secaggRounds.flatMap((r) => {
    let below = 0;
    return r.secagg!.dropouts.map(([stage, count]) => {
      const bar = { round: r.round, from: r.round - 0.4, to: r.round + 0.4, stage, clients: count, low: below, high: below + count };
      below += count;
      return bar;
    });
  });
  const total = values.reduce((sum, v) => sum + v.clients, 0);
  return {
    id,
    title,
    caption: `Selected clients lost in each secure-aggregation stage (missed the deadline, disconnected or declined), stacked: ${total} in all.${abortedNote(rounds)}`,
    spec: topLevel(title, {
      layer: [
        {
          data: { values },
          mark: { type: 'bar' },
          encoding: {
            x: { field: 'from', ...roundAxis(rounds, 0.5) },
            x2: { field: 'to' },
            y: { field: 'low', type: 'quantitative', title: 'clients lost', axis: { tickMinStep: 1, format: 'd' } },
            y2: { field: 'high' },
            color: { field: 'stage', type: 'nominal', title: null, scale: { domain: stages } },
          },
        },
        ...abortedRoundsLayer(rounds),
      ],
    }),
  };
}

/** Units for the traffic axis, largest first: the first that the largest value reaches is used. */
const BYTE_UNITS = [
  { size: 1e9, symbol: 'GB', name: 'Gigabytes (10⁹ bytes)' },
  { size: 1e6, symbol: 'MB', name: 'Megabytes (10⁶ bytes)' },
  { size: 1e3, symbol: 'kB', name: 'Kilobytes (10³ bytes)' },
  { size: 1, symbol: 'bytes', name: 'Bytes' },
] as const;

/** Bytes of round messages from and to the cohort, per round. */
export function bytesChart(rounds: readonly RoundRecord[]): Chart {
  const id = 'bytes';
  const title = 'Traffic per round';
  if (rounds.length === 0) return { id, title, omitted: NO_ROUNDS };
  const largest = Math.max(0, ...rounds.flatMap((r) => [r.bytesUp ?? 0, r.bytesDown ?? 0]));
  const unit = BYTE_UNITS.find((u) => largest >= u.size) ?? BYTE_UNITS.at(-1)!;
  const inUnit = (bytes: number | undefined) => (bytes === undefined ? undefined : bytes / unit.size);
  const fields = [
    ['up (clients → coordinator)', (r: RoundRecord) => inUnit(r.bytesUp)],
    ['down (coordinator → clients)', (r: RoundRecord) => inUnit(r.bytesDown)],
  ] as const;
  const values = seriesValues(rounds, fields);
  if (values.length === 0) return { id, title, omitted: 'no round recorded its bytes' };
  return {
    id,
    title,
    caption: `${unit.name} of round messages received from and sent to the cohort in each round.${abortedNote(rounds)}`,
    spec: seriesChart({ description: title, rounds, values, series: presentSeries(values, fields), yTitle: unit.symbol, zero: true }),
  };
}

/** Federated evaluation: the clients' accuracy as mean ± std band, mean, worst and best 10 %. */
export function clientSpreadChart(rounds: readonly RoundRecord[]): Chart {
  const id = 'client-accuracy-spread';
  const title = 'Per-client accuracy spread (federated evaluation)';
  if (rounds.length === 0) return { id, title, omitted: NO_ROUNDS };
  const evaluated = rounds.filter((r) => r.federatedEvaluation !== undefined);
  if (evaluated.length === 0) return { id, title, omitted: 'no federated evaluation: no round recorded the clients\' own accuracies' };
  const fields = [
    // The mean first: it takes the first colour, the band's.
    ['mean over clients', (r: RoundRecord) => r.federatedEvaluation?.accuracy.mean],
    ['worst 10 % of clients', (r: RoundRecord) => r.federatedEvaluation?.accuracy.worst10],
    ['best 10 % of clients', (r: RoundRecord) => r.federatedEvaluation?.accuracy.best10],
  ] as const;
  const values = seriesValues(evaluated, fields);
  const band = evaluated.map((r) => {
    const { mean, std } = r.federatedEvaluation!.accuracy;
    return { round: r.round, low: Math.max(0, mean - std), high: Math.min(1, mean + std) };
  });
  const clients = evaluated.map((r) => r.federatedEvaluation!.clients);
  const reported = Math.min(...clients) === Math.max(...clients) ? `${clients[0]}` : `${Math.min(...clients)}–${Math.max(...clients)}`;
  return {
    id,
    title,
    caption: `Each client evaluates the global model on its own held-out split (${reported} clients reported per round). Shaded: mean ± one standard deviation across clients; lines: the mean over all, over the worst 10 % and over the best 10 % of clients.${abortedNote(rounds)}`,
    spec: seriesChart({
      description: title,
      rounds,
      values,
      series: presentSeries(values, fields),
      yTitle: 'client accuracy',
      yFormat: percentFormat([...values.map((v) => v.value), ...band.flatMap((b) => [b.low, b.high])]),
      extraLayers: [{ data: { values: band }, mark: { type: 'area', opacity: 0.18, color: '#1f77b4' }, encoding: { x: { field: 'round', type: 'quantitative' }, y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' } } }],
    }),
  };
}

/** Every chart of a run's report, in page order. */
export function runCharts(rounds: readonly RoundRecord[], targetEpsilon?: number): Chart[] {
  return [accuracyChart(rounds), lossChart(rounds), clientSpreadChart(rounds), epsilonChart(rounds, targetEpsilon), clipNormChart(rounds), dropoutsChart(rounds), bytesChart(rounds)];
}

/** A number from a summary.csv cell; undefined for an empty or non-numeric cell. */
export function csvNumber(cell: string | undefined): number | undefined {
  if (cell === undefined || cell.trim() === '') return undefined;
  const value = Number(cell);
  return Number.isFinite(value) ? value : undefined;
}

/** A run's label on the frontier: its swept values (and seed when the sweep had several), short. */
export function runLabel(sweep: Pick<SweepData, 'sweptKeys' | 'runs'>, cells: Readonly<Record<string, string>>): string {
  const seeds = new Set(sweep.runs.map((run) => run.cells['seed']));
  const parts = sweep.sweptKeys.map((key) => cells[key] ?? '');
  if (seeds.size > 1) parts.push(cells['seed'] ?? '');
  return parts.length === 0 ? (cells['run'] ?? '') : parts.join(', ');
}

/** What a run's label lists: the swept keys, and `seed` when the sweep had several. */
function legendTitle(sweep: Pick<SweepData, 'sweptKeys' | 'runs'>): string {
  const seeds = new Set(sweep.runs.map((run) => run.cells['seed']));
  const parts = [...sweep.sweptKeys, ...(seeds.size > 1 ? ['seed'] : [])];
  return parts.length === 0 ? 'run' : parts.join(', ');
}

/** Test accuracy per round of every run of a sweep, one colour per run. */
export function sweepAccuracyChart(sweep: SweepData): Chart {
  const id = 'accuracy-curves';
  const title = 'Test accuracy of every run';
  const values = sweep.runs.flatMap((run) => {
    const label = runLabel(sweep, run.cells);
    return (run.rounds ?? []).flatMap((r) => (r.status === 'committed' && r.accuracy !== undefined ? [{ run: run.name, label, round: r.round, accuracy: r.accuracy }] : []));
  });
  if (values.length === 0) return { id, title, omitted: 'no run has a round with a central test accuracy (or their metrics.jsonl files are gone)' };
  const missing = sweep.runs.filter((run) => run.rounds === undefined).map((run) => run.name);
  return {
    id,
    title,
    caption: `Central test accuracy after each committed round, one line per run (colour = run).${missing.length === 0 ? '' : ` Not shown, metrics.jsonl missing: ${missing.join(', ')}.`}`,
    spec: topLevel(title, {
      data: { values },
      mark: { type: 'line', point: values.length <= 4 * MAX_POINTS, strokeWidth: 2, clip: true },
      encoding: {
        x: { field: 'round', type: 'quantitative', title: 'round', axis: { format: 'd', tickMinStep: 1 } },
        y: { field: 'accuracy', type: 'quantitative', title: 'test accuracy', scale: { zero: false }, axis: { format: percentFormat(values.map((v) => v.accuracy)) } },
        // Coloured by run, named by its swept values (the folder names are long); the title says which keys.
        color: { field: 'label', type: 'nominal', title: legendTitle(sweep), sort: null, legend: { columns: 1, direction: 'vertical' } },
        detail: { field: 'run', type: 'nominal' },
      },
    }),
  };
}

/** Final accuracy against ε across the grid, the Pareto-optimal runs connected and labelled. */
export function frontierChart(sweep: SweepData): Chart {
  const id = 'privacy-utility-frontier';
  const title = 'Privacy–utility frontier';
  const points = sweep.runs.flatMap((run) => {
    const epsilon = csvNumber(run.cells['final_epsilon']);
    const accuracy = csvNumber(run.cells['final_accuracy']);
    return epsilon === undefined || accuracy === undefined ? [] : [{ run: run.name, label: runLabel(sweep, run.cells), epsilon, accuracy }];
  });
  if (points.length === 0) return { id, title, omitted: 'no run has ε: DP is off in every run of this sweep (or none finished with a test accuracy)' };
  const frontier = new Set(paretoFrontier(points));
  // Runs that tie on both ε and accuracy sit on one spot: the first of them carries all their labels.
  const at = (p: { epsilon: number; accuracy: number }) => `${p.epsilon}/${p.accuracy}`;
  const values = points.map((point, i) => {
    const first = points.findIndex((other) => at(other) === at(point)) === i;
    const tag = first ? points.filter((other) => at(other) === at(point)).map((other) => other.label).join(' | ') : '';
    return { ...point, frontier: frontier.has(point) ? 'Pareto-optimal' : 'dominated', tag };
  });
  const left = sweep.runs.length - points.length;
  const onFrontier = "datum.frontier === 'Pareto-optimal'";
  return {
    id,
    title,
    caption:
      `Final test accuracy against the ε each run spent. Red: the Pareto-optimal runs (no other run is both more private and more accurate), joined in order of ε` +
      `${sweep.sweptKeys.length === 0 ? '' : ` and labelled with their ${sweep.sweptKeys.join(', ')}`}.${left === 0 ? '' : ` ${left} run${left === 1 ? '' : 's'} without ε or final accuracy not shown.`}`,
    spec: topLevel(title, {
      data: { values },
      encoding: {
        x: { field: 'epsilon', type: 'quantitative', title: 'ε spent', scale: { zero: false, padding: 24 } },
        y: { field: 'accuracy', type: 'quantitative', title: 'final test accuracy', scale: { zero: false, padding: 16 }, axis: { format: percentFormat(points.map((p) => p.accuracy)) } },
      },
      layer: [
        { transform: [{ filter: onFrontier }], mark: { type: 'line', color: '#d62728', strokeWidth: 1.5 }, encoding: { order: { field: 'epsilon', type: 'quantitative' } } },
        {
          mark: { type: 'point', filled: true, size: 80, opacity: 1 },
          encoding: { color: { field: 'frontier', type: 'nominal', title: null, scale: { domain: ['Pareto-optimal', 'dominated'], range: ['#d62728', '#9aa1ab'] } } },
        },
        { transform: [{ filter: `${onFrontier} && datum.tag !== ''` }], mark: { type: 'text', align: 'left', dx: 8, dy: -8, fontSize: 11 }, encoding: { text: { field: 'tag' } } },
      ],
    }),
  };
}

/** Every chart of a sweep's report, in page order. */
export function sweepCharts(sweep: SweepData): Chart[] {
  return [sweepAccuracyChart(sweep), frontierChart(sweep)];
}
