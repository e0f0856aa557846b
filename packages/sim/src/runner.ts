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
} from '@shoal/coordinator';
import { ShoalClient, initBackend, wsTransport, type ClientTransport } from '@shoal/client';
import { createSeededRandom } from '@shoal/protocol';
import type { ShoalConfig } from './config.js';
import { loadDataset, subset, take, type Dataset } from './datasets.js';
import { withFaults } from './faults.js';
import { centralEvaluator } from './evaluate.js';
import { memoryTransport } from './memory-transport.js';
import { partitionIid } from './partition.js';

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
}

/** The token virtual clients use; a simulation's coordinator accepts only it. */
const SIMULATION_TOKEN = 'simulation';

/**
 * Runs a whole federated training in this process: the real coordinator, and one real ShoalClient
 * per virtual client, each holding its own partition of the dataset. Central evaluation on the
 * test split after every committed round. Writes `metrics.jsonl` (one line per round) and
 * `summary.json` to `outDir`.
 */
export async function runSimulation(config: ShoalConfig, options: SimulationOptions): Promise<SimulationSummary> {
  const started = performance.now();
  const backend = await initBackend();
  const sim = config.simulation;
  const { train, test } = loadDataset(sim.dataset, { seed: config.seed });
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

  const random = createSeededRandom(config.seed);
  const partitions = partitionIid(train.length, sim.numClients, random.fork(), sim.examplesPerClient);
  transport = withFaults(transport, config.faults, random.fork());
  const clientsStop = new AbortController();
  setMaxListeners(4 * sim.numClients + 10, clientsStop.signal); // every virtual client listens on it
  options.signal?.addEventListener('abort', () => coordinator.stop(), { once: true });
  const clients = partitions.map((indices, clientNumber) => {
    const data = subset(train, indices);
    const client = new ShoalClient({
      url,
      token: SIMULATION_TOKEN,
      transport,
      data: { x: data.x, y: data.y, featureShape: data.featureShape },
      shuffleSeed: config.seed * 100_003 + clientNumber, // reproducible local training
      prepare: async () => {}, // the backend is chosen once, above, for all virtual clients
    });
    return client.run({ signal: clientsStop.signal });
  });

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
    };
    const { finalWeights: _weights, ...written } = result;
    await writeFile(join(options.outDir, 'summary.json'), `${JSON.stringify({ ...written, rounds: summary.rounds.length, config }, null, 2)}\n`);
    return result;
  } finally {
    clientsStop.abort();
    await Promise.allSettled(clients);
    await server?.close();
    evaluation.dispose();
  }
}

async function initialModel(config: ShoalConfig, train: Dataset): Promise<InitialModel> {
  if ('path' in config.model) return loadSavedModel(config.model.path);
  return builtinInitialModel(config.model.builtin, config.model.inputShape ?? train.featureShape, config.model.numClasses ?? train.numClasses, config.seed);
}
