import type { PrivacyState } from '@shoal/coordinator';
import type { RoundPrivacy, TrainConfig } from '@shoal/protocol';
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
}

/** A finished group's report (JSON); its sum's bytes are stored beside it. */
export interface GroupReportMeta {
  readonly gateway: string;
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
