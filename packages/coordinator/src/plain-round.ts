import { encodeFrame, type TrainConfig, type TrainMetrics } from '@shoal/protocol';
import { enforceClip } from '@shoal/dp';
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

  /** Under DP the coordinator enforces the clip norm itself: a client cannot buy more influence. */
  private clipped(delta: Float32Array): Float32Array {
    const clipNorm = this.setup.config.clipNorm;
    return clipNorm === undefined ? delta : enforceClip(delta, clipNorm).clipped;
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
    };
    if (this.stage.answered < setup.minClients) {
      return { ...common, abortReason: `only ${this.stage.answered} of ${setup.cohort.length} selected clients sent a valid update; minClients is ${setup.minClients}` };
    }
    return { ...common, aggregate: this.sum.result() };
  }
}
