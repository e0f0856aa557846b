// The `strategy` section of a Shoal config: its keys, their defaults (the same constants the
// strategy factories default to) and which keys each strategy takes. `createStrategy` applies the
// same rules to a config built in code; the coordinator's schema composes this one with the others.
import { ConfigSection, configError, oneOfAt } from '@shoal/protocol';
import { checkMaxWeight, checkMomentum, checkProximalMu, checkServerLearningRate } from './options.js';

export const STRATEGY_NAMES = ['fedavg', 'fedavgm', 'fedprox'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** The `strategy` section of a coordinator or simulation config. */
export interface StrategyConfig {
  readonly name: StrategyName;
  /** Default 1 (`STRATEGY_DEFAULTS`). */
  readonly serverLearningRate?: number;
  /** Default 1,000 (`STRATEGY_DEFAULTS`, `DEFAULT_MAX_WEIGHT`). */
  readonly maxWeight?: number;
  /** fedavgm only. Default 0.9 (`STRATEGY_DEFAULTS`). */
  readonly momentum?: number;
  /** fedprox only, required. */
  readonly proximalMu?: number;
}

/** The defaults of `strategy` and of the strategy factories. `proximalMu` has none: fedprox needs it. */
export const STRATEGY_DEFAULTS = {
  name: 'fedavg',
  /** η = 1: plain FedAvg. */
  serverLearningRate: 1,
  /** The same as SecAgg's default `secagg.maxWeight`. */
  maxWeight: 1_000,
  momentum: 0.9,
} as const satisfies Required<Omit<StrategyConfig, 'proximalMu'>>;

/** The keys each strategy takes besides `name`. */
export const STRATEGY_OPTIONS: Readonly<Record<StrategyName, readonly (keyof StrategyConfig)[]>> = {
  fedavg: ['serverLearningRate', 'maxWeight'],
  fedavgm: ['serverLearningRate', 'maxWeight', 'momentum'],
  fedprox: ['serverLearningRate', 'maxWeight', 'proximalMu'],
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
  if (name === 'fedprox') checkProximalMu(config.proximalMu);
  return config;
}

/** Reads the `strategy` section and fills in `serverLearningRate`; the other defaults stay with the factories. */
export function parseStrategyConfig(raw: unknown): StrategyConfig {
  const strategy = new ConfigSection(raw, 'strategy', ['name', 'serverLearningRate', 'maxWeight', 'momentum', 'proximalMu']);
  return checkStrategyConfig({
    name: strategy.oneOf('name', STRATEGY_DEFAULTS.name, STRATEGY_NAMES),
    serverLearningRate: strategy.read('serverLearningRate', STRATEGY_DEFAULTS.serverLearningRate, checkServerLearningRate),
    ...strategy.optional('maxWeight', checkMaxWeight),
    ...strategy.optional('momentum', checkMomentum),
    ...strategy.optional('proximalMu', checkProximalMu),
  });
}
