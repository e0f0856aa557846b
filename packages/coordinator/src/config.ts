// The coordinator's part of a Shoal config (the top level, `model`, `train` and `server`), its
// defaults (the same constants `resolveOptions` defaults to), and `composeConfig`: the one function
// that reads a whole config file for `shoal serve` and `shoal simulate`, composing the sections of
// @shoal/strategy, @shoal/secagg and @shoal/dp with the coordinator's and with the sections the
// caller adds (the simulator's `simulation` and `faults`). docs/configuration.md lists every key.
import {
  BUILTIN_MODELS,
  ConfigSection,
  POSITIVE,
  builtinModelProblem,
  configError,
  integerAt,
  interval,
  numberAt,
  oneOfAt,
  stringAt,
  stringsAt,
  type BuiltinModelName,
} from '@shoal/protocol';
import { parseDpConfig, type DpConfig } from '@shoal/dp';
import { parseSecAggConfig, type SecAggConfig } from '@shoal/secagg';
import { createStrategy, parseStrategyConfig, PER_UPDATE_STRATEGIES, type StrategyConfig } from '@shoal/strategy';
import { FEDERATED_EVALUATION_DEFAULTS, resolveFederatedEvaluation, type ResolvedFederatedEvaluation } from './federated-evaluation.js';
import type { ConnectionLimits, CoordinatorOptions, SecAggOptions } from './options.js';
import { RETENTION_DEFAULTS, type RetentionOptions } from './checkpoint.js';
import type { DpOptions } from './privacy.js';

/** A built-in model (its input shape and class count come from the caller's data unless given), or a saved tfjs model. */
export type ModelConfig =
  | { readonly builtin: BuiltinModelName; readonly inputShape?: readonly number[]; readonly numClasses?: number }
  | { readonly path: string };

/** The coordinator's part of a config, with the strategy, secagg and dp sections it composes. */
export interface CoordinatorConfig {
  readonly name: string;
  /** Unset (`serve`'s default): cohorts are drawn from a CSPRNG. `simulate` defaults it to 0. */
  readonly seed?: number;
  readonly rounds: number;
  /** Stop once a committed round's central test accuracy reaches this (simulations: rounds-to-target). */
  readonly targetAccuracy?: number;
  readonly model: ModelConfig;
  readonly clientsPerRound?: number;
  readonly fraction?: number;
  readonly minClients: number;
  readonly minAvailable?: number;
  readonly roundTimeoutMs: number;
  readonly train: {
    readonly epochs: number;
    readonly batchSize: number;
    readonly learningRate: number;
    readonly optimizer: 'sgd' | 'adam';
  };
  readonly strategy: StrategyConfig;
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly tokens: readonly string[];
    /** Operator tokens for `/metrics` and the dashboard; empty: those answer 403. */
    readonly adminTokens: readonly string[];
    /** PEM file paths: `serve` reads them and serves `wss://` and `https://`. Absent: plain. */
    readonly tls?: { readonly cert: string; readonly key: string };
    readonly heartbeatIntervalMs: number;
    readonly checkpointDir?: string;
    /** Checkpoint retention: keepCheckpoints (default 3) and maxCheckpointAgeMs (default: none). */
    readonly retention: RetentionOptions;
    /** Limits against exhaustion; every key defaults to `COORDINATOR_DEFAULTS.limits`. */
    readonly limits: Required<ConnectionLimits>;
  };
  readonly secagg: SecAggConfig;
  readonly dp: DpConfig;
  readonly sampling: 'fixed' | 'poisson';
  /** The coordinator's bound on a plain update's L2 norm: `auto` (from the global model) or a number. */
  readonly maxUpdateNorm: number | 'auto';
  /** Federated evaluation with its defaults filled in; absent: off. */
  readonly federatedEvaluation?: ResolvedFederatedEvaluation;
}

