import { BUILTIN_MODELS, ShoalError, type BuiltinModelName } from '@shoal/protocol';
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits, type CoordinatorOptions, type DpOptions, type SecAggOptions } from '@shoal/coordinator';
import { createStrategy } from '@shoal/strategy';

/**
 * The one configuration format of `shoal serve` and `shoal simulate`. Every key, its default and
 * its meaning are listed in docs/configuration.md; a test keeps the two in step.
 */
export interface ShoalConfig {
  readonly name: string;
  readonly seed: number;
  readonly rounds: number;
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
  readonly strategy: {
    readonly name: 'fedavg' | 'fedavgm' | 'fedprox';
    readonly serverLearningRate: number;
    readonly maxWeight?: number;
    readonly momentum?: number;
    readonly proximalMu?: number;
  };
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly tokens: readonly string[];
    readonly heartbeatIntervalMs: number;
    readonly checkpointDir?: string;
    /** Limits against exhaustion; every key has the coordinator's default (`DEFAULT_CONNECTION_LIMITS`). */
    readonly limits: Required<ConnectionLimits>;
  };
  readonly secagg: {
    readonly mode: 'off' | 'secagg' | 'secagg+';
    readonly threshold?: number;
    readonly degree?: number;
    readonly maxDropout: number;
    readonly stageTimeoutMs: number;
    readonly clipRange: number;
    readonly maxWeight: number;
  };
  readonly dp: {
    readonly mode: 'off' | 'central' | 'distributed';
    readonly noiseMultiplier: number;
    readonly clipNorm: number;
    readonly adaptiveClip?: { readonly targetQuantile: number; readonly learningRate: number; readonly countNoiseStd?: number };
    readonly delta: number;
    readonly targetEpsilon?: number;
  };
  readonly sampling: 'fixed' | 'poisson';
  /** The coordinator's bound on a plain update's L2 norm: `auto` (from the global model) or a number. */
  readonly maxUpdateNorm: number | 'auto';
  readonly faults: {
    readonly dropout: number;
    readonly stage?: FaultStage;
  };
  readonly simulation: {
    readonly dataset: 'mnist' | 'digits' | 'iris';
    readonly numClients: number;
    readonly partition: 'iid';
    readonly examplesPerClient?: number;
    readonly testExamples?: number;
    readonly transport: 'memory' | 'ws';
  };
}

/** Where a simulated client vanishes: before sending that stage's message (`train`: its update). */
export type FaultStage = 'advertise' | 'share' | 'masked' | 'unmask' | 'train';

/** A built-in model (its input shape and class count come from the dataset unless given), or a saved tfjs model. */
export type ModelConfig =
  | { readonly builtin: BuiltinModelName; readonly inputShape?: readonly number[]; readonly numClasses?: number }
  | { readonly path: string };

type Raw = Record<string, unknown>;

/**
 * Validates a parsed JSON config and fills in defaults. Unknown keys and bad values throw
 * ShoalError INVALID_CONFIG naming the key path, e.g. `train.batchSize must be a positive integer`.
 */
