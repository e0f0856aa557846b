import { ShoalError } from '@shoal/protocol';
import { fedAvg } from './fedavg.js';
import { fedAvgM } from './fedavgm.js';
import { fedProx } from './fedprox.js';
import { checkProximalMu } from './options.js';
import type { Strategy } from './strategy.js';

/** The `strategy` section of a coordinator or simulation config. */
export interface StrategyConfig {
  readonly name: 'fedavg' | 'fedavgm' | 'fedprox';
  /** Default 1. */
  readonly serverLearningRate?: number;
  /** Default 1,000 (`DEFAULT_MAX_WEIGHT`). */
  readonly maxWeight?: number;
  /** fedavgm only. Default 0.9. */
  readonly momentum?: number;
  /** fedprox only, required. */
  readonly proximalMu?: number;
}

const OPTIONS_OF: Readonly<Record<StrategyConfig['name'], readonly string[]>> = {
  fedavg: ['serverLearningRate', 'maxWeight'],
  fedavgm: ['serverLearningRate', 'maxWeight', 'momentum'],
  fedprox: ['serverLearningRate', 'maxWeight', 'proximalMu'],
};

/**
 * Builds a strategy from config (typically parsed JSON). Throws `ShoalError('INVALID_CONFIG')`
 * naming the bad key for an unknown strategy, an option the strategy does not take, or a bad value.
 */
export function createStrategy(config: StrategyConfig): Strategy {
  const name: unknown = config.name;
  if (typeof name !== 'string' || !Object.hasOwn(OPTIONS_OF, name)) {
    const known = Object.keys(OPTIONS_OF).join(', ');
    throw new ShoalError('INVALID_CONFIG', `strategy.name must be one of ${known}, got ${JSON.stringify(name)}`);
  }
  const allowed = OPTIONS_OF[name as StrategyConfig['name']];
  for (const [key, value] of Object.entries(config)) {
    if (key === 'name' || value === undefined || allowed.includes(key)) continue;
    throw new ShoalError('INVALID_CONFIG', `strategy.${key} is not an option of ${name} (it takes ${allowed.join(', ')})`);
  }
  switch (config.name) {
    case 'fedavg':
      return fedAvg(config);
    case 'fedavgm':
      return fedAvgM(config);
    case 'fedprox':
      return fedProx({ ...config, proximalMu: checkProximalMu(config.proximalMu) });
  }
}
