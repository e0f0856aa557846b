import { checkDpCohort, DP_DEFAULTS } from '@shoal/dp';
import { integerAt, interval, numberAt, systemClock, type Clock, type TrainConfig } from '@shoal/protocol';
import { SECAGG_DEFAULTS } from '@shoal/secagg';
import type { Strategy } from '@shoal/strategy';
import { COORDINATOR_DEFAULTS, checkRetention, checkCohort, checkDistributedDp, checkRobustAggregation, checkFraction, checkLimit, checkMaxUpdateNorm, checkAdminTokens } from './config.js';
import type { InitialModel } from './model-init.js';
import { resolveFederatedEvaluation, type FederatedEvaluationOptions, type ResolvedFederatedEvaluation } from './federated-evaluation.js';
import type { RoundMetrics } from './round.js';
import type { DpOptions } from './privacy.js';
import type { RetentionOptions } from './checkpoint.js';
import { silentLogger, type Logger } from './logger.js';

/** Secure-aggregation settings of a coordinator. Defaults on each field. */
export interface SecAggOptions {
  readonly mode: 'secagg' | 'secagg+';
  /** Shamir threshold; default derived from the cohort (or neighbourhood) size and maxDropout. */
  readonly threshold?: number;
  /** SecAgg+ neighbourhood size, the client included (odd); default O(log n). */
  readonly degree?: number;
  /** Dropout fraction the derived threshold tolerates. Default 0.3. */
  readonly maxDropout?: number;
  /** Deadline of the advertise, share, confirm and unmask stages. Default 30,000 ms. */
  readonly stageTimeoutMs?: number;
  /** Every weighted coordinate is clamped to ±clipRange·weight before encoding. Default 1. */
  readonly clipRange?: number;
  /** Cap on the weight (example count) a client may carry. Default 1,000. */
  readonly maxWeight?: number;
  /**
   * Whether clients send their training loss and accuracy in the clear beside the masked input
   * (they never do under distributed DP). Each client's metrics leak something of its data that
   * the sum hides. Default false.
   */
  readonly shareMetrics?: boolean;
  /** Scale-out: the smallest group a gateway may run a round's SecAgg over (the leader's rule). Default 3. */
  readonly groupSize?: number;
}

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
  /**
   * Operator tokens for the admin endpoints (`/metrics`, `/dashboard`); none may also be a client
   * token. Default: none, and the admin endpoints answer 403.
   */
  readonly adminTokens?: readonly string[];
  /** Rounds to run (committed or aborted); the coordinator stops after the last. */
  readonly rounds: number;
  /**
   * Stop early once a committed round's central test accuracy (from `evaluate`) reaches this, in
   * (0, 1]: how simulations measure rounds to a target accuracy. Default: run every round.
   */
  readonly targetAccuracy?: number;
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
  /**
   * Seeds cohort sampling and the SecAgg+ ring (each round's draws derive from the seed and the
   * round number, so a resumed run continues rather than repeats them): for simulations and
   * reproducible tests. Default: unset, draws from node:crypto's CSPRNG, unpredictable to clients.
   */
  readonly seed?: number;
  /** Ping interval; a client silent for two intervals is dropped. Default 5,000 ms. */
  readonly heartbeatIntervalMs?: number;
  /** Where checkpoints go; resumes from the newest one found there. Default: no checkpoints. */
  readonly checkpointDir?: string;
  /** How many checkpoints, and how old, `checkpointDir` keeps (the newest always). Default: the newest 3, any age. */
  readonly retention?: RetentionOptions;
  /**
   * The privacy ledger (docs/privacy.md): `dir` holds ledger.jsonl (default: `checkpointDir`; with
   * neither, no ledger); `config` is what the start entry's config hash covers (default: the
   * privacy-relevant options, `ledgerConfigHash`).
   */
  readonly ledger?: { readonly dir?: string; readonly config?: unknown };
  /** Central evaluation of each new global model (e.g. on a held-out test set). */
  readonly evaluate?: (weights: Float32Array, round: number) => Promise<EvaluationResult>;
  /**
   * Federated evaluation: after committed rounds, idle clients that announced 'evaluate' score the
   * committed model on their held-out data (`RoundMetrics.federatedEvaluation`). Default: off.
   */
  readonly federatedEvaluation?: FederatedEvaluationOptions;
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
  /**
   * The largest L2 norm a plain-mode update may have; the coordinator scales larger ones down to
   * it, so one client moves the mean by at most this · its weight / the total weight. `auto`:
   * min(max(1, ‖global weights‖), 2 · the median norm of the previous round's updates), recomputed
   * every round (docs/reliability.md has the measurements behind it). With `dp` the clip norm is
   * the bound instead; under `secagg` the coordinator cannot see updates (`secagg.clipRange` clamps
   * them on the clients). Default `auto`.
   */
  readonly maxUpdateNorm?: number | 'auto';
  /** Called after every round with its metrics. */
  readonly onRound?: (metrics: RoundMetrics) => void;
  /**
   * Structured diagnostics (connections, closes, aborts): a pino logger fits as it is, or
   * `lineLogger` for plain lines. Default: silent.
   */
  readonly logger?: Logger;
  /** Limits that keep hostile or runaway peers from exhausting the coordinator (docs/reliability.md). */
  readonly limits?: ConnectionLimits;
  /**
   * The clock the coordinator's deadlines run on: the hello deadline (`limits.helloTimeoutMs`) and
   * each round's stage deadlines and durations. Tests inject a `FakeClock` (@shoal/testkit) to
   * decide when they pass. Heartbeats run on the platform's timers. Default: the platform's clock
   * (`performance.now()` and `setTimeout`).
   */
  readonly clock?: Clock;
}

