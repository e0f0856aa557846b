// What a report reads from a run's files, parsed defensively: metrics.jsonl and summary.json are
// files on disk (possibly from an older or newer Shoal, or half-written by a run in progress), so
// every field is checked for its type and anything unexpected is left out rather than trusted.
// Pure: no I/O here (read.ts does that).
import type { MetricDistribution } from '@shoal/coordinator';

/** The SecAgg stages in protocol order; a stage this list lacks (a newer Shoal) is kept after them. */
export const SECAGG_STAGES = ['advertise', 'share', 'masked', 'confirm', 'unmask'] as const;

/** Mean, spread and tails of one quantity over the clients of a federated evaluation: the coordinator's own type. */
export type ClientSpread = MetricDistribution;

/** One line of metrics.jsonl: the fields a report plots, each present only when the line had it with the right type. */
export interface RoundRecord {
  readonly round: number;
  readonly status: 'committed' | 'aborted';
  readonly reason?: string;
  readonly accuracy?: number;
  readonly loss?: number;
  readonly trainLoss?: number;
  readonly bytesUp?: number;
  readonly bytesDown?: number;
  readonly durationMs?: number;
  /** Clients lost in the round (all stages together). */
  readonly dropouts?: number;
  /** SecAgg rounds: the mode and the clients lost in each stage, in stage order. */
  readonly secagg?: { readonly mode: string; readonly dropouts: readonly (readonly [stage: string, count: number])[] };
  readonly maxUpdateNorm?: number;
  readonly medianUpdateNorm?: number;
  readonly clipNorm?: number;
  readonly epsilon?: number;
  readonly delta?: number;
  readonly noiseStd?: number;
  readonly federatedEvaluation?: { readonly clients: number; readonly examples: number; readonly accuracy: ClientSpread; readonly loss?: ClientSpread };
}

/** metrics.jsonl read line by line: the rounds, and the (1-based) numbers of lines that were not a round. */
export interface MetricsFile {
  readonly rounds: readonly RoundRecord[];
  readonly unreadableLines: readonly number[];
}

type JsonObject = Readonly<Record<string, unknown>>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `object[key]` when it is a finite number. */
export function finiteAt(object: JsonObject, key: string): number | undefined {
  const value = object[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** `object[key]` when it is a string. */
export function stringAt(object: JsonObject, key: string): string | undefined {
  const value = object[key];
  return typeof value === 'string' ? value : undefined;
}

/** The value at a dotted path (`dp.noiseMultiplier`) of nested objects, or undefined. */
export function valueAtPath(root: unknown, path: string): unknown {
  let value: unknown = root;
  for (const key of path.split('.')) {
    if (!isObject(value)) return undefined;
    value = value[key];
  }
  return value;
}

/** `{ key: value }` when value is defined, else `{}`: for spreading optional fields. */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** Each `FIELD` that is a finite number, copied. */
const NUMBER_FIELDS = ['accuracy', 'loss', 'trainLoss', 'bytesUp', 'bytesDown', 'durationMs', 'dropouts', 'maxUpdateNorm', 'medianUpdateNorm', 'clipNorm', 'epsilon', 'delta', 'noiseStd'] as const;

/** One parsed line of metrics.jsonl as a round, or undefined when it lacks a round number or status. */
export function roundRecord(value: unknown): RoundRecord | undefined {
  if (!isObject(value)) return undefined;
  const round = finiteAt(value, 'round');
  const status = value['status'];
  if (round === undefined || (status !== 'committed' && status !== 'aborted')) return undefined;
  const numbers: Record<string, number> = {};
  for (const field of NUMBER_FIELDS) {
    const number = finiteAt(value, field);
    if (number !== undefined) numbers[field] = number;
  }
  return {
    round,
    status,
    ...optional('reason', stringAt(value, 'reason')),
    ...numbers,
    ...optional('secagg', secaggDropouts(value['secagg'])),
    ...optional('federatedEvaluation', federatedEvaluation(value['federatedEvaluation'])),
  };
}

function secaggDropouts(value: unknown): RoundRecord['secagg'] {
  if (!isObject(value) || !isObject(value['dropouts'])) return undefined;
  const byStage = value['dropouts'];
  const stages = [...SECAGG_STAGES.filter((stage) => stage in byStage), ...Object.keys(byStage).filter((stage) => !(SECAGG_STAGES as readonly string[]).includes(stage))];
  const dropouts = stages.flatMap((stage) => {
    const count = finiteAt(byStage, stage);
    return count === undefined ? [] : [[stage, count] as const];
  });
  return { mode: stringAt(value, 'mode') ?? 'secagg', dropouts };
}

function clientSpread(value: unknown): ClientSpread | undefined {
  if (!isObject(value)) return undefined;
  const fields = ['mean', 'std', 'min', 'max', 'worst10', 'best10'] as const;
  const numbers = fields.map((field) => finiteAt(value, field));
  if (numbers.some((number) => number === undefined)) return undefined;
  const [mean, std, min, max, worst10, best10] = numbers as number[];
  return { mean: mean!, std: std!, min: min!, max: max!, worst10: worst10!, best10: best10! };
}

function federatedEvaluation(value: unknown): RoundRecord['federatedEvaluation'] {
  if (!isObject(value)) return undefined;
  const accuracy = clientSpread(value['accuracy']);
  const clients = finiteAt(value, 'clients');
  const examples = finiteAt(value, 'examples');
  if (accuracy === undefined || clients === undefined || examples === undefined) return undefined;
  return { clients, examples, accuracy, ...optional('loss', clientSpread(value['loss'])) };
}

/**
 * metrics.jsonl's text as rounds. A line that is not JSON or not a round (e.g. the half-written last
 * line of a run in progress) is skipped and its number reported, so the page can say so.
 */
export function parseMetrics(text: string): MetricsFile {
  const rounds: RoundRecord[] = [];
  const unreadableLines: number[] = [];
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    let record: RoundRecord | undefined;
    try {
      record = roundRecord(JSON.parse(line));
    } catch {
      record = undefined;
    }
    if (record === undefined) unreadableLines.push(index + 1);
    else rounds.push(record);
  });
  return { rounds, unreadableLines };
}

