import { ShoalError, type TrainConfig } from '@shoal/protocol';
import type { Strategy } from '@shoal/strategy';
import type { InitialModel } from './model-init.js';
import type { RoundMetrics } from './round.js';
import type { SecAggOptions } from './secagg-round.js';
import type { DpOptions } from './privacy.js';

export interface EvaluationResult {
  readonly loss: number;
  readonly accuracy: number;
}

/** Everything a coordinator needs. Defaults are given on each field. */
export interface CoordinatorOptions {
  /** The model to start from (unless a checkpoint in `checkpointDir` says otherwise). */
  readonly model: InitialModel;
  /** Bearer tokens accepted in the HTTP upgrade. At least one is required. */
  readonly tokens: readonly string[];
  /** Rounds to run (committed or aborted); the coordinator stops after the last. */
  readonly rounds: number;
  /** Cohort size per round. Default: all available clients (or `fraction` of them). */
  readonly clientsPerRound?: number;
  /** Cohort size as a fraction of available clients, used when clientsPerRound is unset. */
  readonly fraction?: number;
  /** A round with fewer valid updates than this aborts. Default 2. */
  readonly minClients?: number;
  /** Clients that must be connected and idle before a round starts. Default max(minClients, clientsPerRound). */
  readonly minAvailable?: number;
  /** Deadline for the cohort's updates, from the moment `train` is sent. Default 60,000 ms. */
  readonly roundTimeoutMs?: number;
  readonly train: TrainConfig;
  readonly strategy: Strategy;
  /** Seeds cohort sampling. Default 0. */
  readonly seed?: number;
  /** Ping interval; a client silent for two intervals is dropped. Default 5,000 ms. */
  readonly heartbeatIntervalMs?: number;
  /** Where checkpoints go; resumes from the newest one found there. Default: no checkpoints. */
  readonly checkpointDir?: string;
  /** Central evaluation of each new global model (e.g. on a held-out test set). */
  readonly evaluate?: (weights: Float32Array, round: number) => Promise<EvaluationResult>;
  /** Secure aggregation: the coordinator learns only the sum of the cohort's updates. Default: off. */
  readonly secagg?: SecAggOptions;
  /** Client-level differential privacy; needs `clientsPerRound` (the expected cohort). Default: off. */
  readonly dp?: DpOptions;
  /**
   * How cohorts are drawn: `fixed` takes exactly clientsPerRound (or fraction) of the idle clients;
   * `poisson` takes each idle client independently with probability q = clientsPerRound / idle
   * (or fraction), which is what the DP accountant assumes. Default `fixed`.
   */
  readonly sampling?: 'fixed' | 'poisson';
  /** Called after every round with its metrics. */
  readonly onRound?: (metrics: RoundMetrics) => void;
  /** Diagnostic lines (connections, closes, aborts). Default: silent. */
  readonly log?: (line: string) => void;
}

export interface ResolvedOptions extends Required<Omit<CoordinatorOptions, 'clientsPerRound' | 'fraction' | 'checkpointDir' | 'evaluate' | 'onRound' | 'secagg' | 'dp'>> {
  readonly secagg?: SecAggOptions;
  readonly dp?: DpOptions;
  readonly clientsPerRound?: number;
  readonly fraction?: number;
  readonly checkpointDir?: string;
  readonly evaluate?: CoordinatorOptions['evaluate'];
  readonly onRound?: CoordinatorOptions['onRound'];
}

export function resolveOptions(options: CoordinatorOptions): ResolvedOptions {
  const minClients = options.minClients ?? 2;
  if (options.tokens.length === 0) throw new RangeError('coordinator: give at least one token in `tokens`');
  if (!Number.isInteger(options.rounds) || options.rounds < 1) throw new RangeError(`coordinator: rounds must be a positive integer, got ${options.rounds}`);
  if (!Number.isInteger(minClients) || minClients < 1) throw new RangeError(`coordinator: minClients must be a positive integer, got ${minClients}`);
  if (options.clientsPerRound !== undefined && options.clientsPerRound < minClients) {
    throw new RangeError(`coordinator: clientsPerRound (${options.clientsPerRound}) is below minClients (${minClients}); no round could commit`);
  }
  if (options.fraction !== undefined && !(options.fraction > 0 && options.fraction <= 1)) {
    throw new RangeError(`coordinator: fraction must be in (0, 1], got ${options.fraction}`);
  }
  if (options.dp !== undefined && options.clientsPerRound === undefined) {
    throw new ShoalError('INVALID_CONFIG', 'dp needs clientsPerRound: the expected cohort size is the fixed denominator of DP-FedAvg and sets the sampling rate');
  }
  if (options.dp?.mode === 'distributed' && options.secagg === undefined) {
    throw new ShoalError('INVALID_CONFIG', 'dp.mode distributed needs secure aggregation (secagg.mode secagg or secagg+): without it the coordinator sees each noised update');
  }
  return {
    ...options,
    sampling: options.sampling ?? 'fixed',
    minClients,
    minAvailable: options.minAvailable ?? Math.max(minClients, options.clientsPerRound ?? 0),
    roundTimeoutMs: options.roundTimeoutMs ?? 60_000,
    seed: options.seed ?? 0,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 5_000,
    log: options.log ?? (() => {}),
  };
}
