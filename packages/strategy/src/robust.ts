// Robust aggregation rules (FedMedian, FedTrimmedAvg, Krum / Multi-Krum). Each maps the cohort's
// individual updates to one robust update, handed to FedAvg's step as an aggregate of weight 1, so
// the server step (global + η · update) is FedAvg's. They need every update on its own, so they
// run in plain rounds only: the coordinator refuses them with secure aggregation or DP. All three
// are unweighted: every client weighs 1 (a self-reported example count must not buy influence).
import { STRATEGY_DEFAULTS } from './config.js';
import { wrapStrategy } from './decorator.js';
import { fedAvg } from './fedavg.js';
import { checkByzantine, checkKrumSelect, checkServerLearningRate, checkTrimFraction } from './options.js';
import type { Aggregate, Strategy, WeightedUpdate } from './strategy.js';

export interface RobustOptions {
  /** Server learning rate η applied to the robust update. Default 1. */
  readonly serverLearningRate?: number;
}

export interface FedTrimmedAvgOptions extends RobustOptions {
  /** β: the fraction of values dropped at each end of every coordinate, in [0, 0.5). Default 0.1. */
  readonly trimFraction?: number;
}

export interface KrumOptions extends RobustOptions {
  /**
   * f: how many Byzantine clients to tolerate; each update is scored over its n − f − 2 nearest
   * others, and a round needs n ≥ 2f + 3 updates. Default: the largest f with n > 2f + 2 for the
   * round's n updates, ⌊(n − 3)/2⌋.
   */
  readonly byzantine?: number;
  /** m: how many of the lowest-scoring updates are averaged. Default 1 (Krum); more is Multi-Krum. */
  readonly krumSelect?: number;
}

/** The robust update as an aggregate of total weight 1, so `meanDelta` of it is the update itself. */
function asAggregate(update: Float64Array, count: number): Aggregate {
  return { weightedSum: update, totalWeight: 1, count };
}

function checkUpdates(updates: readonly WeightedUpdate[], rule: string): number {
  if (updates.length === 0) throw new RangeError(`${rule} needs at least one update`);
  const numParams = updates[0]!.delta.length;
  for (const { delta } of updates) {
    if (delta.length !== numParams) throw new RangeError(`${rule}: updates of ${delta.length} and ${numParams} values`);
  }
  return numParams;
}

/** Applies `reduce` to each coordinate's values across the updates, sorted ascending. */
function perCoordinate(updates: readonly WeightedUpdate[], rule: string, reduce: (sorted: Float64Array) => number): Float64Array {
  const numParams = checkUpdates(updates, rule);
  const column = new Float64Array(updates.length);
  const result = new Float64Array(numParams);
  for (let i = 0; i < numParams; i++) {
    for (let k = 0; k < updates.length; k++) column[k] = updates[k]!.delta[i]!;
    column.sort();
    result[i] = reduce(column);
  }
  return result;
}

/**
 * The coordinate-wise median of the updates (the mean of the middle two for an even count).
 * Weights are ignored: a self-reported example count must not buy a coordinate.
 */
export function coordinateMedian(updates: readonly WeightedUpdate[]): Float64Array {
  return perCoordinate(updates, 'fedmedian', (sorted) => {
    const middle = sorted.length >> 1;
    return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  });
}

/**
 * The coordinate-wise β-trimmed mean: per coordinate, drop the ⌊β·n⌋ smallest and ⌊β·n⌋ largest
 * values and take the unweighted mean of the rest (at least one remains, since β < 0.5).
 */
export function trimmedMean(updates: readonly WeightedUpdate[], trimFraction: number): Float64Array {
  const trim = Math.floor(checkTrimFraction(trimFraction) * updates.length);
  return perCoordinate(updates, 'fedtrimmedavg', (sorted) => {
    let total = 0;
    for (let k = trim; k < sorted.length - trim; k++) total += sorted[k]!;
    return total / (sorted.length - 2 * trim);
  });
}

