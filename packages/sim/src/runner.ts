import { mkdir, writeFile, appendFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Coordinator,
  LEDGER_FILE,
  builtinInitialModel,
  describedCardInput,
  modelCard,
  readLedger,
  runDescription,
  writeModelCard,
  coordinatorOptions,
  loadSavedModel,
  serveCoordinator,
  type InitialModel,
  type Logger,
  type RoundMetrics,
  type TrainingSummary,
  writeFileAtomically,
} from '@shoal/coordinator';
import { initBackend, wsTransport } from '@shoal/client';
import { DATASET_SHAPES } from '@shoal/datasets';
import type { ShoalConfig } from './config.js';
import { take, type Dataset } from './datasets.js';
import { VirtualClientHost, simulationData, virtualClients } from './virtual-client.js';
import { centralEvaluator } from './evaluate.js';
import { memoryTransport } from './memory-transport.js';
import type { PartitionReport } from './partition.js';
import { ClientWorkers, simulationWorkers } from './worker-pool.js';

export interface SimulationOptions {
  /** Where metrics.jsonl and summary.json go. */
  readonly outDir: string;
  /** Called after each round (the CLI draws its progress bar from it). */
  readonly onRound?: (metrics: RoundMetrics, config: ShoalConfig) => void;
  /** The coordinator's structured log. Default: silent. */
  readonly logger?: Logger;
  /**
   * With `server.adminTokens`: called with the loopback HTTP origin of /metrics and /dashboard once
   * it listens, before any client starts; the run waits for the promise it returns.
   */
  readonly onAdminListening?: (httpUrl: string) => void | Promise<void>;
  readonly signal?: AbortSignal;
  /** Caps each worker thread's heap, in MiB; a worker over it crashes and fails the run. Default: Node's limit. */
  readonly workerHeapMb?: number;
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
  /** Threads that hosted the virtual clients (`simulation.workers`; 1: the main thread). */
  readonly workers: number;
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
 *
 * With `simulation.workers` > 1 the clients live in that many worker threads (the coordinator
 * stays here); the metrics are the same as with 1, timings aside. A worker that fails fails the
 * run, naming the worker; every thread is ended when the run ends.
 */
export async function runSimulation(config: ShoalConfig, options: SimulationOptions): Promise<SimulationSummary> {
  const started = performance.now();
  const backend = await initBackend();
  const sim = config.simulation;
  // Split before anything listens, so a split the data does not allow fails without a server to close.
  const data = simulationData(config);
  const { train, test, partition } = data;
  const workers = simulationWorkers(config);
  const model = await initialModel(config, train);
  const evaluation = await centralEvaluator(model.descriptor, sim.testExamples ? take(test, sim.testExamples) : test);

  await mkdir(options.outDir, { recursive: true });
  const metricsPath = join(options.outDir, 'metrics.jsonl');
  await writeFile(metricsPath, '');
  // The privacy ledger lives with the checkpoints when there are any (a resumed run must find the
  // ledger its checkpoints were written with), else in the run folder. A run folder holds one run:
  // without checkpoints to resume from, an earlier run's ledger goes (the coordinator would refuse
  // to start a new run over a ledger that recorded rounds).
  const ledgerDir = config.server.checkpointDir ?? options.outDir;
  if (config.server.checkpointDir === undefined) await rm(join(options.outDir, LEDGER_FILE), { force: true });
  // Appends are chained so lines land in round order, and awaited before the summary is written.
  let metricsWritten: Promise<void> = Promise.resolve();

  const coordinator = new Coordinator({
    ...coordinatorOptions(config),
    model,
    tokens: [SIMULATION_TOKEN],
    // Wait for the whole population before round 1, so every run samples from the same pool.
    minAvailable: config.minAvailable ?? sim.numClients,
    evaluate: evaluation.evaluate,
    // Its start entry hashes the whole parsed config.
    ledger: { dir: ledgerDir, config },
    onRound: (metrics) => {
      metricsWritten = metricsWritten.then(() => appendFile(metricsPath, `${JSON.stringify(metrics)}\n`));
      options.onRound?.(metrics, config);
    },
    ...(options.logger ? { logger: options.logger } : {}),
  });
  await coordinator.restore();

  // Loopback HTTP + WebSocket: for the clients with `transport: 'ws'`, and for an operator's
  // /metrics and /dashboard whenever `server.adminTokens` is set (the clients may stay in memory).
  const serves = sim.transport === 'ws' || config.server.adminTokens.length > 0;
  const server = serves ? await serveCoordinator(coordinator, { host: '127.0.0.1', port: 0 }) : undefined;
  if (server && config.server.adminTokens.length > 0) await options.onAdminListening?.(server.httpUrl);
  const wsUrl = sim.transport === 'ws' ? server?.url : undefined;
  let failure: Error | undefined;
  const fail = (error: Error) => {
    failure ??= error;
    coordinator.stop();
  };
  const hosts =
    workers > 1
      ? new ClientWorkers({
          config,
          workers,
          backend: backend.name,
          token: SIMULATION_TOKEN,
          target: wsUrl !== undefined ? { url: wsUrl } : { coordinator },
          onFailure: fail,
          ...(options.workerHeapMb !== undefined ? { maxHeapMb: options.workerHeapMb } : {}),
        })
      : new VirtualClientHost(
          virtualClients(config, data, data.partitions.map((_, k) => k), {
            token: SIMULATION_TOKEN,
            ...(wsUrl !== undefined ? { url: wsUrl, transport: wsTransport } : { url: 'memory://coordinator', transport: memoryTransport(coordinator, [SIMULATION_TOKEN]) }),
          }),
        );
  const onAbort = () => coordinator.stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const starting = hosts.startClients().catch(fail);

  try {
    const summary = await coordinator.run();
    if (failure !== undefined) throw failure;
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
      workers,
      durationMs: performance.now() - started,
      partition,
    };
    await writeCard(options.outDir, ledgerDir, config, partition, summary.rounds);
    const { finalWeights: _weights, ...written } = result;
    // Atomically: a summary.json that exists is complete, which is how `shoal sweep` knows a run finished.
    await writeFileAtomically(join(options.outDir, 'summary.json'), `${compactJson({ ...written, rounds: summary.rounds.length, config })}\n`);
    return result;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await hosts.close();
    await starting;
    await server?.close();
    evaluation.dispose();
  }
}