/** The defaults of the coordinator's keys, in the config and in `CoordinatorOptions` alike. */
export const COORDINATOR_DEFAULTS = {
  name: 'shoal',
  rounds: 10,
  model: 'mlp',
  minClients: 2,
  roundTimeoutMs: 60_000,
  train: { epochs: 1, batchSize: 32, learningRate: 0.05, optimizer: 'sgd' },
  host: '127.0.0.1',
  port: 8080,
  heartbeatIntervalMs: 5_000,
  sampling: 'fixed',
  maxUpdateNorm: 'auto',
  limits: {
    helloTimeoutMs: 10_000,
    maxConnections: 10_000,
    maxPendingHello: 1_000,
    maxIdlePartialBytes: 65_536,
    resumeTokenTtlMs: 600_000,
    maxResumeTokens: 100_000,
    upgradeTimeoutMs: 10_000,
    badTokenLimit: 20,
    badTokenWindowMs: 60_000,
  },
} as const satisfies {
  readonly model: BuiltinModelName;
  readonly train: CoordinatorConfig['train'];
  readonly limits: Required<ConnectionLimits>;
  readonly [key: string]: unknown;
};

const FRACTION = interval('(0, 1]');
const TOP_LEVEL_KEYS = ['name', 'seed', 'rounds', 'targetAccuracy', 'model', 'clientsPerRound', 'fraction', 'minClients', 'minAvailable', 'roundTimeoutMs', 'train', 'strategy', 'server', 'secagg', 'dp', 'sampling', 'maxUpdateNorm', 'federatedEvaluation'];
/** Accepted and ignored: a JSON schema for editors, and a note for humans. */
const METADATA_KEYS = ['$schema', 'description'];

/**
 * Top-level sections another package adds to the config (the simulator's `simulation` and
 * `faults`), read after the coordinator's part so their rules can see it.
 */
export interface ConfigSections<T> {
  readonly keys: readonly string[];
  /** Reads the sections from `raw` (which holds only `keys`, each possibly absent). */
  parse(raw: Readonly<Record<string, unknown>>, base: CoordinatorConfig): T;
}

/**
 * Reads a whole config (parsed JSON): the coordinator's keys and sections, then `sections`.
 * Fills in every default and applies every rule, within a section and across them, so that a
 * config it returns starts. Throws ShoalError INVALID_CONFIG naming the key path, e.g.
 * `train.batchSize must be an integer in [1, ∞], got 0`.
 *
 * Where the rules across sections live: a rule that constrains one package's keys, given a value
 * from elsewhere, lives in that package's schema, which receives the value (secagg's threshold
 * and degree, and dp's noise, against the cohort `clientsPerRound`): it is the package's own rule,
 * the one its code applies when it runs. A rule between two packages' keys with no such owner
 * (dp.mode distributed needs secagg.mode on) lives here, where both are visible.
 */
