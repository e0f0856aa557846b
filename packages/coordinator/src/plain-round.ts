import { encodeFrame, type TrainConfig, type TrainMetrics } from '@shoal/protocol';
import { enforceClip, l2Norm } from '@shoal/dp';
import { WeightedSum, type Strategy } from '@shoal/strategy';
import { StageCollector, type ActiveRound, type RoundMessage, type RoundOutcome, type Verdict } from './round.js';
import type { ClientSession } from './sessions.js';

export interface RoundSetup {
  readonly round: number;
  readonly modelVersion: string;
  readonly cohort: readonly ClientSession[];
  readonly weights: Float32Array;
  readonly numParams: number;
  readonly config: TrainConfig;
  readonly strategy: Strategy;
  readonly deadlineMs: number;
  readonly minClients: number;
  /** Plain rounds: the L2 norm every update is scaled down to, unless the config's DP clip norm replaces it. */
  readonly maxUpdateNorm: number;
}

/** `maxUpdateNorm: 'auto'`: at most this multiple of the previous round's median update norm… */
export const AUTO_MEDIAN_FACTOR = 2;
/** …and at most this multiple of the global model's L2 norm (the whole bound in a first round)… */
export const AUTO_MODEL_FACTOR = 1;
/** …which counts as at least this, so a model that starts at (or near) zero can still move. */
export const AUTO_MODEL_FLOOR = 1;

/**
 * The bound on one plain update's L2 norm in a round that starts from `weights`. `auto`:
 * min(max(1, ‖weights‖), 2 · the median norm of the previous round's updates), or max(1, ‖weights‖)
 * with no previous round (the first, or the first after a restart). The median follows the honest
 * clients unless most of a cohort is hostile, so an attacker moves the mean by at most two typical
 * honest updates times its share of the weight; the model term caps what a hostile majority could
 * make of the median. Measured honest updates stay below 0.45 · ‖weights‖ and 1.3 · the previous
 * median (docs/reliability.md).
 */
export function maxUpdateNormFor(setting: number | 'auto', weights: Float32Array, previousMedian?: number): number {
  if (setting !== 'auto') return setting;
  const fromModel = AUTO_MODEL_FACTOR * Math.max(AUTO_MODEL_FLOOR, l2Norm(weights));
  return previousMedian === undefined ? fromModel : Math.min(fromModel, AUTO_MEDIAN_FACTOR * previousMedian);
}

/**
 * A plain FedAvg round: every member trains and sends its delta; the deltas are folded into a
 * running weighted sum as they arrive, so memory stays O(d) whatever the cohort size.
 */
export class PlainRound implements ActiveRound {
  readonly round: number;
  readonly modelVersion: string;
  private readonly stage: StageCollector;
  private readonly sum: WeightedSum;
  private readonly trainMetrics: TrainMetrics[] = [];
  private bytesUp = 0;
  private bytesDown = 0;
  private unclipped = 0;
  /** Updates the coordinator scaled down to the round's norm bound. */
  private clippedUpdates = 0;
  /** The L2 norm of every update as it arrived, before the bound. */
  private readonly norms: number[] = [];

  constructor(private readonly setup: RoundSetup) {
    this.round = setup.round;
    this.modelVersion = setup.modelVersion;
    this.stage = new StageCollector(setup.cohort.map((s) => s.clientId!));
    this.sum = new WeightedSum(setup.numParams);
  }

  isMember(clientId: string): boolean {
    return this.stage.isMember(clientId);
  }

  receive(clientId: string, message: RoundMessage, bytes: number): Verdict {
    if (!this.stage.isPending(clientId)) return { close: 'DUPLICATE_MESSAGE', reason: `second ${message.type} for round ${this.round}` };
    this.bytesUp += bytes;
    switch (message.type) {
      case 'decline':
        this.stage.drop(clientId);
        return undefined;
      case 'update':
        if (message.modelVersion !== this.modelVersion) {
          return { close: 'ROUND_MISMATCH', reason: `update for round ${this.round} was computed on ${message.modelVersion}, not ${this.modelVersion}` };
        }
        this.sum.add(this.clipped(message.delta), this.setup.strategy.clientWeight(message.numExamples));
        if (message.unclipped === true) this.unclipped++;
        this.trainMetrics.push(message.metrics);
        this.stage.answer(clientId);
        return undefined;
      default:
        return { close: 'UNEXPECTED_MESSAGE', reason: `${message.type} in a round without secure aggregation` };
    }
  }

  drop(clientId: string): void {
    this.stage.drop(clientId);
  }

  /**
   * The coordinator bounds every update's norm itself (under DP, to the clip norm the clients were
   * told to use), so one client moves the mean by at most bound · weight / totalWeight however
   * large the numbers it sends: finite values of 1e38 would otherwise overflow the model.
   */
  private clipped(delta: Float32Array): Float32Array {
    const { clipped, wasClipped, norm } = enforceClip(delta, this.bound());
    if (wasClipped) this.clippedUpdates++;
    this.norms.push(norm);
    return clipped;
  }

  private bound(): number {
    return this.setup.config.clipNorm ?? this.setup.maxUpdateNorm;
  }

  async collect(signal: AbortSignal): Promise<RoundOutcome> {
    const { setup } = this;
    // Encode the two possible train frames once, not once per client: the weights dominate them.
    const train = { type: 'train', round: this.round, modelVersion: this.modelVersion, config: setup.config, deadlineMs: setup.deadlineMs } as const;
    const withWeights = encodeFrame({ ...train, weights: setup.weights });
    const withoutWeights = encodeFrame(train);
    for (const session of setup.cohort) {
      const frame = session.heldVersion === this.modelVersion ? withoutWeights : withWeights;
      session.connection.send(frame);
      session.heldVersion = this.modelVersion;
      this.bytesDown += frame.byteLength;
    }
    await this.stage.collect(setup.deadlineMs, setup.minClients, signal);
    const common = {
      participants: this.stage.answered,
      dropouts: setup.cohort.length - this.stage.answered,
      ...(this.trainMetrics.length > 0 ? { trainLoss: this.trainMetrics.reduce((t, m) => t + m.loss, 0) / this.trainMetrics.length } : {}),
      bytesUp: this.bytesUp,
      bytesDown: this.bytesDown,
      ...(setup.config.clipNorm !== undefined ? { unclipped: { count: this.unclipped, reports: this.stage.answered, noised: false } } : {}),
      normBound: { maxUpdateNorm: this.bound(), clippedUpdates: this.clippedUpdates, ...(this.norms.length > 0 ? { medianUpdateNorm: median(this.norms) } : {}) },
    };
    if (this.stage.answered < setup.minClients) {
      return { ...common, abortReason: `only ${this.stage.answered} of ${setup.cohort.length} selected clients sent a valid update; minClients is ${setup.minClients}` };
    }
    // Weights are self-reported example counts: if all are 0 there is no mean to take.
    if (!(this.sum.totalWeight > 0)) {
      return { ...common, abortReason: `the ${this.stage.answered} updates carry a total weight of ${this.sum.totalWeight} (every client reported numExamples 0); there is no mean to take` };
    }
    return { ...common, aggregate: this.sum.result() };
  }
}

/** The median of `values` (the mean of the middle two for an even count); `values` is not changed. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
