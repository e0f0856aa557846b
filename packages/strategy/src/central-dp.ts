import { checkCentralDpOptions, cryptoNoise, noisySum, type CentralDpOptions, type NoiseSource } from '@shoal/dp';
import { wrapStrategy } from './decorator.js';
import type { Strategy } from './strategy.js';

export interface WithCentralDpOptions extends CentralDpOptions {
  /** Where the noise comes from. Default `cryptoNoise()` (WebCrypto); inject `seededNoise` only in tests. */
  readonly noise?: NoiseSource;
}

/**
 * Central DP-FedAvg (McMahan et al., ICLR 2018) around any strategy, the way Flower's
 * `DifferentialPrivacyServerSideFixedClipping` wraps one: the inner strategy never knows.
 *
 * - Every client weighs 1, so one client's influence on the sum is bounded by the clip norm C.
 * - The step adds N(0, (z·C)²) to each coordinate of the aggregate's sum, then hands the inner
 *   strategy an aggregate whose `totalWeight` is `expectedClients` (the fixed denominator): the
 *   inner mean becomes noisySum / m, with noise z·C/m per coordinate.
 *
 * Clipping happens on the clients (`clipStep`), and the coordinator must enforce it on every plain
 * update (`enforceClip` from @shoal/dp) before it is added: this decorator assumes the sum is of
 * updates of norm ≤ C. Stateless: for adaptive clipping build a new decorator each round with that
 * round's C. The privacy cost per round is accounted separately (`RdpAccountant.compose(q, z)`).
 * Throws INVALID_CONFIG (naming `dp.*`) for bad options.
 */
export function withCentralDp(inner: Strategy, options: WithCentralDpOptions): Strategy {
  const { noiseMultiplier, clipNorm, expectedClients } = checkCentralDpOptions(options, 'dp.');
  const noise = options.noise ?? cryptoNoise();
  return wrapStrategy(inner, {
    name: `${inner.name}+central-dp`,
    clientWeight: () => 1,
    step: (global, aggregate, state, round) => {
      const privatized = {
        weightedSum: noisySum(aggregate.weightedSum, { noiseMultiplier, clipNorm }, noise),
        totalWeight: expectedClients,
        count: aggregate.count,
      };
      return inner.step(global, privatized, state, round);
    },
  });
}
