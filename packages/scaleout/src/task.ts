import type { PrivacyState } from '@shoal/coordinator';
import { MAX_PACE_MS, type RetryWindow, type RoundPrivacy, type TrainConfig } from '@shoal/protocol';
import type { GatewayStatus } from './plane.js';

/** What the leader writes into the round hash for its gateways (JSON): everything a group needs. */
export interface RoundTask {
  readonly runId: string;
  /** The model the round trains: `runId:lastCommittedRound`, whose weights are in Redis. */
  readonly lastCommittedRound: number;
  readonly config: TrainConfig;
  readonly privacy: RoundPrivacy;
  readonly privacyState?: PrivacyState;
  /** Gateway id → how many of its devices it may admit this round. */
  readonly quotas: Readonly<Record<string, number>>;
  readonly minGroupSize: number;
  /**
   * With DP: the accountant's q for this round, fixed when it began, so that a leader that takes
   * over an abandoned round whose group sums were released can charge it as it would have been.
   */
  readonly sampleRate?: number;
  /**
   * Pace steering: when the round wants fewer devices than the gateways hold, each gateway tells
   * its eligible devices it did not admit to come back within this window (`retryWindowFor`).
   * Absent: nobody is paced (every eligible device was admitted, or no round has been timed yet).
   */
  readonly retryWindowMs?: RetryWindow;
}

/** A finished group's report (JSON); its sum's bytes are stored beside it. */
export interface GroupReportMeta {
  readonly gateway: string;
  /** How many groups its gateway formed this round (absent: 1), so the leader knows when that gateway is done. */
  readonly groups?: number;
  readonly selected: number;
  /** Members whose input is in the sum. */
  readonly count: number;
  readonly totalWeight: number;
  readonly dropouts: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly trainLoss?: number;
  /** Adaptive clipping: how many of `reports` members were within the clip norm. */
  readonly unclipped?: { readonly count: number; readonly reports: number; readonly noised: boolean };
  /** Why the group has no sum (too few members survived, SecAgg aborted). */
  readonly failure?: string;
}

/**
 * How many devices each gateway may admit for a round that wants `wanted` (already over-selected):
 * shares proportional to the gateways' eligible counts, apportioned by largest remainder so they
 * add up to exactly `wanted` (or every eligible device, if fewer), none above what a gateway has.
 * A gateway that cannot form one group of `minGroupSize` gets none; a share below it is raised to
 * it, the one case where the total exceeds `wanted` (a few devices, when `wanted` is small next to
 * gateways × minGroupSize).
 */
export function quotasFor(gateways: readonly GatewayStatus[], wanted: number, minGroupSize: number): Record<string, number> {
  const usable = gateways.filter((gateway) => gateway.eligible >= minGroupSize);
  const eligible = usable.reduce((total, gateway) => total + gateway.eligible, 0);
  const target = Math.min(wanted, eligible);
  const exact = usable.map((gateway) => (target * gateway.eligible) / Math.max(1, eligible));
  const shares = exact.map(Math.floor);
  // The devices the floors left out go to the largest remainders (never past a gateway's eligible count).
  let left = target - shares.reduce((total, share) => total + share, 0);
  const byRemainder = usable.map((_, i) => i).sort((a, b) => exact[b]! - shares[b]! - (exact[a]! - shares[a]!) || a - b);
  for (const i of byRemainder) {
    if (left === 0) break;
    if (shares[i]! < usable[i]!.eligible) {
      shares[i]!++;
      left--;
    }
  }
  const quotas: Record<string, number> = {};
  usable.forEach((gateway, i) => (quotas[gateway.id] = Math.max(minGroupSize, shares[i]!)));
  return quotas;
}

/** The shortest wait a pace asks for: reconnecting (TLS, hello, maybe the model) costs more than a shorter stay away saves. */
export const MIN_PACE_MS = 1_000;

/**
 * The pace window of a round (Bonawitz et al., SysML 2019, pace steering): when `admitted` of the
 * `eligible` devices are taken, the other `eligible − admitted` should come back at the rate the
 * rounds consume devices, about `admitted` per round, instead of all at once. Spread uniformly over
 * [T, k·T] with T one round's duration and k = eligible / admitted, they return at
 * (eligible − admitted) / ((k − 1)·T) = admitted per T: as many as a round admits. None comes back
 * before the next round can take it (min = T). k is at most `roundsLeft` (the task's rounds after
 * this one), so nobody is sent past the task's end; T is at least MIN_PACE_MS, and both ends at
 * most MAX_PACE_MS. Undefined, so nobody is paced, when every eligible device was admitted, no
 * round follows, or `roundMs` (the recent rounds' duration) is not known yet: the leader does not
 * guess how long a round takes.
 */
export function retryWindowFor(eligible: number, admitted: number, roundMs: number | undefined, roundsLeft: number): RetryWindow | undefined {
  if (roundMs === undefined || !(admitted > 0) || eligible <= admitted || !(roundsLeft >= 1)) return undefined;
  const round = Math.min(MAX_PACE_MS, Math.max(MIN_PACE_MS, Math.round(roundMs)));
  const rounds = Math.min(eligible / admitted, roundsLeft);
  return { min: round, max: Math.min(MAX_PACE_MS, Math.max(round, Math.round(rounds * round))) };
}

/** The duration of one round, for pacing: the median of the recent rounds' durations (ms); undefined before any. */
export function typicalRoundMs(durations: readonly number[]): number | undefined {
  const timed = durations.filter((duration) => Number.isFinite(duration) && duration > 0).sort((a, b) => a - b);
  if (timed.length === 0) return undefined;
  const middle = timed.length >> 1;
  return timed.length % 2 === 1 ? timed[middle]! : (timed[middle - 1]! + timed[middle]!) / 2;
}
