import { WeightedSum, type Strategy } from '@shoal/strategy';
import type { TrainMetrics, UpdateMessage } from '@shoal/protocol';

/** What happened in one round, as recorded in metrics and reported to `onRound`. */
export interface RoundMetrics {
  readonly round: number;
  readonly status: 'committed' | 'aborted';
  /** Why the round aborted; absent when committed. */
  readonly reason?: string;
  /** Clients selected into the cohort. */
  readonly selected: number;
  /** Clients whose update was folded into the aggregate. */
  readonly participants: number;
  /** Selected clients that disconnected, declined or missed the deadline. */
  readonly dropouts: number;
  readonly modelVersion: string;
  /** Central evaluation of the new global model, when an evaluate callback is configured. */
  readonly accuracy?: number;
  readonly loss?: number;
  /** Mean of the participants' reported training loss. */
  readonly trainLoss?: number;
  /** Bytes of round messages received from / sent to the cohort. */
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly durationMs: number;
}

type MemberState = 'pending' | 'received' | 'dropped';

/**
 * The collect stage of one round: which cohort members are still expected, the running weighted
 * sum of their deltas, and a promise that settles when nobody is pending any more.
 */
export class RoundCollector {
  readonly round: number;
  readonly modelVersion: string;
  readonly members = new Map<string, MemberState>();
  readonly sum: WeightedSum;
  bytesUp = 0;
  bytesDown = 0;
  private readonly trainMetrics: TrainMetrics[] = [];
  private readonly strategy: Strategy;
  private wake: (() => void) | undefined;

  constructor(options: { round: number; modelVersion: string; cohort: readonly string[]; numParams: number; strategy: Strategy }) {
    this.round = options.round;
    this.modelVersion = options.modelVersion;
    this.sum = new WeightedSum(options.numParams);
    this.strategy = options.strategy;
    for (const id of options.cohort) this.members.set(id, 'pending');
  }

  isMember(clientId: string): boolean {
    return this.members.has(clientId);
  }

  /** True once the member sent its update or declined (or left): anything more from it is a replay. */
  hasAnswered(clientId: string): boolean {
    return this.members.has(clientId) && this.members.get(clientId) !== 'pending';
  }

  get pending(): number {
    return this.count('pending');
  }

  get received(): number {
    return this.count('received');
  }

  get dropped(): number {
    return this.count('dropped');
  }

  /** Folds a validated update from a pending member into the sum. */
  accept(clientId: string, update: UpdateMessage): void {
    if (this.members.get(clientId) !== 'pending') return;
    this.sum.add(update.delta, this.strategy.clientWeight(update.numExamples));
    this.trainMetrics.push(update.metrics);
    this.members.set(clientId, 'received');
    this.notify();
  }

  /** Marks a member that left, declined or timed out. Members that already reported stay counted. */
  drop(clientId: string): void {
    if (this.members.get(clientId) !== 'pending') return;
    this.members.set(clientId, 'dropped');
    this.notify();
  }

  /** Drops every member still pending (the deadline passed). */
  dropPending(): void {
    for (const [id, state] of this.members) if (state === 'pending') this.members.set(id, 'dropped');
  }

  meanTrainLoss(): number | undefined {
    if (this.trainMetrics.length === 0) return undefined;
    return this.trainMetrics.reduce((total, m) => total + m.loss, 0) / this.trainMetrics.length;
  }

  /**
   * Resolves once no member is pending, once `minClients` can no longer be reached, or at the
   * deadline, whichever comes first. The timer is always released.
   */
  async collect(deadlineMs: number, minClients: number, signal?: AbortSignal): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => this.notify();
    signal?.addEventListener('abort', onAbort);
    try {
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, deadlineMs);
      });
      while (this.pending > 0 && this.pending + this.received >= minClients && !signal?.aborted) {
        await Promise.race([deadline.then(() => 'deadline'), new Promise<void>((resolve) => (this.wake = resolve))]).then(
          (why) => {
            if (why === 'deadline') this.dropPending();
          },
        );
      }
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      this.wake = undefined;
    }
  }

  private count(state: MemberState): number {
    let n = 0;
    for (const s of this.members.values()) if (s === state) n++;
    return n;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
