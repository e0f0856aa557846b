// The `strategy` section of a Shoal config: its keys, their defaults (the same constants the
// strategy factories default to) and which keys each strategy takes. `createStrategy` applies the
// same rules to a config built in code; the coordinator's schema composes this one with the others.
import { ConfigSection, configError, oneOfAt } from '@shoal/protocol';
import { checkByzantine, checkDecay, checkKrumSelect, checkLipschitz, checkMaxWeight, checkMomentum, checkProximalMu, checkQ, checkServerLearningRate, checkTau, checkTrimFraction } from './options.js';

export const STRATEGY_NAMES = ['fedavg', 'fedavgm', 'fedprox', 'fedadam', 'fedyogi', 'fedadagrad', 'fedmedian', 'fedtrimmedavg', 'krum', 'qfedavg'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** The `strategy` section of a coordinator or simulation config. */
export interface StrategyConfig {
  readonly name: StrategyName;
  /** Default 1; 0.01 for fedadam, fedyogi and fedadagrad (`defaultServerLearningRate`). */
  readonly serverLearningRate?: number;
  /** Default 1,000 (`STRATEGY_DEFAULTS`, `DEFAULT_MAX_WEIGHT`). */
  readonly maxWeight?: number;
  /** fedavgm only. Default 0.9 (`STRATEGY_DEFAULTS`). */
  readonly momentum?: number;
  /** fedprox only, required. */
  readonly proximalMu?: number;
  /** fedadam and fedyogi only: first-moment decay β1. Default 0.9 (`STRATEGY_DEFAULTS`). */
  readonly beta1?: number;
  /** fedadam and fedyogi only: second-moment decay β2. Default 0.99 (`STRATEGY_DEFAULTS`). */
  readonly beta2?: number;
  /** fedadam, fedyogi and fedadagrad only: adaptivity τ. Default 1e-3 (`STRATEGY_DEFAULTS`). */
  readonly tau?: number;
  /** fedtrimmedavg only: β, the fraction trimmed at each end of every coordinate, in [0, 0.5). Default 0.1 (`STRATEGY_DEFAULTS`). */
  readonly trimFraction?: number;
  /** krum only: f, the Byzantine clients tolerated. Default: the largest f with n > 2f + 2 for the round's n updates. */
  readonly byzantine?: number;
  /** krum only: m, the lowest-scoring updates averaged (1 is Krum, more is Multi-Krum). Default 1 (`STRATEGY_DEFAULTS`). */
  readonly krumSelect?: number;
  /** qfedavg only: q ≥ 0, how strongly high-loss clients are favoured. Default 1 (`STRATEGY_DEFAULTS`). */
  readonly q?: number;
  /** qfedavg only: the Lipschitz estimate L > 0. Default in a config file: 1 / train.learningRate (`coordinatorOptions`). */
  readonly lipschitz?: number;
}

/** The defaults of `strategy` and of the strategy factories. `proximalMu` has none: fedprox needs it. */
export const STRATEGY_DEFAULTS = {
  name: 'fedavg',
  /** η = 1: plain FedAvg. */
  serverLearningRate: 1,
  /** The same as SecAgg's default `secagg.maxWeight`. */
  maxWeight: 1_000,
  momentum: 0.9,
  /** β1, β2 and τ of fedadam, fedyogi, fedadagrad: Reddi et al., ICLR 2021's β1, β2 (τ from its grid), as in Flower's FedAdam/FedYogi. */
  beta1: 0.9,
  beta2: 0.99,
  tau: 1e-3,
  /** FedTrimmedAvg's β: drops 10% at each end, so up to 10% of the cohort can be outliers in any one coordinate. */
  trimFraction: 0.1,
  /** Multi-Krum's m: 1 is Krum. */
  krumSelect: 1,
  /** q-FedAvg's q: 1 is the middle of the paper's grid (it uses q from 0.001 to 15 per task). */
  q: 1,
} as const satisfies Required<Omit<StrategyConfig, 'proximalMu' | 'byzantine' | 'lipschitz'>>;

/** The strategies with a robust aggregation rule: plain rounds only (no secagg, no dp). */
export const ROBUST_STRATEGIES: readonly StrategyName[] = ['fedmedian', 'fedtrimmedavg', 'krum'];

/**
 * The strategies that aggregate individual updates (the robust rules, and q-FedAvg, which weighs
 * each update by its client's loss): plain rounds only, as the coordinator's config enforces.
 */
export const PER_UPDATE_STRATEGIES: readonly StrategyName[] = [...ROBUST_STRATEGIES, 'qfedavg'];

/** The strategies with an adaptive server optimiser (Reddi et al., ICLR 2021). */
export const ADAPTIVE_STRATEGIES: readonly StrategyName[] = ['fedadam', 'fedyogi', 'fedadagrad'];

/**
 * The default server learning rate η of the adaptive strategies. Their step is about η per
 * coordinate whatever the update's size (m / (√v + τ) is near ±1 at first), so FedAvg's η = 1
 * would move every weight by about 1 a round. 0.01 is Flower's FedYogi default (its FedAdam and
 * FedAdagrad default to 0.1); one default for all three keeps the config simple.
 */
export const ADAPTIVE_SERVER_LEARNING_RATE = 0.01;

/** The server learning rate a strategy gets when none is configured. */
export function defaultServerLearningRate(name: StrategyName): number {
  return ADAPTIVE_STRATEGIES.includes(name) ? ADAPTIVE_SERVER_LEARNING_RATE : STRATEGY_DEFAULTS.serverLearningRate;
}

/** The keys each strategy takes besides `name`. */
export const STRATEGY_OPTIONS: Readonly<Record<StrategyName, readonly (keyof StrategyConfig)[]>> = {
  fedavg: ['serverLearningRate', 'maxWeight'],
  fedavgm: ['serverLearningRate', 'maxWeight', 'momentum'],
  fedprox: ['serverLearningRate', 'maxWeight', 'proximalMu'],
  fedadam: ['serverLearningRate', 'maxWeight', 'beta1', 'beta2', 'tau'],
  fedyogi: ['serverLearningRate', 'maxWeight', 'beta1', 'beta2', 'tau'],
  fedadagrad: ['serverLearningRate', 'maxWeight', 'tau'],
  // Unweighted (every client weighs 1), so maxWeight does not apply.
  fedmedian: ['serverLearningRate'],
  fedtrimmedavg: ['serverLearningRate', 'trimFraction'],
  krum: ['serverLearningRate', 'byzantine', 'krumSelect'],
  // Unweighted like the robust rules; its weights come from the clients' losses.
  qfedavg: ['serverLearningRate', 'q', 'lipschitz'],
};

/**
 * Checks a strategy config, from a file or from code: a known name, only keys that strategy
 * takes, every value in range, and `proximalMu` for fedprox. Throws ShoalError INVALID_CONFIG
 * naming the `strategy.*` key.
 */
export function checkStrategyConfig(config: StrategyConfig): StrategyConfig {
  const name = oneOfAt(config.name, 'strategy.name', STRATEGY_NAMES);
  const allowed: readonly string[] = STRATEGY_OPTIONS[name];
  for (const [key, value] of Object.entries(config)) {
    if (key === 'name' || value === undefined || allowed.includes(key)) continue;
    throw configError(`strategy.${key} is not an option of ${name} (it takes ${allowed.join(', ')})`);
  }
  if (config.serverLearningRate !== undefined) checkServerLearningRate(config.serverLearningRate);
  if (config.maxWeight !== undefined) checkMaxWeight(config.maxWeight);
  if (config.momentum !== undefined) checkMomentum(config.momentum);
  if (config.beta1 !== undefined) checkDecay('beta1', config.beta1);
  if (config.beta2 !== undefined) checkDecay('beta2', config.beta2);
  if (config.tau !== undefined) checkTau(config.tau);
  if (config.trimFraction !== undefined) checkTrimFraction(config.trimFraction);
  if (config.byzantine !== undefined) checkByzantine(config.byzantine);
  if (config.krumSelect !== undefined) checkKrumSelect(config.krumSelect);
  if (config.q !== undefined) checkQ(config.q);
  if (config.lipschitz !== undefined) checkLipschitz(config.lipschitz);
  if (name === 'fedprox') checkProximalMu(config.proximalMu);
  return config;
}

/**
 * Reads the `strategy` section and fills in `serverLearningRate` (the named strategy's default);
 * the other defaults stay with the factories.
 */
export function parseStrategyConfig(raw: unknown): StrategyConfig {
  const strategy = new ConfigSection(raw, 'strategy', ['name', 'serverLearningRate', 'maxWeight', 'momentum', 'proximalMu', 'beta1', 'beta2', 'tau', 'trimFraction', 'byzantine', 'krumSelect', 'q', 'lipschitz']);
  const name = strategy.oneOf('name', STRATEGY_DEFAULTS.name, STRATEGY_NAMES);
  return checkStrategyConfig({
    name,
    serverLearningRate: strategy.read('serverLearningRate', defaultServerLearningRate(name), checkServerLearningRate),
    ...strategy.optional('maxWeight', checkMaxWeight),
    ...strategy.optional('momentum', checkMomentum),
    ...strategy.optional('proximalMu', checkProximalMu),
    ...strategy.optional('beta1', (value) => checkDecay('beta1', value)),
    ...strategy.optional('beta2', (value) => checkDecay('beta2', value)),
    ...strategy.optional('tau', checkTau),
    ...strategy.optional('trimFraction', checkTrimFraction),
    ...strategy.optional('byzantine', checkByzantine),
    ...strategy.optional('krumSelect', checkKrumSelect),
    ...strategy.optional('q', checkQ),
    ...strategy.optional('lipschitz', checkLipschitz),
  });
}