/**
 * Krum / Multi-Krum (Blanchard et al., NeurIPS 2017): score each update by the sum of squared
 * distances to its n − f − 2 nearest others, and return the unweighted mean of the `select`
 * lowest-scoring ones (ties go to the earlier update), with their indices. `byzantine` defaults to
 * ⌊(n − 3)/2⌋. Throws a RangeError when n < 2f + 3 or n < select.
 */
export function multiKrum(updates: readonly WeightedUpdate[], options: { byzantine?: number | undefined; select: number }): { update: Float64Array; selected: number[] } {
  const numParams = checkUpdates(updates, 'krum');
  const n = updates.length;
  const f = options.byzantine ?? Math.max(0, Math.floor((n - 3) / 2));
  if (n < 2 * f + 3) throw new RangeError(`krum with strategy.byzantine ${f} needs at least ${2 * f + 3} updates (n > 2f + 2), got ${n}`);
  if (n < options.select) throw new RangeError(`krum cannot select strategy.krumSelect ${options.select} of ${n} updates`);
  const distance = (a: Float32Array, b: Float32Array) => {
    let total = 0;
    for (let i = 0; i < numParams; i++) total += (a[i]! - b[i]!) ** 2;
    return total;
  };
  const distances = updates.map((a, i) => updates.map((b, j) => (i === j ? 0 : j < i ? Number.NaN : distance(a.delta, b.delta))));
  const between = (i: number, j: number) => (j > i ? distances[i]![j]! : distances[j]![i]!);
  const scores = updates.map((_, i) => {
    const others = updates.map((_, j) => j).filter((j) => j !== i).map((j) => between(i, j)).sort((a, b) => a - b);
    return others.slice(0, n - f - 2).reduce((total, d) => total + d, 0);
  });
  const selected = scores.map((score, i) => ({ score, i })).sort((a, b) => a.score - b.score || a.i - b.i).slice(0, options.select).map(({ i }) => i);
  const update = new Float64Array(numParams);
  for (const i of selected) {
    const delta = updates[i]!.delta;
    for (let k = 0; k < numParams; k++) update[k] = update[k]! + delta[k]! / selected.length;
  }
  return { update, selected };
}

/** FedMedian (Yin et al., ICML 2018): FedAvg's step on the coordinate-wise median update. */
export function fedMedian(options: RobustOptions = {}): Strategy {
  return wrapStrategy(fedAvg({ serverLearningRate: checkServerLearningRate(options.serverLearningRate ?? STRATEGY_DEFAULTS.serverLearningRate) }), {
    name: 'fedmedian',
    clientWeight: () => 1,
    robustAggregate: (updates) => asAggregate(coordinateMedian(updates), updates.length),
  });
}

/** FedTrimmedAvg (Yin et al., ICML 2018): FedAvg's step on the coordinate-wise β-trimmed mean. */
export function fedTrimmedAvg(options: FedTrimmedAvgOptions = {}): Strategy {
  const trimFraction = checkTrimFraction(options.trimFraction ?? STRATEGY_DEFAULTS.trimFraction);
  return wrapStrategy(fedAvg({ serverLearningRate: checkServerLearningRate(options.serverLearningRate ?? STRATEGY_DEFAULTS.serverLearningRate) }), {
    name: 'fedtrimmedavg',
    clientWeight: () => 1,
    robustAggregate: (updates) => asAggregate(trimmedMean(updates, trimFraction), updates.length),
  });
}

/** Krum (m = 1) or Multi-Krum (m > 1): FedAvg's step on the mean of the m lowest-scoring updates. */
export function krum(options: KrumOptions = {}): Strategy {
  const byzantine = options.byzantine === undefined ? undefined : checkByzantine(options.byzantine);
  const select = checkKrumSelect(options.krumSelect ?? STRATEGY_DEFAULTS.krumSelect);
  return wrapStrategy(fedAvg({ serverLearningRate: checkServerLearningRate(options.serverLearningRate ?? STRATEGY_DEFAULTS.serverLearningRate) }), {
    name: 'krum',
    clientWeight: () => 1,
    robustAggregate: (updates) => asAggregate(multiKrum(updates, { byzantine, select }).update, updates.length),
  });
}
