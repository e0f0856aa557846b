// The pure part of `shoal sweep`: parsing --grid flags, expanding the grid into runs with stable,
// filesystem-safe names, reading a finished run's files into one row, and writing CSV. No I/O here.
import { createHash } from 'node:crypto';
import { configError } from '@shoal/protocol';

/** One `--grid key.path=[v1,v2,…]` flag: a config key and the values it takes. */
export interface GridAxis {
  readonly key: string;
  readonly values: readonly unknown[];
}

/** One run of a sweep: its folder name, the value of each swept key, and the `--set` overrides that make it. */
export interface PlannedRun {
  readonly name: string;
  /** The swept values, in the order of the --grid flags. */
  readonly values: readonly unknown[];
  /** With --seeds: the seed of this run; else the config's own. */
  readonly seed?: number;
  /** `key.path=<JSON>` assignments, the syntax of `--set`, applied after the sweep's own --set flags. */
  readonly overrides: readonly string[];
}

/**
 * Parses one `--grid key.path=[v1,v2,…]` flag. The key is a `--set` key path (checked by the config
 * validator later, like `--set`); the values are a non-empty JSON array without repeats.
 */
export function parseGridFlag(text: string): GridAxis {
  const eq = text.indexOf('=');
  if (eq <= 0) throw configError(`--grid expects key.path=[v1,v2,…], got ${JSON.stringify(text)}`);
  const key = text.slice(0, eq);
  const list = text.slice(eq + 1);
  let values: unknown;
  try {
    values = JSON.parse(list);
  } catch {
    throw configError(`--grid ${key}: ${JSON.stringify(list)} is not a JSON array; write the values as [v1,v2,…] (strings in double quotes)`);
  }
  if (!Array.isArray(values)) throw configError(`--grid ${key}: ${JSON.stringify(list)} is not a JSON array; write the values as [v1,v2,…]`);
  if (values.length === 0) throw configError(`--grid ${key}: the list of values is empty`);
  const seen = new Set<string>();
  for (const value of values) {
    const json = JSON.stringify(value);
    if (seen.has(json)) throw configError(`--grid ${key}: the value ${json} appears twice`);
    seen.add(json);
  }
  return { key, values };
}

/** The assignment that sets `key` to exactly `value`: `--set` parses it back as JSON. */
export function assignment(key: string, value: unknown): string {
  return `${key}=${JSON.stringify(value)}`;
}

/**
 * The cartesian product of the axes (the first --grid flag varies slowest), times the seeds
 * 0..seeds−1 when `seeds` is given. Run names are `key-value` parts joined by `__`.
 */
export function planRuns(axes: readonly GridAxis[], seeds: number | undefined): PlannedRun[] {
  const keys = new Set<string>();
  for (const { key } of axes) {
    if (keys.has(key)) throw configError(`--grid ${key} is given twice; list all its values in one --grid`);
    keys.add(key);
  }
  if (seeds !== undefined && keys.has('seed')) throw configError('--grid seed and --seeds both set the seed; use one of them');
  if (axes.length === 0 && seeds === undefined) throw configError('needs at least one --grid key.path=[v1,v2,…] (or --seeds N)');

  let combinations: unknown[][] = [[]];
  for (const axis of axes) combinations = combinations.flatMap((prefix) => axis.values.map((value) => [...prefix, value]));
  const runs = combinations.flatMap((values) => {
    const parts = axes.map((axis, i) => ({ key: axis.key, value: values[i] }));
    const seedList = seeds === undefined ? [undefined] : Array.from({ length: seeds }, (_, seed) => seed);
    return seedList.map((seed): PlannedRun => {
      const all = seed === undefined ? parts : [...parts, { key: 'seed', value: seed }];
      return {
        name: runName(all),
        values,
        ...(seed !== undefined ? { seed } : {}),
        overrides: all.map((part) => assignment(part.key, part.value)),
      };
    });
  });
  // Distinct values give distinct names (the hash), but a case-insensitive file system could still merge two.
  const folded = new Set<string>();
  for (const run of runs) {
    if (folded.has(run.name.toLowerCase())) throw configError(`two runs would share the folder ${run.name} on a case-insensitive file system; rename a value`);
    folded.add(run.name.toLowerCase());
  }
  return runs;
}