export function parseConfig(raw: unknown, defaultName = 'shoal'): ShoalConfig {
  const root = object(raw, '(config)');
  allowKeys(root, '', ['name', 'seed', 'rounds', 'model', 'clientsPerRound', 'fraction', 'minClients', 'minAvailable', 'roundTimeoutMs', 'train', 'strategy', 'server', 'secagg', 'dp', 'sampling', 'maxUpdateNorm', 'faults', 'simulation', '$schema', 'description']);
  const train = object(root['train'] ?? {}, 'train');
  allowKeys(train, 'train.', ['epochs', 'batchSize', 'learningRate', 'optimizer']);
  const strategy = object(root['strategy'] ?? {}, 'strategy');
  allowKeys(strategy, 'strategy.', ['name', 'serverLearningRate', 'maxWeight', 'momentum', 'proximalMu']);
  const server = object(root['server'] ?? {}, 'server');
  allowKeys(server, 'server.', ['host', 'port', 'tokens', 'heartbeatIntervalMs', 'checkpointDir', 'limits']);
  const limits = object(server['limits'] ?? {}, 'server.limits');
  allowKeys(limits, 'server.limits.', Object.keys(DEFAULT_CONNECTION_LIMITS));
  const secagg = object(root['secagg'] ?? {}, 'secagg');
  allowKeys(secagg, 'secagg.', ['mode', 'threshold', 'degree', 'maxDropout', 'stageTimeoutMs', 'clipRange', 'maxWeight']);
  const dp = object(root['dp'] ?? {}, 'dp');
  allowKeys(dp, 'dp.', ['mode', 'noiseMultiplier', 'clipNorm', 'adaptiveClip', 'delta', 'targetEpsilon']);
  const adaptiveClip = dp['adaptiveClip'] === undefined || dp['adaptiveClip'] === null ? undefined : object(dp['adaptiveClip'], 'dp.adaptiveClip');
  if (adaptiveClip) allowKeys(adaptiveClip, 'dp.adaptiveClip.', ['targetQuantile', 'learningRate', 'countNoiseStd']);
  const faults = object(root['faults'] ?? {}, 'faults');
  allowKeys(faults, 'faults.', ['dropout', 'stage']);
  const simulation = object(root['simulation'] ?? {}, 'simulation');
  allowKeys(simulation, 'simulation.', ['dataset', 'numClients', 'partition', 'examplesPerClient', 'testExamples', 'transport']);

  const config: ShoalConfig = {
    name: string(root['name'] ?? defaultName, 'name'),
    seed: integer(root['seed'] ?? 0, 'seed', 0),
    rounds: integer(root['rounds'] ?? 10, 'rounds', 1),
    model: parseModel(root['model'] ?? 'mlp'),
    ...optional('clientsPerRound', root['clientsPerRound'], (v, k) => integer(v, k, 1)),
    ...optional('fraction', root['fraction'], (v, k) => number(v, k, (x) => x > 0 && x <= 1, 'in (0, 1]')),
    minClients: integer(root['minClients'] ?? 2, 'minClients', 1),
    ...optional('minAvailable', root['minAvailable'], (v, k) => integer(v, k, 1)),
    roundTimeoutMs: integer(root['roundTimeoutMs'] ?? 60_000, 'roundTimeoutMs', 1),
    train: {
      epochs: integer(train['epochs'] ?? 1, 'train.epochs', 1),
      batchSize: integer(train['batchSize'] ?? 32, 'train.batchSize', 1),
      learningRate: number(train['learningRate'] ?? 0.05, 'train.learningRate', (x) => x > 0, 'positive'),
      optimizer: oneOf(train['optimizer'] ?? 'sgd', 'train.optimizer', ['sgd', 'adam'] as const),
    },
    strategy: {
      name: oneOf(strategy['name'] ?? 'fedavg', 'strategy.name', ['fedavg', 'fedavgm', 'fedprox'] as const),
      serverLearningRate: number(strategy['serverLearningRate'] ?? 1, 'strategy.serverLearningRate', (x) => x > 0, 'positive'),
      ...optional('maxWeight', strategy['maxWeight'], (v, k) => number(v, `strategy.${k}`, (x) => x > 0, 'positive')),
      // Strategy-specific keys keep their strategy's default; createStrategy rejects one given to the wrong strategy.
      ...optional('momentum', strategy['momentum'], (v, k) => number(v, `strategy.${k}`, (x) => x >= 0 && x < 1, 'in [0, 1)')),
      ...optional('proximalMu', strategy['proximalMu'], (v, k) => number(v, `strategy.${k}`, (x) => x >= 0, 'non-negative')),
    },
    server: {
      host: string(server['host'] ?? '127.0.0.1', 'server.host'),
      port: integer(server['port'] ?? 8080, 'server.port', 0, 65_535),
      tokens: stringList(server['tokens'] ?? [], 'server.tokens'),
      heartbeatIntervalMs: integer(server['heartbeatIntervalMs'] ?? 5_000, 'server.heartbeatIntervalMs', 10),
      ...optional('checkpointDir', server['checkpointDir'], (v, k) => string(v, `server.${k}`)),
      limits: connectionLimits(limits),
    },
    secagg: {
      mode: oneOf(secagg['mode'] ?? 'off', 'secagg.mode', ['off', 'secagg', 'secagg+'] as const),
      ...optional('threshold', secagg['threshold'], (v, k) => integer(v, `secagg.${k}`, 2)),
      ...optional('degree', secagg['degree'], (v, k) => integer(v, `secagg.${k}`, 3)),
      maxDropout: number(secagg['maxDropout'] ?? 0.3, 'secagg.maxDropout', (x) => x >= 0 && x < 1, 'in [0, 1)'),
      stageTimeoutMs: integer(secagg['stageTimeoutMs'] ?? 30_000, 'secagg.stageTimeoutMs', 1),
      clipRange: number(secagg['clipRange'] ?? 1, 'secagg.clipRange', (x) => x > 0, 'positive'),
      maxWeight: integer(secagg['maxWeight'] ?? 1_000, 'secagg.maxWeight', 1),
    },
    dp: {
      mode: oneOf(dp['mode'] ?? 'off', 'dp.mode', ['off', 'central', 'distributed'] as const),
      noiseMultiplier: number(dp['noiseMultiplier'] ?? 1, 'dp.noiseMultiplier', (x) => x >= 0, 'non-negative'),
      clipNorm: number(dp['clipNorm'] ?? 1, 'dp.clipNorm', (x) => x > 0, 'positive'),
      ...(adaptiveClip
        ? {
            adaptiveClip: {
              targetQuantile: number(adaptiveClip['targetQuantile'] ?? 0.5, 'dp.adaptiveClip.targetQuantile', (x) => x >= 0 && x <= 1, 'in [0, 1]'),
              learningRate: number(adaptiveClip['learningRate'] ?? 0.2, 'dp.adaptiveClip.learningRate', (x) => x > 0, 'positive'),
              ...optional('countNoiseStd', adaptiveClip['countNoiseStd'], (v, k) => number(v, `dp.adaptiveClip.${k}`, (x) => x >= 0, 'non-negative')),
            },
          }
        : {}),
      delta: number(dp['delta'] ?? 1e-5, 'dp.delta', (x) => x > 0 && x < 1, 'in (0, 1)'),
      ...optional('targetEpsilon', dp['targetEpsilon'], (v, k) => number(v, `dp.${k}`, (x) => x > 0, 'positive')),
    },
    sampling: oneOf(root['sampling'] ?? 'fixed', 'sampling', ['fixed', 'poisson'] as const),
    maxUpdateNorm: root['maxUpdateNorm'] === 'auto' || root['maxUpdateNorm'] == null ? 'auto' : number(root['maxUpdateNorm'], 'maxUpdateNorm', (x) => x > 0, 'positive (or "auto")'),
    faults: {
      dropout: number(faults['dropout'] ?? 0, 'faults.dropout', (x) => x >= 0 && x <= 1, 'in [0, 1]'),
      ...optional('stage', faults['stage'], (v, k) => oneOf(v, `faults.${k}`, ['advertise', 'share', 'masked', 'unmask', 'train'] as const)),
    },
    simulation: {
      dataset: oneOf(simulation['dataset'] ?? 'mnist', 'simulation.dataset', ['mnist', 'digits', 'iris'] as const),
      numClients: integer(simulation['numClients'] ?? 20, 'simulation.numClients', 1),
      partition: oneOf(simulation['partition'] ?? 'iid', 'simulation.partition', ['iid'] as const),
      ...optional('examplesPerClient', simulation['examplesPerClient'], (v, k) => integer(v, `simulation.${k}`, 1)),
      ...optional('testExamples', simulation['testExamples'], (v, k) => integer(v, `simulation.${k}`, 1)),
      transport: oneOf(simulation['transport'] ?? 'memory', 'simulation.transport', ['memory', 'ws'] as const),
    },
  };
  if (config.clientsPerRound !== undefined && config.clientsPerRound < config.minClients) {
    fail(`clientsPerRound (${config.clientsPerRound}) must be at least minClients (${config.minClients})`);
  }
  if (config.clientsPerRound !== undefined && config.fraction !== undefined) fail('give clientsPerRound or fraction, not both');
  const sa = config.secagg;
  if (sa.mode === 'off' && (sa.threshold !== undefined || sa.degree !== undefined)) {
    fail('secagg.threshold and secagg.degree need secagg.mode secagg or secagg+');
  }
  if (sa.mode === 'secagg' && sa.degree !== undefined) fail('secagg.degree is for secagg+ only: full secagg uses the whole cohort');
  if (sa.degree !== undefined && sa.degree % 2 === 0) fail(`secagg.degree must be odd (the client itself plus equally many neighbours on each side), got ${sa.degree}`);
  if (sa.threshold !== undefined && sa.degree !== undefined && sa.threshold > sa.degree) {
    fail(`secagg.threshold (${sa.threshold}) exceeds secagg.degree (${sa.degree}): no secret could ever be reconstructed`);
  }
  if (sa.threshold !== undefined && config.clientsPerRound !== undefined && sa.threshold > config.clientsPerRound) {
    fail(`secagg.threshold (${sa.threshold}) exceeds clientsPerRound (${config.clientsPerRound}): every round would abort`);
  }
  if (config.dp.mode !== 'off' && config.clientsPerRound === undefined) {
    fail(`dp.mode ${config.dp.mode} needs clientsPerRound: the expected cohort size is DP-FedAvg's fixed denominator`);
  }
  const adaptive = config.dp.adaptiveClip;
  if (config.dp.mode !== 'off' && adaptive && config.clientsPerRound !== undefined) {
    // The unclipped count spends part of the budget: its noise must exceed z/2 (Andrew et al. 2021).
    const countNoiseStd = adaptive.countNoiseStd ?? config.clientsPerRound / 20;
    const z = config.dp.noiseMultiplier;
    if (z > 0 && z >= 2 * countNoiseStd) {
      fail(
        `dp.noiseMultiplier ${z} needs dp.adaptiveClip.countNoiseStd > ${z / 2} (it is ${countNoiseStd}${adaptive.countNoiseStd === undefined ? ', clientsPerRound / 20' : ''}): raise it or clientsPerRound, or lower dp.noiseMultiplier`,
      );
    }
  }
  if (config.dp.mode === 'distributed' && sa.mode === 'off') fail('dp.mode distributed needs secagg.mode secagg or secagg+: without it the coordinator sees each noised update');
  if (config.secagg.mode === 'off' && config.faults.stage !== undefined && config.faults.stage !== 'train') {
    fail(`faults.stage ${config.faults.stage} is a secure-aggregation stage, but secagg.mode is off`);
  }
  return config;
}

