import { mkdir, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setMaxListeners } from 'node:events';
import {
  Coordinator,
  builtinInitialModel,
  coordinatorOptions,
  loadSavedModel,
  serveCoordinator,
  type InitialModel,
  type RoundMetrics,
  type TrainingSummary,
  writeFileAtomically,
} from '@shoal/coordinator';
import { initBackend, wsTransport, type ClientTransport } from '@shoal/client';
import { createSeededRandom } from '@shoal/protocol';
import type { ShoalConfig } from './config.js';
import { take, type Dataset } from './datasets.js';
import { clientData } from './client-data.js';
import { virtualClient } from './virtual-client.js';
import { withFaults } from './faults.js';
import { centralEvaluator } from './evaluate.js';
import { memoryTransport } from './memory-transport.js';
import type { PartitionReport } from './partition.js';

export interface SimulationOptions {
  /** Where metrics.jsonl and summary.json go. */
  readonly outDir: string;
  /** Called after each round (the CLI draws its progress bar from it). */
  readonly onRound?: (metrics: RoundMetrics, config: ShoalConfig) => void;
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
}

export interface SimulationSummary {
  readonly name: string;
  readonly rounds: readonly RoundMetrics[];
  readonly finalAccuracy?: number;
  readonly finalLoss?: number;
  /** Why training ended: all rounds ran, the privacy budget (`dp.targetEpsilon`) ran out, or it was stopped. */
  readonly stoppedBy: TrainingSummary['stoppedBy'];
  /** With `stoppedBy: 'budget'`: what the next round would have spent. */
  readonly stopReason?: string;
  /** The global weights after the last committed round (not written to summary.json). */
  readonly finalWeights: Float32Array;
  readonly backend: string;
  readonly durationMs: number;
  /** How the train split was divided: kind, parameters, each client's size and label histogram. */
  readonly partition: PartitionReport;
}

/** The token virtual clients use; a simulation's coordinator accepts only it. */
const SIMULATION_TOKEN = 'simulation';

/**
 * Runs a whole federated training in this process: the real coordinator, and one real ShoalClient
 * per virtual client, each holding its own partition of the dataset. Central evaluation on the
 * test split after every committed round. Writes `metrics.jsonl` (one line per round) and
 * `summary.json` (with the partition's report; written last, atomically) to `outDir`.
 */
export async function runSimulation(config: ShoalConfig, options: SimulationOptions): Promise<SimulationSummary> {
  const started = performance.now();
  const backend = await initBackend();
  const sim = config.simulation;
  // Split before anything listens, so a split the data does not allow fails without a server to close.
  const random = createSeededRandom(config.seed);
  const { train, test, partitions, partition } = clientData(config, random.fork());
  const faultsRandom = random.fork();
  const model = await initialModel(config, train);
  const evaluation = await centralEvaluator(model.descriptor, sim.testExamples ? take(test, sim.testExamples) : test);

  await mkdir(options.outDir, { recursive: true });
  const metricsPath = join(options.outDir, 'metrics.jsonl');
  await writeFile(metricsPath, '');
  // Appends are chained so lines land in round order, and awaited before the summary is written.
  let metricsWritten: Promise<void> = Promise.resolve();

  const coordinator = new Coordinator({
    ...coordinatorOptions(config),
    model,
    tokens: [SIMULATION_TOKEN],
    // Wait for the whole population before round 1, so every run samples from the same pool.
    minAvailable: config.minAvailable ?? sim.numClients,
    evaluate: evaluation.evaluate,
    onRound: (metrics) => {
      metricsWritten = metricsWritten.then(() => appendFile(metricsPath, `${JSON.stringify(metrics)}\n`));
      options.onRound?.(metrics, config);
    },
    ...(options.log ? { log: options.log } : {}),
  });
  await coordinator.restore();

  let transport: ClientTransport;
  let url = 'memory://coordinator';
  let server: Awaited<ReturnType<typeof serveCoordinator>> | undefined;
  if (sim.transport === 'ws') {
    server = await serveCoordinator(coordinator, { host: '127.0.0.1', port: 0 });
    transport = wsTransport;
    url = server.url;
  } else {
    transport = memoryTransport(coordinator, [SIMULATION_TOKEN]);
  }

  transport = withFaults(transport, config.faults, faultsRandom);
  const clientsStop = new AbortController();
  setMaxListeners(4 * sim.numClients + 10, clientsStop.signal); // every virtual client listens on it
  options.signal?.addEventListener('abort', () => coordinator.stop(), { once: true });
  const link = { url, token: SIMULATION_TOKEN, transport };
  const clients = partitions.map((indices, clientNumber) => virtualClient(config, train, indices, clientNumber, link).run({ signal: clientsStop.signal }));

  try {
    const summary = await coordinator.run();
    await metricsWritten;
    const last = [...summary.rounds].reverse().find((r) => r.status === 'committed');
    const result: SimulationSummary = {
      name: config.name,
      rounds: summary.rounds,
      ...(last?.accuracy !== undefined ? { finalAccuracy: last.accuracy } : {}),
      ...(last?.loss !== undefined ? { finalLoss: last.loss } : {}),
      stoppedBy: summary.stoppedBy,
      ...(summary.reason !== undefined ? { stopReason: summary.reason } : {}),
      finalWeights: summary.weights,
      backend: backend.name,
      durationMs: performance.now() - started,
      partition,
    };
    const { finalWeights: _weights, ...written } = result;
    // Atomically: a summary.json that exists is complete, which is how `shoal sweep` knows a run finished.
    await writeFileAtomically(join(options.outDir, 'summary.json'), `${compactJson({ ...written, rounds: summary.rounds.length, config })}\n`);
    return result;
  } finally {
    clientsStop.abort();
    await Promise.allSettled(clients);
    await server?.close();
    evaluation.dispose();
  }
}

/** JSON indented by 2, but an array of numbers on one line (a 100-client partition report stays ~100 lines). */
function compactJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/\[\n\s*(-?[\d.eE+-]+(?:,\n\s*-?[\d.eE+-]+)*)\n\s*\]/g, (_match, items: string) => `[${items.split(/,\n\s*/).join(', ')}]`);
}

async function initialModel(config: ShoalConfig, train: Dataset): Promise<InitialModel> {
  if ('path' in config.model) return loadSavedModel(config.model.path);
  return builtinInitialModel(config.model.builtin, config.model.inputShape ?? train.featureShape, config.model.numClasses ?? train.numClasses, config.seed);
}
