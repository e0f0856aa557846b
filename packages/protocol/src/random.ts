/**
 * Uniform draws, whatever their source: a `SeededRandom` in simulations and tests, a CSPRNG in a
 * production coordinator (so cohorts and the SecAgg+ ring cannot be predicted).
 */
export interface UniformRandom {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, bound). */
  nextInt(bound: number): number;
}

/**
 * A seeded, reproducible generator for *non-secret* choices: cohort sampling in simulations, data
 * partitioning, weight initialisation, simulated faults. Never use it for keys, masks or DP noise,
 * which need a CSPRNG.
 */
export interface SeededRandom extends UniformRandom {
  /** Standard normal (Box–Muller). */
  nextGaussian(): number;
  /** A new independent generator derived from this one, so sub-tasks do not share a stream. */
  fork(): SeededRandom;
}

/** xoshiro128** seeded through splitmix32: fast, 2^128 − 1 period, good statistical quality. */
export function createSeededRandom(seed: number): SeededRandom {
  let splitState = seed >>> 0;
  const splitmix = (): number => {
    splitState = (splitState + 0x9e3779b9) >>> 0;
    let z = splitState;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let s0 = splitmix();
  let s1 = splitmix();
  let s2 = splitmix();
  let s3 = splitmix();
  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };
  const next = (): number => nextUint32() / 0x1_0000_0000;
  return {
    next,
    nextInt(bound) {
      if (!Number.isInteger(bound) || bound <= 0) throw new RangeError(`nextInt bound must be a positive integer, got ${bound}`);
      return Math.floor(next() * bound);
    },
    nextGaussian() {
      const u = 1 - next(); // in (0, 1], so the log is finite
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
    },
    fork() {
      return createSeededRandom(nextUint32());
    },
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Fisher–Yates shuffle of a copy of `items`. */
export function shuffled<T>(items: readonly T[], random: UniformRandom): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = random.nextInt(i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}
