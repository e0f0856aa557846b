// The seeded schedule of a chaos run (scripts/chaos.ts, test/chaos): where the coordinator dies,
// and which client connections are cut at which stage. Pure: the same seed gives the same plan,
// whatever order frames happen to arrive in.
import { createSeededRandom, shuffled } from '@shoal/protocol';

/**
 * How a coordinator process dies. The first five are explicit crash points (`SHOAL_CRASH_AT`, see
 * packages/coordinator/src/crash-point.ts): writing the round's checkpoint (three steps), with the
 * unmask stage under way, and with the masked-input stage under way (clients still training).
 * `between-rounds`: the driver SIGKILLs the process once it has printed the round's result.
 */
export const COORDINATOR_KILLS = ['mid-write', 'before-rename', 'after-rename', 'mid-unmask', 'mid-training', 'between-rounds'] as const;
export type CoordinatorKill = (typeof COORDINATOR_KILLS)[number];

/** One planned coordinator death: `kind` in (or right after) round `round`. */
export interface PlannedKill {
  readonly kind: CoordinatorKill;
  readonly round: number;
}

/**
 * `kills` coordinator deaths over a run of `rounds` rounds: every kind in turn (a seeded order,
 * reshuffled each cycle, so a short run still covers every kind), at rounds 2 … rounds − 2 that
 * are at least two apart, so every life of the coordinator can finish a round before it dies,
 * and the last life finishes the run. Fewer kills than asked when the rounds do not fit them.
 */
export function planCoordinatorKills(seed: number, rounds: number, kills: number): PlannedKill[] {
  const random = createSeededRandom(seed);
  const fitting = Math.max(0, Math.min(kills, Math.floor((rounds - 2) / 2)));
  // Gaps of 2, plus the slack (rounds − 2 − 2·fitting) cut at random into fitting + 1 pieces, the last after the last kill.
  const slack = rounds - 2 - 2 * fitting;
  const cuts = Array.from({ length: fitting + 1 }, () => random.next());
  const total = cuts.reduce((sum, cut) => sum + cut, 0);
  let round = 0;
  const plan: PlannedKill[] = [];
  let kinds: CoordinatorKill[] = [];
  for (let i = 0; i < fitting; i++) {
    if (kinds.length === 0) kinds = shuffled(COORDINATOR_KILLS, random);
    round += 2 + Math.floor((slack * cuts[i]!) / total);
    plan.push({ kind: kinds.pop()!, round });
  }
  return plan;
}

/** The stages of a SecAgg round at which a client connection can be cut, named by the coordinator message just received. */
export const CLIENT_KILL_STAGES = ['train', 'keys', 'inbox', 'survivors', 'unmask', 'result'] as const;
export type ClientKillStage = (typeof CLIENT_KILL_STAGES)[number];

/**
 * Whether client `slot` loses its connection on receiving the `stage` message of `round` during
 * coordinator life `life`: true with probability `probability`, decided by the seed and these
 * four numbers alone (not by the order in which frames arrive).
 */
export function cutsConnection(seed: number, probability: number, at: { readonly life: number; readonly slot: number; readonly round: number; readonly stage: ClientKillStage }): boolean {
  let key = seed >>> 0;
  for (const part of [at.life, at.slot, at.round, CLIENT_KILL_STAGES.indexOf(at.stage)]) key = (Math.imul(key ^ part, 0x9e3779b1) + 0x7f4a7c15) >>> 0;
  return createSeededRandom(key).next() < probability;
}