/**
 * A metrics.jsonl line without what differs between two runs of one seeded config: timings
 * (`durationMs`, SecAgg's `stageMs` and `stageCpuMs`) and the random run id in `modelVersion` (`<run id>:<round>`).
 * Two runs of one config, with any number of workers, agree on the rest.
 */
export function reproducibleMetrics(metrics: RoundMetrics): Record<string, unknown> {
  const { durationMs: _duration, modelVersion, secagg, ...rest } = metrics;
  const round = modelVersion.slice(modelVersion.lastIndexOf(':') + 1);
  if (secagg === undefined) return { ...rest, modelVersion: round };
  const { stageMs: _stageMs, stageCpuMs: _stageCpuMs, ...secaggCounts } = secagg;
  return { ...rest, modelVersion: round, secagg: secaggCounts };
}

/** JSON indented by 2, but an array of numbers on one line (a 100-client partition report stays ~100 lines). */
function compactJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/\[\n\s*(-?[\d.eE+-]+(?:,\n\s*-?[\d.eE+-]+)*)\n\s*\]/g, (_match, items: string) => `[${items.split(/,\n\s*/).join(', ')}]`);
}

/** Writes the run's model card from the ledger the coordinator just finished (before summary.json, which marks a finished run). */
async function writeCard(outDir: string, ledgerDir: string, config: ShoalConfig, partition: PartitionReport, rounds: readonly RoundMetrics[]): Promise<void> {
  const path = join(ledgerDir, LEDGER_FILE);
  const ledger = await readLedger(path);
  if (ledger === undefined || !ledger.ok) throw new Error(`the run's privacy ledger ${path} ${ledger ? `fails verification at entry ${ledger.entry}: ${ledger.problem}` : 'is missing'}`);
  await writeModelCard(outDir, modelCard(describedCardInput(runDescription(config, partition, DATASET_SHAPES[config.simulation.dataset]), ledger.entries, rounds)));
}

async function initialModel(config: ShoalConfig, train: Dataset): Promise<InitialModel> {
  if ('path' in config.model) return loadSavedModel(config.model.path);
  return builtinInitialModel(config.model.builtin, config.model.inputShape ?? train.featureShape, config.model.numClasses ?? train.numClasses, config.seed);
}
