// `shoal sweep`: a grid of simulations, each run by the CLI's own `simulate` in a child process.
//
// Why child processes and not runSimulation concurrently in this process: tfjs has one global
// engine and backend per process, and JavaScript runs on one thread, so runs sharing a process
// would take turns on one core (no speed-up from --concurrency), share one tensor memory and its
// leak checks, fold each other's work into their wall times and round deadlines, and one crash or
// out-of-memory would end them all. A child per run uses the cores, keeps every run exactly what
// `shoal simulate` does (same code path, same outputs), and costs about a second of start-up.
import { spawn } from 'node:child_process';
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomically } from '@shoal/coordinator';
import { configError } from '@shoal/protocol';
import { parseConfig, type ShoalConfig } from '@shoal/sim/config';
import { integerFlag, parseFlags } from './args.js';
import { applyOverrides, readConfig } from './config-file.js';
import { assignment, csvHeader, csvRow, parseGridFlag, planRuns, runResult, toCsv, type GridAxis, type RoundLine, type RunResult } from './sweep-plan.js';

/** The `shoal` launcher next to this module (../bin from src/ and from dist/ alike). */
const SHOAL_BIN = fileURLToPath(new URL('../bin/shoal.js', import.meta.url));

/** The `sweep` command; resolves with the exit code. */
export async function sweep(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    'sweep',
    args,
    {
      grid: { type: 'string', multiple: true },
      set: { type: 'string', multiple: true },
      seeds: { type: 'string' },
      concurrency: { type: 'string' },
      'target-accuracy': { type: 'string' },
      out: { type: 'string' },
    },
    true,
  );
  const configPath = positionals[0];
  if (configPath === undefined || positionals.length > 1) throw configError('sweep takes exactly one config file: shoal sweep CONFIG.json --grid key.path=[v1,v2,…] (shoal sweep --help)');
  const seeds = values.seeds === undefined ? undefined : integerFlag('seeds', values.seeds, 1, 10_000);
  const concurrency = values.concurrency === undefined ? 1 : integerFlag('concurrency', values.concurrency, 1, 256);
  const targetAccuracy = values['target-accuracy'] === undefined ? undefined : accuracyFlag(values['target-accuracy']);
  const baseSets = values.set ?? [];
  const axes = (values.grid ?? []).map(parseGridFlag);
  const runs = planRuns(axes, seeds);

  // Every run's config is validated before any starts, so a typo fails now, not after an hour.
  const base = await readConfig(configPath, baseSets, (raw, defaultName) => ({ raw, defaultName, config: parseConfig(raw, defaultName) }));
  checkAxes(axes, base.raw, base.defaultName);
  const configs = runs.map((run) => {
    try {
      return parseConfig(applyOverrides(base.raw, run.overrides), base.defaultName);
    } catch (error) {
      throw configError(`run ${run.name}: ${(error as Error).message}`, { cause: error });
    }
  });

  const outDir = values.out ?? join('runs', `${base.config.name}-sweep`);
  await mkdir(outDir, { recursive: true });
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const results: (RunResult | undefined)[] = [];
  const failed: string[] = [];
  let ran = 0;
  let next = 0;
  const count = `/${runs.length}`;
  try {
    const worker = async () => {
      while (next < runs.length && !stop.signal.aborted) {
        const i = next++;
        const run = runs[i]!;
        const runDir = join(outDir, run.name);
        const done = await readFinishedRun(runDir, configs[i]!, targetAccuracy);
        if (done !== undefined) {
          results[i] = done;
          process.stdout.write(`[${i + 1}${count}] skipped ${run.name}: already finished\n`);
          continue;
        }
        await mkdir(runDir, { recursive: true });
        const code = await simulateChild(configPath, [...baseSets, ...run.overrides], runDir, stop.signal);
        const result = code === 0 ? await readFinishedRun(runDir, configs[i]!, targetAccuracy) : undefined;
        if (result === undefined) {
          if (!stop.signal.aborted) failed.push(run.name);
          process.stdout.write(`[${i + 1}${count}] failed ${run.name}: see ${join(runDir, 'simulate.log')}\n`);
          continue;
        }
        ran++;
        results[i] = result;
        const accuracy = result.finalAccuracy === undefined ? 'n/a' : `${(100 * result.finalAccuracy).toFixed(2)}%`;
        process.stdout.write(`[${i + 1}${count}] ran ${run.name}: final accuracy ${accuracy} in ${result.wallTimeSeconds.toFixed(1)} s\n`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, runs.length) }, worker));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const rows = runs.flatMap((run, i) => (results[i] === undefined ? [] : [csvRow(run, configs[i]!.seed, results[i]!)]));
  const csvPath = join(outDir, 'summary.csv');
  await writeFileAtomically(csvPath, toCsv([csvHeader(axes.map((axis) => axis.key)), ...rows]));
  const finished = results.filter((r) => r !== undefined).length;
  process.stdout.write(`${finished}/${runs.length} runs finished (${ran} ran, ${finished - ran} already done): ${csvPath}\n`);
  // The report shows the finished runs, also after an interruption or failures (loaded only now: it brings vega).
  const { writeSweepReport } = await import('@shoal/sim/report');
  process.stdout.write(`report: ${await writeSweepReport(outDir)}\n`);
  if (stop.signal.aborted) {
    process.stderr.write('shoal: sweep: interrupted; run the same command again to finish the remaining runs\n');
    return 130;
  }
  if (failed.length > 0) {
    process.stderr.write(`shoal: sweep: ${failed.length} of ${runs.length} runs failed (their simulate.log says why): ${failed.join(', ')}\n`);
    return 1;
  }
  return 0;
}