/** What summary.json says about a finished run, each field only when present with the right type. */
export interface RunSummary {
  readonly name?: string;
  readonly finalAccuracy?: number;
  readonly durationMs?: number;
  readonly stoppedBy?: string;
  readonly stopReason?: string;
  readonly backend?: string;
  readonly partitionKind?: string;
  /** The config the run used, with its defaults filled in (unknown shape: read with valueAtPath). */
  readonly config?: JsonObject;
}

/** summary.json's parsed JSON as a RunSummary; undefined when it is not an object. */
export function runSummary(value: unknown): RunSummary | undefined {
  if (!isObject(value)) return undefined;
  const partition = value['partition'];
  const config = value['config'];
  return {
    ...optional('name', stringAt(value, 'name')),
    ...optional('finalAccuracy', finiteAt(value, 'finalAccuracy')),
    ...optional('durationMs', finiteAt(value, 'durationMs')),
    ...optional('stoppedBy', stringAt(value, 'stoppedBy')),
    ...optional('stopReason', stringAt(value, 'stopReason')),
    ...optional('backend', stringAt(value, 'backend')),
    ...optional('partitionKind', isObject(partition) ? stringAt(partition, 'kind') : undefined),
    ...optional('config', isObject(config) ? config : undefined),
  };
}

/**
 * RFC 4180 CSV as rows of fields: quoted fields may hold commas, doubled quotes and line breaks;
 * lines end in CRLF or LF. A final line break ends the last row, it does not start a new one.
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const endField = () => {
    row.push(field);
    field = '';
  };
  const endRow = () => {
    endField();
    rows.push(row);
    row = [];
  };
  while (i < text.length) {
    const char = text[i]!;
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (char === '"') quoted = false;
      else field += char;
      i++;
      continue;
    }
    if (char === '"' && field === '') quoted = true;
    else if (char === ',') endField();
    else if (char === '\n') endRow();
    else if (char === '\r' && text[i + 1] === '\n') {
      endRow();
      i++;
    } else field += char;
    i++;
  }
  if (field !== '' || row.length > 0 || quoted) endRow();
  return rows;
}