/**
 * Limits against exhaustion. Each one refuses with a documented code (docs/errors.md): a close
 * code on an open connection, an HTTP status on an upgrade. Defaults on each field.
 */
export interface ConnectionLimits {
  /** A connection that sends no `hello` this long after opening is closed with HELLO_TIMEOUT (4016). Default 10,000 ms. */
  readonly helloTimeoutMs?: number;
  /** Open connections (before and after hello); upgrades beyond it get HTTP 503 (OVERLOADED). Default 10,000. */
  readonly maxConnections?: number;
  /** Open connections that have not sent `hello` yet; upgrades beyond it get HTTP 503 (OVERLOADED). Default 1,000. */
  readonly maxPendingHello?: number;
  /**
   * Bytes of a partial frame a connection may have in flight when it is not a member of the round
   * in progress (before hello, idle, or between stages it has no part in); members may send up to
   * the model-derived payload limit. Exceeding it closes with MESSAGE_TOO_LARGE (4009). Default 65,536.
   */
  readonly maxIdlePartialBytes?: number;
  /** How long a disconnected client's resume token stays valid; it is removed once used or stale. Default 600,000 ms. */
  readonly resumeTokenTtlMs?: number;
  /** Resume tokens of disconnected clients kept at most (oldest dropped first). Default 100,000. */
  readonly maxResumeTokens?: number;
  /** An HTTP request (the upgrade included) must arrive whole within this; node's headersTimeout and requestTimeout. Default 10,000 ms. */
  readonly upgradeTimeoutMs?: number;
  /** Bad-token upgrades from one address within `badTokenWindowMs` before that address gets HTTP 429 (RATE_LIMITED). Default 20. */
  readonly badTokenLimit?: number;
  /** The window of `badTokenLimit`, and how long an address stays refused after reaching it. Default 60,000 ms. */
  readonly badTokenWindowMs?: number;
}

/** The defaults of `limits` (the config's `server.limits`). */
export const DEFAULT_CONNECTION_LIMITS: Required<ConnectionLimits> = COORDINATOR_DEFAULTS.limits;

export interface ResolvedOptions extends Required<Omit<CoordinatorOptions, 'seed' | 'targetAccuracy' | 'clientsPerRound' | 'fraction' | 'checkpointDir' | 'ledger' | 'evaluate' | 'onRound' | 'secagg' | 'dp' | 'limits' | 'federatedEvaluation'>> {
  /** With every default filled in; absent when federated evaluation is off. */
  readonly federatedEvaluation?: ResolvedFederatedEvaluation;
  readonly limits: Required<ConnectionLimits>;
  /** With every default filled in (SECAGG_DEFAULTS); threshold and degree stay derived per round unless given. */
  readonly secagg?: SecAggOptions & Required<Pick<SecAggOptions, 'maxDropout' | 'stageTimeoutMs' | 'clipRange' | 'maxWeight' | 'shareMetrics'>>;
  readonly dp?: DpOptions;
  readonly seed?: number;
  readonly targetAccuracy?: number;
  readonly clientsPerRound?: number;
  readonly fraction?: number;
  readonly checkpointDir?: string;
  readonly ledger?: CoordinatorOptions['ledger'];
  readonly evaluate?: CoordinatorOptions['evaluate'];
  readonly onRound?: CoordinatorOptions['onRound'];
}

