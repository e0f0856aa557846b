import { checkStrategyConfig, type StrategyConfig } from './config.js';
import { fedAvg } from './fedavg.js';
import { fedAvgM } from './fedavgm.js';
import { fedAdagrad, fedAdam, fedYogi } from './fedopt.js';
import { fedProx } from './fedprox.js';
import { qFedAvg } from './qfedavg.js';
import { fedMedian, fedTrimmedAvg, krum } from './robust.js';
import type { Strategy } from './strategy.js';

/**
 * Builds a strategy from config (typically parsed JSON). Throws `ShoalError('INVALID_CONFIG')`
 * naming the bad key for an unknown strategy, an option the strategy does not take, or a bad value.
 */
export function createStrategy(config: StrategyConfig): Strategy {
  checkStrategyConfig(config);
  switch (config.name) {
    case 'fedavg':
      return fedAvg(config);
    case 'fedavgm':
      return fedAvgM(config);
    case 'fedprox':
      return fedProx({ ...config, proximalMu: config.proximalMu! });
    case 'fedadam':
      return fedAdam(config);
    case 'fedyogi':
      return fedYogi(config);
    case 'fedadagrad':
      return fedAdagrad(config);
    case 'fedmedian':
      return fedMedian(config);
    case 'fedtrimmedavg':
      return fedTrimmedAvg(config);
    case 'krum':
      return krum(config);
    case 'qfedavg':
      return qFedAvg({ ...config, lipschitz: config.lipschitz! });
  }
}