export function composeConfig<T>(raw: unknown, sections: ConfigSections<T>, defaultName: string = COORDINATOR_DEFAULTS.name): CoordinatorConfig & T {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw configError('(config) must be an object');
  const root = new ConfigSection(raw, '', [...TOP_LEVEL_KEYS, ...sections.keys, ...METADATA_KEYS]);
  // The cohort first: the secagg and dp sections are checked against it.
  const cohort = {
    ...root.optional('clientsPerRound', (value, path) => integerAt(value, path, 1)),
    ...root.optional('fraction', checkFraction),
    minClients: root.integer('minClients', COORDINATOR_DEFAULTS.minClients, 1),
  };
  checkCohort(cohort);
  if (cohort.clientsPerRound !== undefined && cohort.fraction !== undefined) throw configError('give clientsPerRound or fraction, not both');
  const train = root.section('train', ['epochs', 'batchSize', 'learningRate', 'optimizer']);
  const server = root.section('server', ['host', 'port', 'tokens', 'adminTokens', 'tls', 'heartbeatIntervalMs', 'checkpointDir', 'limits', 'retention']);
  const serverTokens = server.read('tokens', [], stringsAt);
  const base: CoordinatorConfig = {
    name: root.string('name', defaultName),
    ...root.optional('seed', (value, path) => integerAt(value, path, 0)),
    rounds: root.integer('rounds', COORDINATOR_DEFAULTS.rounds, 1),
    ...root.optional('targetAccuracy', (value, path) => numberAt(value, path, FRACTION)),
    model: parseModel(root.value('model') ?? COORDINATOR_DEFAULTS.model),
    ...cohort,
    ...root.optional('minAvailable', (value, path) => integerAt(value, path, 1)),
    roundTimeoutMs: root.integer('roundTimeoutMs', COORDINATOR_DEFAULTS.roundTimeoutMs, 1),
    train: {
      epochs: train.integer('epochs', COORDINATOR_DEFAULTS.train.epochs, 1),
      batchSize: train.integer('batchSize', COORDINATOR_DEFAULTS.train.batchSize, 1),
      learningRate: train.number('learningRate', COORDINATOR_DEFAULTS.train.learningRate, POSITIVE),
      optimizer: train.oneOf('optimizer', COORDINATOR_DEFAULTS.train.optimizer, ['sgd', 'adam']),
    },
    strategy: parseStrategyConfig(root.value('strategy')),
    server: {
      host: server.string('host', COORDINATOR_DEFAULTS.host),
      port: server.integer('port', COORDINATOR_DEFAULTS.port, 0, 65_535),
      tokens: serverTokens,
      adminTokens: checkAdminTokens(server.read('adminTokens', [], stringsAt), serverTokens),
      ...(server.has('tls') ? { tls: parseTls(server.section('tls', ['cert', 'key'])) } : {}),
      heartbeatIntervalMs: server.integer('heartbeatIntervalMs', COORDINATOR_DEFAULTS.heartbeatIntervalMs, 10),
      ...server.optional('checkpointDir', stringAt),
      limits: parseLimits(server.section('limits', Object.keys(COORDINATOR_DEFAULTS.limits))),
      retention: parseRetention(server.section('retention', ['keepCheckpoints', 'maxCheckpointAgeMs'])),
    },
    secagg: parseSecAggConfig(root.value('secagg'), cohort.clientsPerRound),
    dp: parseDpConfig(root.value('dp'), cohort.clientsPerRound),
    sampling: root.oneOf('sampling', COORDINATOR_DEFAULTS.sampling, ['fixed', 'poisson']),
    maxUpdateNorm: root.read('maxUpdateNorm', COORDINATOR_DEFAULTS.maxUpdateNorm, checkMaxUpdateNorm),
  };
  checkDistributedDp(base.dp.mode, base.secagg.mode !== 'off');
  checkRobustAggregation(base.strategy.name, PER_UPDATE_STRATEGIES.includes(base.strategy.name), base.secagg.mode !== 'off', base.dp.mode);
  const coordinator: CoordinatorConfig = root.has('federatedEvaluation')
    ? { ...base, federatedEvaluation: parseFederatedEvaluation(root.section('federatedEvaluation', Object.keys(FEDERATED_EVALUATION_DEFAULTS)), base) }
    : base;
  const own = Object.fromEntries(sections.keys.map((key) => [key, root.value(key)]));
  return { ...coordinator, ...sections.parse(own, coordinator) };
}

/**
 * `federatedEvaluation`: every and timeoutMs integers ≥ 1, clients an integer ≥ 1 or "all",
 * allowUnprotectedMetrics a boolean, which must be true when secagg or dp is on.
 */
function parseFederatedEvaluation(section: ConfigSection, base: Pick<CoordinatorConfig, 'secagg' | 'dp'>): ResolvedFederatedEvaluation {
  const defaults = FEDERATED_EVALUATION_DEFAULTS;
  return resolveFederatedEvaluation({
    every: section.integer('every', defaults.every, 1),
    clients: section.read('clients', defaults.clients, (value, path) => (value === 'all' ? value : integerAt(value, path, 1))),
    timeoutMs: section.integer('timeoutMs', defaults.timeoutMs, 1),
    allowUnprotectedMetrics: section.boolean('allowUnprotectedMetrics', defaults.allowUnprotectedMetrics),
  }, { secagg: base.secagg.mode !== 'off', dp: base.dp.mode !== 'off' });
}

/**
 * A rule over individual updates (the robust rules fedmedian, fedtrimmedavg, krum, and qfedavg)
 * needs each client's update, so it runs in plain rounds only: not under secure aggregation, nor
 * under DP.
 */
export function checkRobustAggregation(strategy: string, robust: boolean, secure: boolean, dpMode: DpConfig['mode']): void {
  if (!robust) return;
  if (secure) throw configError(`strategy.name ${strategy} needs each client's update, but with secagg.mode on the coordinator only sees their masked sum: set secagg.mode off or choose another strategy`);
  if (dpMode !== 'off') {
    throw configError(`strategy.name ${strategy} cannot run with dp.mode ${dpMode}: DP's sensitivity analysis assumes the noised sum of clipped updates, not a robust rule over them; set dp.mode off or choose another strategy`);
  }
}

