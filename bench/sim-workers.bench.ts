// Parallel virtual clients (`simulation.workers`): a training-bound simulation, McMahan et al.'s
// 2NN on MNIST (600 examples per client, E = 1, B = 10, 10 clients per round, all 10 selected), run
// with 1 worker (every client in the main thread) and with 2 worker threads, in this process one
// after the other. All 10 are selected so each thread trains 5 per round: with a cohort sampled from
// a larger population the busier thread holds more than half of it (docs/benchmarks.md). Figure: the speed-up of the rounds (sum of the rounds' durationMs; the whole run's
// wall time, worker start-up included, is printed beside it). Target on 2 cores: >= 1.7×.
// Correctness: both runs must commit every round and write the same metrics (timings aside); otherwise exit 1.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, reproducibleMetrics, runSimulation, type SimulationSummary } from '@shoal/sim';
import { check, report, sized } from './lib.js';

const ROUNDS = sized(3, 2);
const CLIENTS = sized(10, 4);
const raw = {
  name: 'bench-sim-workers',
  seed: 1,
  rounds: ROUNDS,
  model: '2nn',
  clientsPerRound: CLIENTS,
  minClients: CLIENTS,
  roundTimeoutMs: 600_000,
  train: { epochs: 1, batchSize: 10, learningRate: 0.05 },
  // Quick mode trains on the small digits set: each worker thread loads its own copy of the data.
  simulation: { dataset: sized('mnist', 'digits'), numClients: CLIENTS, examplesPerClient: sized(600, 60), testExamples: sized(1_000, 100) },
};

async function run(workers: number): Promise<{ summary: SimulationSummary; metrics: string[]; roundsMs: number }> {
  const outDir = await mkdtemp(join(tmpdir(), 'shoal-bench-workers-'));
  try {
    const config = parseConfig({ ...raw, simulation: { ...raw.simulation, workers } });
    const summary = await runSimulation(config, { outDir });
    const lines = (await readFile(join(outDir, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    const metrics = lines.map((line) => JSON.stringify(reproducibleMetrics(JSON.parse(line))));
    const roundsMs = summary.rounds.reduce((total, round) => total + round.durationMs, 0);
    return { summary, metrics, roundsMs };
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}

const one = await run(1);
const two = await run(2);
const same = one.metrics.length === ROUNDS && one.metrics.every((line, i) => line === two.metrics[i]);
const committed = one.summary.rounds.filter((round) => round.status === 'committed').length;
report(
  `sim-workers: rounds, 1 worker / 2 workers (2NN ${raw.simulation.dataset}, ${CLIENTS} clients per round)`,
  one.roundsMs / two.roundsMs,
  `1 worker ${(one.roundsMs / 1000).toFixed(1)} s, 2 workers ${(two.roundsMs / 1000).toFixed(1)} s over ${ROUNDS} rounds; ${one.summary.backend} backend`,
  { op: '>=', value: 1.7 },
);
report('sim-workers: whole run incl. start-up, 1 worker / 2 workers', one.summary.durationMs / two.summary.durationMs, `${(one.summary.durationMs / 1000).toFixed(1)} s vs ${(two.summary.durationMs / 1000).toFixed(1)} s`);
console.log(`metrics of the two runs (timings aside): ${same ? 'identical' : 'DIFFERENT'}; ${committed}/${ROUNDS} rounds committed`);
check(same, 'sim-workers: the runs with 1 and 2 workers write the same metrics (timings aside)');
check(committed === ROUNDS && two.summary.rounds.every((round) => round.status === 'committed'), `sim-workers: both runs commit all ${ROUNDS} rounds (1 worker: ${committed})`);
