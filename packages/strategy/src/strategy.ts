import type { TrainConfig } from '@shoal/protocol';

/**
 * The cohort's updates folded together: Σ weight_i · delta_i, Σ weight_i, and how many updates.
 *
 * Strategies work from this sum rather than from a list of updates because that is all secure
 * aggregation reveals, and because a central-DP decorator must be able to noise the sum and
 * substitute its own (fixed) denominator before the server step sees it.
 */
export interface Aggregate {
  readonly weightedSum: Float64Array;
  readonly totalWeight: number;
  readonly count: number;
}

/**
 * Strategy state must be plain data (numbers, strings, Float32Array/Float64Array, arrays, objects)
 * so it can be checkpointed with msgpack.
 */
export type StrategyState = Readonly<Record<string, unknown>>;

export interface StepResult {
  readonly weights: Float32Array;
  readonly state: StrategyState;
}

/** One client's update as the coordinator accepted it (already norm-bounded), with its weight. */
export interface WeightedUpdate {
  readonly delta: Float32Array;
  readonly weight: number;
  /** F_k(w^t): the client's loss at the global model before training, when the round asked for it (q-FedAvg). */
  readonly initialLoss?: number;
}

/**
 * A federated strategy: what clients are asked to do, how much each update counts, and the
 * server optimiser step. State is passed in and returned explicitly, never stashed between calls.
 */
export interface Strategy {
  readonly name: string;
  /** State before round 1 for a model of `numParams` parameters. */
  initialState(numParams: number): StrategyState;
  /** The train config sent to clients in `round` (e.g. FedProx sets proximalMu). Pure. */
  configureTrain(round: number, base: TrainConfig): TrainConfig;
  /** The weight a client's update gets in the mean (FedAvg: its example count, capped by maxWeight). */
  clientWeight(numExamples: number): number;
  /**
   * An aggregation rule over individual updates — a robust one (FedMedian, FedTrimmedAvg, Krum), or
   * q-FedAvg's loss-weighted one: the aggregate the step uses, from
   * the cohort's individual updates instead of their sum. Only a strategy that has it makes a plain
   * round keep every update (memory cohort × d instead of d); it cannot run under secure
   * aggregation (only the sum is revealed) or DP (whose sensitivity analysis assumes the clipped
   * sum). Pure; throws a RangeError when the updates do not suffice (Krum needs n ≥ 2f + 3), and
   * the round aborts with its message.
   */
  readonly robustAggregate?: (updates: readonly WeightedUpdate[]) => Aggregate;
  /** The server optimiser step: new global weights from the old ones and the aggregate. Pure: never mutates its inputs. */
  step(global: Float32Array, aggregate: Aggregate, state: StrategyState, round: number): StepResult;
}