/** `clientsPerRound` of at least `minClients`: with fewer, no round could ever commit. */
export function checkCohort(options: { readonly clientsPerRound?: number | undefined; readonly minClients: number }): void {
  const { clientsPerRound, minClients } = options;
  if (clientsPerRound !== undefined && clientsPerRound < minClients) throw configError(`clientsPerRound (${clientsPerRound}) must be at least minClients (${minClients})`);
}

/** Distributed DP needs secure aggregation: the clients add the noise, so only masked sums may be seen. */
export function checkDistributedDp(dpMode: DpConfig['mode'], secure: boolean): void {
  if (dpMode === 'distributed' && !secure) throw configError('dp.mode distributed needs secagg.mode secagg or secagg+: without it the coordinator sees each noised update');
}

/** `fraction`: in (0, 1]. */
export function checkFraction(value: unknown, path = 'fraction'): number {
  return numberAt(value, path, FRACTION);
}

/** `maxUpdateNorm`: `auto`, or a finite number > 0. */
export function checkMaxUpdateNorm(value: unknown, path = 'maxUpdateNorm'): number | 'auto' {
  return value === 'auto' ? value : numberAt(value, path, { ...POSITIVE, text: 'positive (or "auto")' });
}

/**
 * `server.adminTokens`: operator tokens, none of which may also be a client token (a client could
 * then read `/metrics` and the dashboard).
 */
export function checkAdminTokens(adminTokens: readonly string[], clientTokens: readonly string[], path = 'server.adminTokens'): readonly string[] {
  adminTokens.forEach((token, index) => {
    if (token.length === 0) throw configError(`${path}[${index}] must be a non-empty string`);
    if (clientTokens.includes(token)) throw configError(`${path}[${index}] is also a client token (server.tokens): give operators a token of their own`);
  });
  return adminTokens;
}

/** `server.tls`: both PEM paths, non-empty. */
function parseTls(tls: ConfigSection): { readonly cert: string; readonly key: string } {
  return { cert: stringAt(tls.value('cert'), 'server.tls.cert'), key: stringAt(tls.value('key'), 'server.tls.key') };
}

/** One of `server.limits`: a positive integer. */
export function checkLimit(value: unknown, path: string): number {
  return integerAt(value, path, 1);
}

/** `server.retention` (and the `retention` option): keepCheckpoints and maxCheckpointAgeMs, integers ≥ 1. */
export function checkRetention(retention: RetentionOptions, path = 'server.retention'): RetentionOptions {
  return {
    keepCheckpoints: integerAt(retention.keepCheckpoints ?? RETENTION_DEFAULTS.keepCheckpoints, `${path}.keepCheckpoints`, 1),
    ...(retention.maxCheckpointAgeMs !== undefined ? { maxCheckpointAgeMs: integerAt(retention.maxCheckpointAgeMs, `${path}.maxCheckpointAgeMs`, 1) } : {}),
  };
}

function parseRetention(section: ConfigSection): RetentionOptions {
  return checkRetention({
    ...section.optional('keepCheckpoints', (value, path) => integerAt(value, path, 1)),
    ...section.optional('maxCheckpointAgeMs', (value, path) => integerAt(value, path, 1)),
  });
}

function parseLimits(limits: ConfigSection): Required<ConnectionLimits> {
  const defaults = COORDINATOR_DEFAULTS.limits;
  const read = (key: keyof ConnectionLimits) => limits.read(key, defaults[key], checkLimit);
  return {
    helloTimeoutMs: read('helloTimeoutMs'),
    maxConnections: read('maxConnections'),
    maxPendingHello: read('maxPendingHello'),
    maxIdlePartialBytes: read('maxIdlePartialBytes'),
    resumeTokenTtlMs: read('resumeTokenTtlMs'),
    maxResumeTokens: read('maxResumeTokens'),
    upgradeTimeoutMs: read('upgradeTimeoutMs'),
    badTokenLimit: read('badTokenLimit'),
    badTokenWindowMs: read('badTokenWindowMs'),
  };
}

