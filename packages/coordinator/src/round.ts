/** Per-stage timings and dropouts of a secure-aggregation round. */
export interface SecAggMetrics {
  readonly mode: 'secagg' | 'secagg+';
  readonly threshold: number;
  readonly degree: number;
  /** Fixed-point scale of the encoding: the decoded sum is within participants/scale of the true one. */
  readonly scale: number;
  /** Milliseconds each stage took, in order: wall time of its gather, so mostly waiting for clients. */
  readonly stageMs: Readonly<Record<SecAggStage, number>>;
  /**
   * The coordinator process's CPU milliseconds (user + system, every thread) in each stage. A
   * stage's window opens with the messages that start it (advertise: the `train` frames; share:
   * closing advertise and sending `keys`; masked: closing share and sending `inbox`; confirm:
   * closing masked and sending `survivors`; unmask: closing confirm and sending `unmask`), spans its
   * gather, and ends where the next opens; unmask's also holds the unmasking (`finish`). The windows
   * abut, so their sum is the CPU of the whole collect phase. Work of other rounds or connections
   * (admissions, heartbeats, in-process virtual clients of a simulation) in a window is counted in
   * it. Absent in records written before it was measured.
   */
  readonly stageCpuMs?: Readonly<Record<SecAggStage, number>>;
  /** Clients lost in each stage (missed its deadline, disconnected or declined). */
  readonly dropouts: Readonly<Record<SecAggStage, number>>;
}

export type SecAggStage = 'advertise' | 'share' | 'masked' | 'confirm' | 'unmask';

import type { FederatedEvaluationMetrics } from './evaluation-summary.js';

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
  /**
   * Federated evaluation of the committed model on the clients' held-out data (`federatedEvaluation`):
   * present when the round committed, was due, and at least one client answered in time.
   */
  readonly federatedEvaluation?: FederatedEvaluationMetrics;
  /** Mean of the participants' reported training loss. */
  readonly trainLoss?: number;
  /** Bytes of round messages received from / sent to the cohort. */
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly durationMs: number;
  readonly secagg?: SecAggMetrics;
  /**
   * Scale-out only: the SecAgg groups of the round (at a gateway: the groups it ran, whose `secagg`
   * is merged over them; at the leader: the groups whose sums it added). Absent on `shoal serve`.
   */
  readonly groups?: number;
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

/** The index of the first NaN or ±Infinity in `values`, or -1 when every value is finite. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return i;
  return -1;
}
