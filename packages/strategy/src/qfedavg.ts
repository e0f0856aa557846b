// q-FedAvg (Li, Sanjabi, Beirami, Smith, ICLR 2020, "Fair Resource Allocation in Federated
// Learning", Algorithm 2): clients with a higher loss at the global model weigh more, so the model
// is pushed towards a more uniform accuracy across clients. One idea over FedAvg: the aggregate.
import { STRATEGY_DEFAULTS } from './config.js';
import { wrapStrategy } from './decorator.js';
import { fedAvg } from './fedavg.js';
import { checkLipschitz, checkQ, checkServerLearningRate } from './options.js';
import type { Aggregate, Strategy, WeightedUpdate } from './strategy.js';

export interface QFedAvgOptions {
  /** q ≥ 0: how strongly high-loss clients are favoured; 0 is FedAvg with every client weighing 1. Default 1. */
  readonly q?: number;
  /**
   * L > 0, the Lipschitz estimate of the loss gradient. Required here; a config file defaults it to
   * 1 / train.learningRate, the choice of the paper's released code.
   */
  readonly lipschitz: number;
  /** Server learning rate η applied to q-FedAvg's step. Default 1 (the paper's step). */
  readonly serverLearningRate?: number;
}

/**
 * Added to every loss before it is raised to a power, as the paper's code does, so a client with a
 * loss of exactly 0 gives finite weights (0^(q−1) would be infinite for q < 1).
 */
const LOSS_FLOOR = 1e-10;

/**
 * q-FedAvg's aggregate (Algorithm 2), with Shoal's delta = local − global (the paper's Δw_k is
 * L·(global − local) = −L·delta_k):
 *   weightedSum = Σ_k L·F_k^q·delta_k,   totalWeight = Σ_k h_k,
 *   h_k = q·F_k^(q−1)·L²·‖delta_k‖² + L·F_k^q,
 * so FedAvg's step global + weightedSum / totalWeight is the paper's w − ΣΔ_k / Σh_k.
 * F_k is `initialLoss` + 1e-10. Pure; throws a RangeError for an update without `initialLoss`.
 */
export function qFedAvgAggregate(updates: readonly WeightedUpdate[], q: number, lipschitz: number): Aggregate {
  if (updates.length === 0) throw new RangeError('qfedavg needs at least one update');
  const numParams = updates[0]!.delta.length;
  const weightedSum = new Float64Array(numParams);
  let totalWeight = 0;
  for (const [index, { delta, initialLoss }] of updates.entries()) {
    if (delta.length !== numParams) throw new RangeError(`qfedavg: updates of ${delta.length} and ${numParams} values`);
    if (initialLoss === undefined || !Number.isFinite(initialLoss) || initialLoss < 0) {
      throw new RangeError(`qfedavg: update ${index} has no finite initialLoss >= 0 (got ${initialLoss})`);
    }
    const loss = initialLoss + LOSS_FLOOR;
    let squaredNorm = 0;
    for (let i = 0; i < numParams; i++) squaredNorm += delta[i]! * delta[i]!;
    const scale = lipschitz * loss ** q;
    // q = 0: the first term is 0 (avoids 0 · loss^−1 when loss is tiny).
    const curvature = q === 0 ? 0 : q * loss ** (q - 1) * lipschitz * lipschitz * squaredNorm;
    for (let i = 0; i < numParams; i++) weightedSum[i] = weightedSum[i]! + scale * delta[i]!;
    totalWeight += curvature + scale;
  }
  return { weightedSum, totalWeight, count: updates.length };
}

/**
 * q-FedAvg: FedAvg's step on `qFedAvgAggregate`. It needs each client's update and its loss
 * before training, so it runs in plain rounds only (no secure aggregation, no DP), and its train
 * config asks clients for `initialLoss`. Clients weigh 1 each, as in the paper (devices are
 * sampled, not weighted, by their data size).
 */
export function qFedAvg(options: QFedAvgOptions): Strategy {
  const q = checkQ(options.q ?? STRATEGY_DEFAULTS.q);
  const lipschitz = checkLipschitz(options.lipschitz);
  const inner = fedAvg({ serverLearningRate: checkServerLearningRate(options.serverLearningRate ?? STRATEGY_DEFAULTS.serverLearningRate) });
  return wrapStrategy(inner, {
    name: 'qfedavg',
    configureTrain: (round, base) => ({ ...inner.configureTrain(round, base), reportInitialLoss: true }),
    clientWeight: () => 1,
    robustAggregate: (updates) => qFedAvgAggregate(updates, q, lipschitz),
  });
}