const MAX_NAME = 100;

/**
 * A folder name from the swept values: `train.learningRate-0.1__seed-0`. Characters outside
 * [A-Za-z0-9._+-] become `_`; when that changed anything, or the name is long, a hash of the exact
 * values is appended so two runs never share a folder.
 */
export function runName(parts: readonly { readonly key: string; readonly value: unknown }[]): string {
  const exact = parts.map(({ key, value }) => `${key}-${cellText(value)}`).join('__');
  const safe = exact.replace(/[^A-Za-z0-9._+-]/g, '_');
  if (safe === exact && safe.length <= MAX_NAME) return safe;
  const hash = createHash('sha256').update(exact).digest('hex').slice(0, 8);
  return `${safe.slice(0, MAX_NAME)}~${hash}`;
}

/** A swept value as text: a string as itself, anything else as JSON. */
export function cellText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** What summary.csv reports of one finished run. */
export interface RunResult {
  readonly finalAccuracy?: number;
  readonly bestAccuracy?: number;
  /** The first round whose test accuracy reached the target; undefined without a target or if never reached. */
  readonly roundsToTarget?: number;
  /** ε spent after the last round, with DP on. */
  readonly finalEpsilon?: number;
  readonly committedRounds: number;
  readonly wallTimeSeconds: number;
}

/** The per-round metrics fields a sweep reads (a line of metrics.jsonl). */
export interface RoundLine {
  readonly round: number;
  readonly status: string;
  readonly accuracy?: number;
  readonly epsilon?: number;
}

/** One run's row data from its summary.json and metrics.jsonl lines. */
export function runResult(summary: { readonly finalAccuracy?: number; readonly durationMs: number }, rounds: readonly RoundLine[], targetAccuracy: number | undefined): RunResult {
  const committed = rounds.filter((r) => r.status === 'committed');
  const accuracies = committed.map((r) => r.accuracy).filter((a): a is number => typeof a === 'number');
  const reached = targetAccuracy === undefined ? undefined : committed.find((r) => typeof r.accuracy === 'number' && r.accuracy >= targetAccuracy);
  const epsilon = [...rounds].reverse().find((r) => typeof r.epsilon === 'number')?.epsilon;
  return {
    ...(summary.finalAccuracy !== undefined ? { finalAccuracy: summary.finalAccuracy } : {}),
    ...(accuracies.length > 0 ? { bestAccuracy: Math.max(...accuracies) } : {}),
    ...(reached !== undefined ? { roundsToTarget: reached.round } : {}),
    ...(epsilon !== undefined ? { finalEpsilon: epsilon } : {}),
    committedRounds: committed.length,
    wallTimeSeconds: Math.round(summary.durationMs) / 1000,
  };
}

/** The header of summary.csv for these swept keys. */
export function csvHeader(keys: readonly string[]): string[] {
  return ['run', ...keys, 'seed', 'final_accuracy', 'best_accuracy', 'rounds_to_target', 'final_epsilon', 'committed_rounds', 'wall_time_s'];
}

/** One row of summary.csv; `seed` is the seed the run used. Missing numbers are empty cells. */
export function csvRow(run: PlannedRun, seed: number, result: RunResult): string[] {
  const number = (value: number | undefined) => (value === undefined ? '' : String(value));
  return [
    run.name,
    ...run.values.map(cellText),
    String(seed),
    number(result.finalAccuracy),
    number(result.bestAccuracy),
    number(result.roundsToTarget),
    number(result.finalEpsilon),
    String(result.committedRounds),
    String(result.wallTimeSeconds),
  ];
}

/** RFC 4180 CSV: a field with a comma, quote, CR or LF is quoted, its quotes doubled; CRLF line ends. */
export function toCsv(rows: readonly (readonly string[])[]): string {
  const field = (text: string) => (/[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);
  return rows.map((row) => `${row.map(field).join(',')}\r\n`).join('');
}
