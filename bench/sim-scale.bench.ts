// Simulation scale (issue #11, "Benchmarks"): logistic regression on MNIST under SecAgg+, with
// 100, 1,000 and 10,000 virtual clients, 10 % of them selected per round (10, 100, 1,000), every
// client holding 6 examples (60,000 / 10,000), so each selected client does the same local work at
// every scale and only the population and the cohort grow. Each scale runs in its own child process
// (this file, started with `--scale N`), so its peak memory is its own.
//
// Figures:
// - scaling: seconds per round per selected client at 1,000 and 10,000 clients, over the same at
//   100; target ≤ 1× (cost linear or better in the cohort). Seconds per round per client of the
//   population are printed beside it.
// - the 10,000-client run: seconds per round; the peak memory of the whole process (VmHWM of
//   /proc/self/status: the main thread and any worker threads share it), target < 2 GiB; memory per
//   virtual client, (peak at 10,000 − peak at 100) / 9,900, which cancels what every run pays once
//   (Node, tfjs and its backend, the dataset, the test split).
// - per SecAgg stage at each scale: wall seconds (`secagg.stageMs`) beside the process's CPU seconds
//   (`secagg.stageCpuMs`), means over the committed rounds. The virtual clients run in this
//   process, so that CPU is the coordinator's plus its clients' (their training, key generation,
//   sharing and masking); the coordinator's alone is measured by load-secagg.bench.ts, whose clients
//   run in other processes.
// Correctness: every run must commit all its rounds, and report stageCpuMs for every stage, else exit 1.
//
// `simulation.workers: 1`: on 6 examples a client trains in about a millisecond, so the rounds are
// bound by the coordinator's SecAgg+ work in the main thread, and each worker thread would load its
// own copy of MNIST and of the backend (docs/benchmarks.md, "Simulation scale").
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SecAggStage } from '@shoal/coordinator';
import { parseConfig, runSimulation } from '@shoal/sim';
import { check, report, sized } from './lib.js';

// Quick mode: three small populations of the digits set, whose ~1,440 training examples hold at
// most 239 clients of 6.
const SCALES = sized([100, 1_000, 10_000], [100, 150, 230]);
const DATASET = sized('mnist', 'digits');
const COHORT_FRACTION = 0.1;
const EXAMPLES_PER_CLIENT = 6;
const ROUNDS = sized(3, 2);
const MEMORY_TARGET_BYTES = 2 * 2 ** 30;
const STAGES: readonly SecAggStage[] = ['advertise', 'share', 'masked', 'confirm', 'unmask'];

/** What one child process reports (one JSON line on stdout, prefixed so logs cannot be mistaken for it). */
interface ScaleResult {
  readonly clients: number;
  readonly perRound: number;
  readonly committed: number;
  readonly rounds: number;
  /** Why each round that did not commit aborted. */
  readonly abortReasons: readonly string[];
  /** Mean `durationMs` of the committed rounds. */
  readonly roundMs: number;
  /** From start until the first round began: loading, building and admitting the clients. */
  readonly startupMs: number;
  readonly totalMs: number;
  /** VmHWM before the simulation started (Node, tsx, the imported packages). */
  readonly processBaselineBytes: number;
  /** VmHWM at the end: the peak resident memory of the whole process, threads included. */
  readonly peakBytes: number;
  readonly backend: string;
  /** Per SecAgg stage, means over the committed rounds: wall ms, and the process's CPU ms (NaN when a round did not report it). */
  readonly stageMs: Readonly<Record<SecAggStage, number>>;
  readonly stageCpuMs: Readonly<Record<SecAggStage, number>>;
}
const RESULT_PREFIX = 'sim-scale-result ';

async function peakResidentBytes(): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8');
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error('sim-scale: /proc/self/status has no VmHWM line (the bench needs Linux)');
  return Number(match[1]) * 1024;
}