function parseModel(value: unknown): ModelConfig {
  if (typeof value === 'string') return { builtin: oneOfAt(value, 'model', BUILTIN_MODELS) };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw configError('model must be an object');
  if ('path' in value) {
    const saved = new ConfigSection(value, 'model', ['path']);
    return { path: stringAt(saved.value('path'), 'model.path') };
  }
  const model = new ConfigSection(value, 'model', ['builtin', 'inputShape', 'numClasses']);
  const builtin = oneOfAt(model.value('builtin'), 'model.builtin', BUILTIN_MODELS);
  const inputShape = model.optional('inputShape', (shape, path) => {
    if (!Array.isArray(shape) || shape.length === 0) throw configError(`${path} must be a non-empty array of positive integers`);
    return shape.map((side: unknown, index) => integerAt(side, `${path}[${index}]`, 1));
  }).inputShape;
  const problem = inputShape && builtinModelProblem(builtin, inputShape);
  if (problem !== undefined) throw configError(`model.inputShape [${inputShape!.join(', ')}] does not fit model ${builtin}: it ${problem}`);
  return { builtin, ...(inputShape ? { inputShape } : {}), ...model.optional('numClasses', (count, path) => integerAt(count, path, 2)) };
}

/** The shape of the examples a built-in model gets unless `model.inputShape` says otherwise. */
export interface ExampleShape {
  readonly featureShape: readonly number[];
  readonly numClasses: number;
  /** Where it comes from, for messages: e.g. `simulation.dataset digits`. */
  readonly source: string;
}

/**
 * A built-in model without `model.inputShape` takes `examples`' shape: checks that it can (a cnn
 * needs an image). `remedy` ends the message. Saved models and given input shapes pass.
 */
export function checkDefaultModelShape(model: ModelConfig, examples: ExampleShape, remedy: string): void {
  if ('path' in model || model.inputShape !== undefined) return;
  const problem = builtinModelProblem(model.builtin, examples.featureShape);
  if (problem !== undefined) {
    throw configError(`model ${model.builtin} ${problem}, but ${examples.source} has examples of shape [${examples.featureShape.join(', ')}]: ${remedy}`);
  }
}

/** The coordinator's `secagg` option for a config (absent when secure aggregation is off). */
export function secaggOptions(config: Pick<CoordinatorConfig, 'secagg'>): { secagg?: SecAggOptions } {
  const { mode, ...rest } = config.secagg;
  return mode === 'off' ? {} : { secagg: { mode, ...rest } };
}

/** The coordinator's `dp` and `sampling` options for a config (dp absent when it is off). */
export function privacyOptions(config: Pick<CoordinatorConfig, 'dp' | 'sampling'>): { dp?: DpOptions; sampling: 'fixed' | 'poisson' } {
  const { mode, allowNoCheckpoint: _checkedByServe, ...rest } = config.dp;
  return mode === 'off' ? { sampling: config.sampling } : { sampling: config.sampling, dp: { mode, ...rest } };
}

/**
 * The coordinator options a config describes, shared by `serve` and `simulate`; each adds the
 * model, the tokens and its own callbacks.
 */
export function coordinatorOptions(config: CoordinatorConfig): Omit<CoordinatorOptions, 'model' | 'tokens'> {
  return {
    rounds: config.rounds,
    ...(config.targetAccuracy !== undefined ? { targetAccuracy: config.targetAccuracy } : {}),
    ...(config.clientsPerRound !== undefined ? { clientsPerRound: config.clientsPerRound } : {}),
    ...(config.fraction !== undefined ? { fraction: config.fraction } : {}),
    minClients: config.minClients,
    ...(config.minAvailable !== undefined ? { minAvailable: config.minAvailable } : {}),
    roundTimeoutMs: config.roundTimeoutMs,
    train: { ...config.train, proximalMu: 0 },
    // q-FedAvg's Lipschitz estimate defaults to 1 / the clients' learning rate, as in the paper's code.
    strategy: createStrategy(config.strategy.name === 'qfedavg' ? { ...config.strategy, lipschitz: config.strategy.lipschitz ?? 1 / config.train.learningRate } : config.strategy),
    ...(config.seed !== undefined ? { seed: config.seed } : {}),
    heartbeatIntervalMs: config.server.heartbeatIntervalMs,
    maxUpdateNorm: config.maxUpdateNorm,
    limits: config.server.limits,
    retention: config.server.retention,
    adminTokens: config.server.adminTokens,
    ...secaggOptions(config),
    ...privacyOptions(config),
    ...(config.server.checkpointDir !== undefined ? { checkpointDir: config.server.checkpointDir } : {}),
    ...(config.federatedEvaluation ? { federatedEvaluation: config.federatedEvaluation } : {}),
  };
}