/**
 * Applies `--set key.path=value` overrides to a raw config before validation. The value is parsed
 * as JSON when it can be (numbers, booleans, arrays), else taken as a string.
 */
export function applyOverrides(raw: unknown, assignments: readonly string[]): Raw {
  const root = structuredClone(object(raw, '(config)'));
  for (const assignment of assignments) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) fail(`--set expects key.path=value, got "${assignment}"`);
    const path = assignment.slice(0, eq).split('.');
    // Config keys are plain names: these would reach Object.prototype instead of the config.
    const unsafe = path.find((key) => key === '__proto__' || key === 'constructor' || key === 'prototype');
    if (unsafe !== undefined) fail(`--set ${assignment}: "${unsafe}" is not a config key`);
    const text = assignment.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
    let node: Raw = root;
    for (const key of path.slice(0, -1)) {
      const child = node[key];
      if (child === undefined) node[key] = {};
      else if (typeof child !== 'object' || child === null || Array.isArray(child)) fail(`--set ${assignment}: ${key} is not an object`);
      node = node[key] as Raw;
    }
    node[path.at(-1)!] = value;
  }
  return root;
}

function parseModel(value: unknown): ModelConfig {
  if (typeof value === 'string') return { builtin: oneOf(value, 'model', BUILTIN_MODELS) };
  const model = object(value, 'model');
  if ('path' in model) {
    allowKeys(model, 'model.', ['path']);
    return { path: string(model['path'], 'model.path') };
  }
  allowKeys(model, 'model.', ['builtin', 'inputShape', 'numClasses']);
  return {
    builtin: oneOf(model['builtin'], 'model.builtin', BUILTIN_MODELS),
    ...optional('inputShape', model['inputShape'], (v, k) => {
      if (!Array.isArray(v) || v.length === 0) fail(`model.${k} must be a non-empty array of positive integers`);
      return (v as unknown[]).map((d, i) => integer(d, `model.${k}[${i}]`, 1));
    }),
    ...optional('numClasses', model['numClasses'], (v, k) => integer(v, `model.${k}`, 2)),
  };
}