/** --target-accuracy: a number in (0, 1]. */
function accuracyFlag(text: string): number {
  const value = Number(text);
  if (!(text.trim() !== '' && value > 0 && value <= 1)) throw configError(`--target-accuracy must be a number in (0, 1], got ${JSON.stringify(text)}`);
  return value;
}

/** Each grid value alone, so a bad key or value is reported against the --grid flag that brought it. */
function checkAxes(axes: readonly GridAxis[], raw: unknown, defaultName: string): void {
  for (const { key, values } of axes) {
    for (const value of values) {
      try {
        parseConfig(applyOverrides(raw, [assignment(key, value)]), defaultName);
      } catch (error) {
        throw configError(`--grid ${key}=${JSON.stringify(value)}: ${(error as Error).message}`, { cause: error });
      }
    }
  }
}

/**
 * The row data of a run that finished with this very config, or undefined. The runner writes
 * summary.json last and atomically, so one that parses and carries the same config is complete;
 * a different config (the base file or --set changed) means the run must be redone.
 */
async function readFinishedRun(runDir: string, config: ShoalConfig, targetAccuracy: number | undefined): Promise<RunResult | undefined> {
  let summary: { finalAccuracy?: number; durationMs?: unknown; rounds?: unknown; config?: unknown };
  let rounds: RoundLine[];
  try {
    summary = JSON.parse(await readFile(join(runDir, 'summary.json'), 'utf8'));
    rounds = (await readFile(join(runDir, 'metrics.jsonl'), 'utf8'))
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as RoundLine);
  } catch {
    return undefined;
  }
  if (typeof summary.durationMs !== 'number' || summary.rounds !== rounds.length) return undefined;
  if (JSON.stringify(summary.config) !== JSON.stringify(config)) return undefined;
  return runResult({ durationMs: summary.durationMs, ...(typeof summary.finalAccuracy === 'number' ? { finalAccuracy: summary.finalAccuracy } : {}) }, rounds, targetAccuracy);
}

/** `shoal simulate CONFIG --set … --out DIR --quiet` in a child; its output goes to DIR/simulate.log. Resolves with its exit code. */
async function simulateChild(configPath: string, overrides: readonly string[], runDir: string, signal: AbortSignal): Promise<number | null> {
  const log = await open(join(runDir, 'simulate.log'), 'w');
  try {
    const args = [SHOAL_BIN, 'simulate', configPath, ...overrides.flatMap((set) => ['--set', set]), '--out', runDir, '--quiet'];
    const child = spawn(process.execPath, args, { stdio: ['ignore', log.fd, log.fd], signal, killSignal: 'SIGTERM' });
    return await new Promise<number | null>((resolve) => {
      child.once('error', () => resolve(null)); // an abort, or no node to start
      child.once('close', (code) => resolve(code));
    });
  } finally {
    await log.close();
  }
}
