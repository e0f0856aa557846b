import { wrapStrategy } from './decorator.js';
import { fedAvg, type FedAvgOptions } from './fedavg.js';
import { checkProximalMu } from './options.js';
import type { Strategy } from './strategy.js';

export interface FedProxOptions extends FedAvgOptions {
  /** Proximal term µ clients add to their local loss, (µ/2)·‖w − w_global‖². Required; 0 is FedAvg. */
  readonly proximalMu: number;
}

/**
 * FedProx (Li et al., MLSys 2020): FedAvg on the server; clients are told to train with the
 * proximal term µ. Only the train config differs from FedAvg.
 */
export function fedProx(options: FedProxOptions): Strategy {
  const proximalMu = checkProximalMu(options.proximalMu);
  const inner = fedAvg(options);
  return wrapStrategy(inner, {
    name: 'fedprox',
    configureTrain: (round, base) => ({ ...inner.configureTrain(round, base), proximalMu }),
  });
}