async function runScale(clients: number): Promise<ScaleResult> {
  const processBaselineBytes = await peakResidentBytes();
  const perRound = Math.round(clients * COHORT_FRACTION);
  const config = parseConfig({
    name: `bench-sim-scale-${clients}`,
    seed: 1,
    rounds: ROUNDS,
    model: 'logreg',
    clientsPerRound: perRound,
    minClients: Math.ceil(perRound * 0.8),
    roundTimeoutMs: 600_000,
    train: { epochs: 1, batchSize: 10, learningRate: 0.1 },
    // In-process clients answer pings from the main thread's event loop, so a stall of that loop
    // longer than two intervals (the coordinator's own SecAgg work for 1,000 clients on a loaded
    // machine) read as every client's death; the default 5 s aborted every 10,000-client round here
    // before the coordinator learnt to skip a check that fires late (not re-measured since).
    server: { heartbeatIntervalMs: 60_000 },
    // Likewise a SecAgg+ stage of 1,000 clients can take longer than the default 30 s on 2 shared
    // cores; this bench measures the cost of the stages, not their deadlines.
    secagg: { mode: 'secagg+', stageTimeoutMs: 600_000 },
    simulation: { dataset: DATASET, numClients: clients, examplesPerClient: EXAMPLES_PER_CLIENT, testExamples: sized(1_000, 200), workers: 1 },
  });
  const outDir = await mkdtemp(join(tmpdir(), 'shoal-bench-scale-'));
  try {
    const summary = await runSimulation(config, { outDir });
    const committed = summary.rounds.filter((round) => round.status === 'committed');
    const roundsMs = summary.rounds.reduce((total, round) => total + round.durationMs, 0);
    const meanPerStage = (pick: (round: (typeof committed)[number], stage: SecAggStage) => number | undefined) =>
      Object.fromEntries(STAGES.map((stage) => [stage, committed.reduce((total, round) => total + (pick(round, stage) ?? Number.NaN), 0) / committed.length])) as Record<SecAggStage, number>;
    return {
      clients,
      perRound,
      committed: committed.length,
      rounds: summary.rounds.length,
      abortReasons: summary.rounds.filter((round) => round.status !== 'committed').map((round) => `round ${round.round}: ${round.reason ?? round.status}`),
      roundMs: committed.reduce((total, round) => total + round.durationMs, 0) / Math.max(1, committed.length),
      startupMs: summary.durationMs - roundsMs,
      totalMs: summary.durationMs,
      processBaselineBytes,
      peakBytes: await peakResidentBytes(),
      backend: summary.backend,
      stageMs: meanPerStage((round, stage) => round.secagg?.stageMs[stage]),
      stageCpuMs: meanPerStage((round, stage) => round.secagg?.stageCpuMs?.[stage]),
    };
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}

/** Runs one scale in a fresh Node process (this file with `--scale N`) and reads its result line. */
function runScaleInChild(clients: number): ScaleResult {
  const self = fileURLToPath(import.meta.url);
  // The child inherits the environment, SHOAL_BENCH_QUICK included, so it runs the same mode.
  const child = spawnSync(process.execPath, ['--conditions=shoal-source', '--import', 'tsx', self, '--scale', String(clients)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
  });
  const line = child.stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
  if (child.status !== 0 || line === undefined) {
    console.error(child.stdout);
    throw new Error(`sim-scale: the ${clients}-client run failed (exit ${child.status}, signal ${child.signal})`);
  }
  return JSON.parse(line.slice(RESULT_PREFIX.length)) as ScaleResult;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

const scaleArg = process.argv.indexOf('--scale');
if (scaleArg >= 0) {
  const result = await runScale(Number(process.argv[scaleArg + 1]));
  console.log(`${RESULT_PREFIX}${JSON.stringify(result)}`);
} else {
  const results: ScaleResult[] = [];
  for (const clients of SCALES) {
    const result = runScaleInChild(clients);
    results.push(result);
    console.log(
      `${clients} clients, ${result.perRound} per round: ${result.committed}/${result.rounds} rounds committed, ` +
        `${seconds(result.roundMs)} per round, start-up ${seconds(result.startupMs)}, whole run ${seconds(result.totalMs)}, ` +
        `peak ${mib(result.peakBytes)} (process before the run ${mib(result.processBaselineBytes)}); ${result.backend} backend` +
        (result.abortReasons.length > 0 ? `; aborted: ${result.abortReasons.join('; ')}` : ''),
    );
    console.log(
      `  per SecAgg stage, wall / process CPU (coordinator and in-process clients): ` +
        STAGES.map((stage) => `${stage} ${seconds(result.stageMs[stage])} / ${seconds(result.stageCpuMs[stage])}`).join(', '),
    );
  }
  const [small, medium, large] = results as [ScaleResult, ScaleResult, ScaleResult];
  const perSelected = (r: ScaleResult) => r.roundMs / r.perRound;
  const perMember = (r: ScaleResult) => r.roundMs / r.clients;
  for (const r of [medium, large]) {
    report(
      `sim-scale: round time per selected client, ${r.clients} / ${small.clients} clients`,
      perSelected(r) / perSelected(small),
      `${(perSelected(r)).toFixed(2)} ms vs ${perSelected(small).toFixed(2)} ms per selected client; per client of the population ${perMember(r).toFixed(3)} vs ${perMember(small).toFixed(3)} ms`,
      { op: '<=', value: 1 },
    );
  }
  report(
    `sim-scale: peak memory of the ${large.clients.toLocaleString('en')}-client run / 2 GiB`,
    large.peakBytes / MEMORY_TARGET_BYTES,
    `peak ${mib(large.peakBytes)}; ${seconds(large.roundMs)} per round of ${large.perRound}`,
    { op: '<=', value: 1 },
  );
  const perClientBytes = (large.peakBytes - small.peakBytes) / (large.clients - small.clients);
  console.log(
    `sim-scale: memory per virtual client (peak at ${large.clients} − peak at ${small.clients}) / ${large.clients - small.clients}: ${(perClientBytes / 1024).toFixed(1)} KiB; ` +
      `per client at ${medium.clients} the same way: ${((medium.peakBytes - small.peakBytes) / (medium.clients - small.clients) / 1024).toFixed(1)} KiB`,
  );
  for (const r of results) {
    check(r.committed === ROUNDS && r.rounds === ROUNDS, `sim-scale: the ${r.clients}-client run commits its ${ROUNDS} rounds (${r.committed}/${r.rounds}${r.abortReasons.length > 0 ? `: ${r.abortReasons.join('; ')}` : ''})`);
    check(STAGES.every((stage) => Number.isFinite(r.stageCpuMs[stage]) && r.stageCpuMs[stage] >= 0), `sim-scale: the ${r.clients}-client run reports a finite stageCpuMs ≥ 0 for every stage (${JSON.stringify(r.stageCpuMs)})`);
  }
}
