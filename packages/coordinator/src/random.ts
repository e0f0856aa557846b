// Where a coordinator's draws come from (cohort sampling, the SecAgg+ ring order). Without a seed,
// from the operating system's CSPRNG: a predictable cohort or ring would let Sybil clients plan to
// be selected together, or to sit next to a target, and a restarted coordinator would repeat its
// draws. With a seed (simulations, reproducible tests), from xoshiro, derived per round.
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { createSeededRandom } from '@shoal/protocol';
import type { Random } from './ports.js';

/** `randomInt` takes ranges below 2^48 only. */
const MAX_BOUND = 2 ** 48;

/** Uniform draws from node:crypto; `nextInt` is unbiased (rejection sampling in `randomInt`). */
export const cryptoRandom: Random = {
  next() {
    // 53 random bits: every double in [0, 1) on the 2^-53 grid is equally likely.
    const bytes = randomBytes(8);
    return ((bytes.readUInt32BE(0) >>> 11) * 0x1_0000_0000 + bytes.readUInt32BE(4)) / 2 ** 53;
  },
  nextInt(bound) {
    if (!Number.isInteger(bound) || bound <= 0 || bound >= MAX_BOUND) throw new RangeError(`nextInt bound must be an integer in [1, 2^48), got ${bound}`);
    return randomInt(bound);
  },
};

/**
 * The seeded generator of one round: xoshiro seeded with a hash of (seed, round), so a coordinator
 * resumed from a checkpoint continues the run's draws at its next round instead of replaying the
 * draws of round 1, and a round's draws do not depend on how many the earlier rounds made.
 */
export function seededRoundRandom(seed: number, round: number): Random {
  const digest = createHash('sha256').update(`shoal-round-random:${seed}:${round}`).digest();
  return createSeededRandom(digest.readUInt32BE(0));
}

/** The generator of a round: seeded when the coordinator was given a seed, the CSPRNG otherwise. */
export function roundRandom(seed: number | undefined, round: number): Random {
  return seed === undefined ? cryptoRandom : seededRoundRandom(seed, round);
}
