import type { ClientMessage, ErrorCode } from '@shoal/protocol';
import type { Aggregate } from '@shoal/strategy';

/** Per-stage timings and dropouts of a secure-aggregation round. */
export interface SecAggMetrics {
  readonly mode: 'secagg' | 'secagg+';
  readonly threshold: number;
  readonly degree: number;
  /** Fixed-point scale of the encoding: the decoded sum is within participants/scale of the true one. */
  readonly scale: number;
  /** Milliseconds each stage took, in order. */
  readonly stageMs: Readonly<Record<SecAggStage, number>>;
  /** Clients lost in each stage (missed its deadline, disconnected or declined). */
  readonly dropouts: Readonly<Record<SecAggStage, number>>;
}

export type SecAggStage = 'advertise' | 'share' | 'masked' | 'unmask';

/** What happened in one round, as recorded in metrics and reported to `onRound`. */
export interface RoundMetrics {
  readonly round: number;
  readonly status: 'committed' | 'aborted';
  /** Why the round aborted; absent when committed. */
  readonly reason?: string;
  /** Clients selected into the cohort. */
  readonly selected: number;
  /** Clients whose update went into the aggregate. */
  readonly participants: number;
  /** Selected clients that disconnected, declined or missed a deadline. */
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
  readonly secagg?: SecAggMetrics;
  /** Plain rounds: the L2 norm bound applied to every update (`maxUpdateNorm`, or the DP clip norm). */
  readonly maxUpdateNorm?: number;
  /** Plain rounds: how many updates were above that bound and scaled down to it. */
  readonly clippedUpdates?: number;
  /** Plain rounds: the median L2 norm of the updates as sent (`auto` bounds the next round by twice it). */
  readonly medianUpdateNorm?: number;
  /** Differential privacy: ε spent so far (this round included when it committed), and the round's settings. */
  readonly epsilon?: number;
  readonly delta?: number;
  readonly clipNorm?: number;
  readonly noiseStd?: number;
}

/** The collect phase's result: an aggregate to step with, or the reason the round must abort. */
export type RoundOutcome = {
  readonly participants: number;
  readonly dropouts: number;
  readonly trainLoss?: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly secagg?: SecAggMetrics;
  /** Plain rounds: the norm bound, how many updates it scaled down, and the median norm as sent. */
  readonly normBound?: { readonly maxUpdateNorm: number; readonly clippedUpdates: number; readonly medianUpdateNorm?: number };
  /** Adaptive clipping: how many of the `reports` updates were within the clip norm (`noised` when the clients noised the count). */
  readonly unclipped?: { readonly count: number; readonly reports: number; readonly noised: boolean };
} & ({ readonly aggregate: Aggregate } | { readonly abortReason: string });

/** The index of the first NaN or ±Infinity in `values`, or -1 when every value is finite. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return i;
  return -1;
}

/** How the coordinator must treat one connection after a round message: keep it, or close it. */
export type Verdict = { readonly close: ErrorCode; readonly reason: string } | undefined;

/** A round message from a cohort member. */
export type RoundMessage = Exclude<ClientMessage, { type: 'hello' }>;

/**
 * The round in flight, as the connection layer sees it: who belongs to it, where their messages
 * go, and who left. Plain FedAvg rounds and secure-aggregation rounds implement it.
 */
export interface ActiveRound {
  readonly round: number;
  readonly modelVersion: string;
  isMember(clientId: string): boolean;
  receive(clientId: string, message: RoundMessage, bytes: number): Verdict;
  /** The member disconnected. */
  drop(clientId: string): void;
  /** Runs the round's stages until an aggregate is ready or the round cannot finish. */
  collect(signal: AbortSignal): Promise<RoundOutcome>;
}

type MemberState = 'pending' | 'answered' | 'dropped';

/**
 * Who is still expected in one stage of a round, and a wait that ends as soon as everybody
 * answered, `minAnswers` became unreachable, the deadline passed, or the signal aborted.
 */
export class StageCollector {
  private readonly members = new Map<string, MemberState>();
  private wake: (() => void) | undefined;

  constructor(members: Iterable<string>) {
    for (const id of members) this.members.set(id, 'pending');
  }

  isMember(id: string): boolean {
    return this.members.has(id);
  }

  isPending(id: string): boolean {
    return this.members.get(id) === 'pending';
  }

  /** Marks a pending member as answered; false when it was not pending (a replay or a dropout). */
  answer(id: string): boolean {
    if (this.members.get(id) !== 'pending') return false;
    this.members.set(id, 'answered');
    this.notify();
    return true;
  }

  /** Marks a pending member as dropped (left, declined, or missed the deadline). */
  drop(id: string): void {
    if (this.members.get(id) !== 'pending') return;
    this.members.set(id, 'dropped');
    this.notify();
  }

  get pending(): number {
    return this.count('pending');
  }

  get answered(): number {
    return this.count('answered');
  }

  get dropped(): number {
    return this.count('dropped');
  }

  answeredIds(): string[] {
    return [...this.members].filter(([, state]) => state === 'answered').map(([id]) => id);
  }

  async collect(deadlineMs: number, minAnswers: number, signal?: AbortSignal): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let deadlinePassed = false;
    const onAbort = () => this.notify();
    signal?.addEventListener('abort', onAbort);
    try {
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          deadlinePassed = true;
          resolve();
        }, deadlineMs);
      });
      while (this.pending > 0 && this.pending + this.answered >= minAnswers && !signal?.aborted && !deadlinePassed) {
        await Promise.race([deadline, new Promise<void>((resolve) => (this.wake = resolve))]);
      }
      if (deadlinePassed) for (const [id, state] of this.members) if (state === 'pending') this.members.set(id, 'dropped');
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
