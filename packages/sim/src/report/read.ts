// Reading a run folder (metrics.jsonl, summary.json) or a sweep folder (summary.csv and one run
// folder per row) into what the report pages are built from.
import { readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { ShoalError, configError } from '@shoal/protocol';
import { parseCsv, parseMetrics, runSummary, type RoundRecord, type RunSummary } from './records.js';

/** A run folder as a report sees it. */
export interface RunData {
  /** The run's name: summary.json's, else the folder's. */
  readonly name: string;
  readonly rounds: readonly RoundRecord[];
  /** Lines of metrics.jsonl that were not a round (1-based). */
  readonly unreadableLines: readonly number[];
  /** Absent while the run is in progress: the runner writes summary.json last. */
  readonly summary?: RunSummary;
}

/** One row of a sweep's summary.csv, with its run's rounds when its folder still has metrics.jsonl. */
export interface SweepRun {
  readonly name: string;
  /** The row, keyed by summary.csv's header. */
  readonly cells: Readonly<Record<string, string>>;
  readonly rounds?: readonly RoundRecord[];
  /** True when the run's folder has its own report.html to link to. */
  readonly hasReport: boolean;
}

/** A sweep folder as a report sees it. */
export interface SweepData {
  /** The sweep's name: its folder's. */
  readonly name: string;
  /** summary.csv's header: `run`, the swept keys, then the result columns. */
  readonly header: readonly string[];
  /** The swept config keys: the header's columns between `run` and `seed`. */
  readonly sweptKeys: readonly string[];
  readonly runs: readonly SweepRun[];
}

export type ReportKind = 'run' | 'sweep';

/** The files that make a folder a sweep's or a run's, as named in messages. */
export const SWEEP_FILE = 'summary.csv';
export const RUN_FILES = ['metrics.jsonl', 'summary.json'] as const;

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** The text of a file, or undefined when it does not exist. */
async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Which report a folder gets: `sweep` when it has summary.csv, `run` when it has metrics.jsonl or
 * summary.json. Throws INVALID_CONFIG naming the files looked for when it is neither.
 */
export async function reportKind(dir: string): Promise<ReportKind> {
  let folder;
  try {
    folder = await stat(dir);
  } catch {
    throw configError(`${dir}: no such folder; give a run folder (with ${RUN_FILES.join(' or ')}) or a sweep folder (with ${SWEEP_FILE})`);
  }
  if (!folder.isDirectory()) throw configError(`${dir} is a file; give the run or sweep folder that holds it`);
  if (await isFile(join(dir, SWEEP_FILE))) return 'sweep';
  for (const file of RUN_FILES) if (await isFile(join(dir, file))) return 'run';
  throw configError(`${dir} is neither a run folder (no ${RUN_FILES.join(' or ')}) nor a sweep folder (no ${SWEEP_FILE})`);
}

function malformed(path: string, what: string, cause?: unknown): ShoalError {
  return new ShoalError('INVALID_DATA', `${path}: ${what}`, cause === undefined ? undefined : { cause });
}

/** A run folder: its rounds so far and, when it finished, its summary. */
export async function readRun(dir: string): Promise<RunData> {
  const metricsText = await readIfPresent(join(dir, 'metrics.jsonl'));
  const summaryPath = join(dir, 'summary.json');
  const summaryText = await readIfPresent(summaryPath);
  let summary: RunSummary | undefined;
  if (summaryText !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(summaryText);
    } catch (error) {
      throw malformed(summaryPath, 'is not JSON; rerun the simulation, or delete it to report the run as in progress', error);
    }
    summary = runSummary(json);
    if (summary === undefined) throw malformed(summaryPath, 'is not a JSON object');
  }
  const { rounds, unreadableLines } = parseMetrics(metricsText ?? '');
  const name = summary?.name ?? basename(resolve(dir));
  return { name, rounds, unreadableLines, ...(summary !== undefined ? { summary } : {}) };
}

/** A sweep folder: summary.csv's rows, each with its run's rounds. */
export async function readSweep(dir: string): Promise<SweepData> {
  const csvPath = join(dir, SWEEP_FILE);
  const text = await readIfPresent(csvPath);
  if (text === undefined) throw configError(`${dir} is not a sweep folder (no ${SWEEP_FILE})`);
  const [header, ...rows] = parseCsv(text);
  if (header === undefined || header[0] !== 'run') throw malformed(csvPath, `the header must start with "run", got ${JSON.stringify(header?.[0] ?? '')}`);
  const seedColumn = header.indexOf('seed');
  const sweptKeys = header.slice(1, seedColumn > 0 ? seedColumn : 1);
  const runs = await Promise.all(
    rows
      .filter((row) => row.some((cell) => cell !== ''))
      .map(async (row): Promise<SweepRun> => {
        const cells = Object.fromEntries(header.map((column, i) => [column, row[i] ?? '']));
        const name = cells['run'] ?? '';
        const runDir = join(dir, name);
        const metrics = name === '' ? undefined : await readIfPresent(join(runDir, 'metrics.jsonl'));
        const hasReport = name !== '' && (await isFile(join(runDir, 'report.html')));
        return { name, cells, ...(metrics !== undefined ? { rounds: parseMetrics(metrics).rounds } : {}), hasReport };
      }),
  );
  return { name: basename(resolve(dir)), header, sweptKeys, runs };
}