function fail(message: string): never {
  throw new ShoalError('INVALID_CONFIG', `config: ${message}`);
}

function object(value: unknown, key: string): Raw {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${key} must be an object`);
  return value as Raw;
}

function allowKeys(value: Raw, prefix: string, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) fail(`unknown key ${prefix}${key} (allowed: ${allowed.filter((k) => !k.startsWith('$')).join(', ')})`);
  }
}

function optional<K extends string, T>(key: K, value: unknown, parse: (value: unknown, key: K) => T): { [P in K]?: T } {
  return (value === undefined || value === null ? {} : { [key]: parse(value, key) }) as { [P in K]?: T };
}

function string(value: unknown, key: string): string {
  if (typeof value !== 'string' || value.length === 0) fail(`${key} must be a non-empty string`);
  return value;
}

function stringList(value: unknown, key: string): string[] {
  if (!Array.isArray(value)) fail(`${key} must be an array of strings`);
  return value.map((item, index) => string(item, `${key}[${index}]`));
}

function number(value: unknown, key: string, ok: (x: number) => boolean, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) fail(`${key} must be a number ${what}, got ${JSON.stringify(value)}`);
  return value;
}

function integer(value: unknown, key: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(`${key} must be an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}], got ${JSON.stringify(value)}`);
  }
  return value;
}

function oneOf<T extends string>(value: unknown, key: string, options: readonly T[]): T {
  if (typeof value !== 'string' || !options.includes(value as T)) fail(`${key} must be one of ${options.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

/** The coordinator's `secagg` option for a config (absent when secure aggregation is off). */
export function secaggOptions(config: ShoalConfig): { secagg?: SecAggOptions } {
  const { mode, threshold, degree, maxDropout, stageTimeoutMs, clipRange, maxWeight } = config.secagg;
  if (mode === 'off') return {};
  return {
    secagg: {
      mode,
      ...(threshold !== undefined ? { threshold } : {}),
      ...(degree !== undefined ? { degree } : {}),
      maxDropout,
      stageTimeoutMs,
      clipRange,
      maxWeight,
    },
  };
}

/** `server.limits`: each key a positive integer, defaulting to the coordinator's own default. */
function connectionLimits(raw: Raw): Required<ConnectionLimits> {
  const limits = { ...DEFAULT_CONNECTION_LIMITS };
  for (const key of Object.keys(limits) as (keyof ConnectionLimits)[]) {
    limits[key] = integer(raw[key] ?? limits[key], `server.limits.${key}`, 1);
  }
  return limits;
}

/** The coordinator's `dp` and `sampling` options for a config (dp absent when it is off). */
export function privacyOptions(config: ShoalConfig): { dp?: DpOptions; sampling: 'fixed' | 'poisson' } {
  const { mode, noiseMultiplier, clipNorm, adaptiveClip, delta, targetEpsilon } = config.dp;
  if (mode === 'off') return { sampling: config.sampling };
  return {
    sampling: config.sampling,
    dp: { mode, noiseMultiplier, clipNorm, ...(adaptiveClip ? { adaptiveClip } : {}), delta, ...(targetEpsilon !== undefined ? { targetEpsilon } : {}) },
  };
}

/**
 * The coordinator options a config describes, shared by `serve` and `simulate`; each adds the
 * model, the tokens and its own callbacks.
 */
export function coordinatorOptions(config: ShoalConfig): Omit<CoordinatorOptions, 'model' | 'tokens'> {
  return {
    rounds: config.rounds,
    ...(config.clientsPerRound !== undefined ? { clientsPerRound: config.clientsPerRound } : {}),
    ...(config.fraction !== undefined ? { fraction: config.fraction } : {}),
    minClients: config.minClients,
    ...(config.minAvailable !== undefined ? { minAvailable: config.minAvailable } : {}),
    roundTimeoutMs: config.roundTimeoutMs,
    train: { ...config.train, proximalMu: 0 },
    strategy: createStrategy(config.strategy),
    seed: config.seed,
    heartbeatIntervalMs: config.server.heartbeatIntervalMs,
    maxUpdateNorm: config.maxUpdateNorm,
    limits: config.server.limits,
    ...secaggOptions(config),
    ...privacyOptions(config),
    ...(config.server.checkpointDir !== undefined ? { checkpointDir: config.server.checkpointDir } : {}),
  };
}
