import type { Aggregate } from './strategy.js';

/**
 * Folds client updates into a running weighted sum as they arrive, so the coordinator holds O(d)
 * memory whatever the cohort size. Accumulates in Float64 so that summing thousands of Float32
 * updates loses no precision worth mentioning.
 *
 * The coordinator validates updates before adding them, so a wrong length or a bad weight here is
 * a programmer error and throws a `RangeError`.
 */
export class WeightedSum {
  readonly #sum: Float64Array;
  #totalWeight = 0;
  #count = 0;

  constructor(numParams: number) {
    if (!Number.isSafeInteger(numParams) || numParams < 0) {
      throw new RangeError(`numParams must be a non-negative integer, got ${numParams}`);
    }
    this.#sum = new Float64Array(numParams);
  }

  /** Adds `weight · delta`. `weight` must be finite and ≥ 0; `delta` must have numParams values. */
  add(delta: Float32Array, weight: number): void {
    const sum = this.#sum;
    if (delta.length !== sum.length) {
      throw new RangeError(`update has ${delta.length} values; the model has ${sum.length}`);
    }
    if (!Number.isFinite(weight) || weight < 0) {
      throw new RangeError(`update weight must be finite and >= 0, got ${weight}`);
    }
    // The hot loop: kept a bare indexed loop so V8 compiles it like `acc[i] += x[i]`.
    const length = sum.length;
    for (let i = 0; i < length; i++) {
      sum[i] = sum[i]! + weight * delta[i]!;
    }
    this.#totalWeight += weight;
    this.#count += 1;
  }

  /** How many updates have been added. */
  get count(): number {
    return this.#count;
  }

  /** Σ weight over the added updates. */
  get totalWeight(): number {
    return this.#totalWeight;
  }

  /** A snapshot of the sum so far: later `add` calls do not change it. */
  result(): Aggregate {
    return { weightedSum: this.#sum.slice(), totalWeight: this.#totalWeight, count: this.#count };
  }
}

/** The weighted mean update, `weightedSum / totalWeight`. Throws a `RangeError` when totalWeight is 0. */
export function meanDelta(aggregate: Aggregate): Float64Array {
  const { weightedSum, totalWeight } = aggregate;
  if (!(totalWeight > 0) || !Number.isFinite(totalWeight)) {
    throw new RangeError(`cannot average an aggregate with totalWeight ${totalWeight}; it needs at least one weighted update`);
  }
  const mean = new Float64Array(weightedSum.length);
  for (let i = 0; i < mean.length; i++) mean[i] = weightedSum[i]! / totalWeight;
  return mean;
}

/**
 * The aggregate of two disjoint groups of updates: sums and weights add. So an aggregate computed
 * per group (per gateway, DESIGN.md §10) composes into the cohort's, exactly as if one
 * coordinator had seen every update.
 */
export function addAggregates(a: Aggregate, b: Aggregate): Aggregate {
  if (a.weightedSum.length !== b.weightedSum.length) {
    throw new RangeError(`cannot add aggregates of ${a.weightedSum.length} and ${b.weightedSum.length} values`);
  }
  const weightedSum = new Float64Array(a.weightedSum.length);
  for (let i = 0; i < weightedSum.length; i++) weightedSum[i] = a.weightedSum[i]! + b.weightedSum[i]!;
  return { weightedSum, totalWeight: a.totalWeight + b.totalWeight, count: a.count + b.count };
}