/**
 * Fills in the defaults (`COORDINATOR_DEFAULTS`, and `SECAGG_DEFAULTS` and `DP_DEFAULTS` in
 * `secagg` and `dp`) and applies the config's rules to options built in code: the same checks
 * (config.ts, @shoal/dp), so the same ShoalError INVALID_CONFIG naming the key.
 */
export function resolveOptions(options: CoordinatorOptions): ResolvedOptions {
  const minClients = integerAt(options.minClients ?? COORDINATOR_DEFAULTS.minClients, 'minClients', 1);
  if (options.tokens.length === 0) throw new RangeError('coordinator: give at least one token in `tokens`');
  const adminTokens = checkAdminTokens(options.adminTokens ?? [], options.tokens, 'adminTokens');
  integerAt(options.rounds, 'rounds', 1);
  if (options.targetAccuracy !== undefined) numberAt(options.targetAccuracy, 'targetAccuracy', interval('(0, 1]'));
  checkCohort({ clientsPerRound: options.clientsPerRound, minClients });
  if (options.fraction !== undefined) checkFraction(options.fraction);
  if (options.dp !== undefined) checkDpCohort(options.dp, options.clientsPerRound);
  checkDistributedDp(options.dp?.mode ?? 'off', options.secagg !== undefined);
  checkRobustAggregation(options.strategy.name, options.strategy.robustAggregate !== undefined, options.secagg !== undefined, options.dp?.mode ?? 'off');
  const maxUpdateNorm = checkMaxUpdateNorm(options.maxUpdateNorm ?? COORDINATOR_DEFAULTS.maxUpdateNorm);
  const limits = { ...DEFAULT_CONNECTION_LIMITS };
  for (const key of Object.keys(limits) as (keyof ConnectionLimits)[]) limits[key] = checkLimit(options.limits?.[key] ?? limits[key], `limits.${key}`);
  const federatedEvaluation = options.federatedEvaluation && resolveFederatedEvaluation(options.federatedEvaluation, { secagg: options.secagg !== undefined, dp: options.dp !== undefined });
  const { secagg: givenSecagg, federatedEvaluation: _given, ...rest } = options;
  const secagg = givenSecagg && {
    ...givenSecagg,
    maxDropout: givenSecagg.maxDropout ?? SECAGG_DEFAULTS.maxDropout,
    stageTimeoutMs: givenSecagg.stageTimeoutMs ?? SECAGG_DEFAULTS.stageTimeoutMs,
    clipRange: givenSecagg.clipRange ?? SECAGG_DEFAULTS.clipRange,
    maxWeight: givenSecagg.maxWeight ?? SECAGG_DEFAULTS.maxWeight,
    shareMetrics: givenSecagg.shareMetrics ?? SECAGG_DEFAULTS.shareMetrics,
  };
  return {
    ...rest,
    limits,
    ...(secagg ? { secagg } : {}),
    ...(federatedEvaluation ? { federatedEvaluation } : {}),
    ...(options.dp ? { dp: { delta: DP_DEFAULTS.delta, ...options.dp } } : {}),
    sampling: options.sampling ?? COORDINATOR_DEFAULTS.sampling,
    maxUpdateNorm,
    minClients,
    adminTokens,
    retention: checkRetention(options.retention ?? {}, 'retention'),
    minAvailable: options.minAvailable ?? Math.max(minClients, options.clientsPerRound ?? 0),
    roundTimeoutMs: options.roundTimeoutMs ?? COORDINATOR_DEFAULTS.roundTimeoutMs,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? COORDINATOR_DEFAULTS.heartbeatIntervalMs,
    logger: options.logger ?? silentLogger,
    clock: options.clock ?? systemClock,
  };
}
