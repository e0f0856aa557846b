import { createSeededRandom } from '@shoal/protocol';

/**
 * Where DP noise comes from. Every function in `@shoal/dp` that draws noise takes one of these, so
 * tests can inject a deterministic source; production code uses {@link cryptoNoise}.
 */
export interface NoiseSource {
  /** A standard normal draw, N(0, 1). */
  gaussian(): number;
  /** Uniform in [0, 1). */
  uniform(): number;
}

/** 2^-53: turns a 53-bit integer into a double in [0, 1) exactly. */
const TWO_POW_MINUS_53 = 1 / 2 ** 53;
/** Words fetched from the CSPRNG per refill: 64 KiB, the most one getRandomValues call may return. */
const BUFFER_WORDS = 16_384;
/** See the polar method below. */
const MAX_POLAR_TRIES = 200;

/** Fills `out` with cryptographically secure random words. */
export type RandomFill = (out: Uint32Array) => void;

/**
 * Gaussian and uniform draws from a cryptographically secure generator: by default the platform's
 * `globalThis.crypto.getRandomValues` (WebCrypto, present in browsers, workers and Node ≥ 20).
 * Words are fetched in 64 KiB blocks (a million Gaussians take about 160 calls).
 *
 * Uniforms use 53 random bits (every double in [0, 1) with spacing 2^-53); Gaussians use the
 * Marsaglia polar method on pairs of such uniforms.
 *
 * Caveat (Mironov, CCS 2012): a floating-point sampler is not an exact continuous Gaussian, and
 * its rounding can in principle leak a little. Shoal accepts this, as Opacus and TensorFlow Privacy
 * do; a discrete Gaussian sampler is the stronger form.
 *
 * @param fill the random word source; default `globalThis.crypto.getRandomValues`. Inject only
 *   another CSPRNG here.
 */
export function cryptoNoise(fill: RandomFill = defaultFill()): NoiseSource {
  const words = new Uint32Array(BUFFER_WORDS);
  let next = BUFFER_WORDS;
  const word = (): number => {
    if (next === BUFFER_WORDS) {
      fill(words);
      next = 0;
    }
    return words[next++]!;
  };
  // 27 + 26 bits: the top bits of two words make one 53-bit integer.
  return noiseFromUniform(() => ((word() >>> 5) * 67_108_864 + (word() >>> 6)) * TWO_POW_MINUS_53);
}

function defaultFill(): RandomFill {
  const crypto = (globalThis as { crypto?: { getRandomValues?: (array: Uint32Array) => Uint32Array } }).crypto;
  const getRandomValues = crypto?.getRandomValues;
  if (getRandomValues === undefined) {
    throw new Error('globalThis.crypto.getRandomValues is not available: DP noise needs a cryptographic random generator');
  }
  return (out) => void getRandomValues.call(crypto, out);
}

/**
 * A noise source over a uniform generator. Gaussians by the Marsaglia polar method: draw (u, v)
 * uniform in the square (−1, 1)², keep it when 0 < s = u² + v² < 1 (π/4 of the time), and
 * u·√(−2 ln s / s), v·√(−2 ln s / s) are two independent N(0, 1) values; the second is kept for
 * the next call. The same distribution as Box–Muller, without the sine and cosine.
 */
function noiseFromUniform(uniform: () => number): NoiseSource {
  let spare: number | undefined;
  return {
    uniform,
    gaussian() {
      if (spare !== undefined) {
        const value = spare;
        spare = undefined;
        return value;
      }
      let u = 0;
      let v = 0;
      let s = 0;
      // Each try fails with probability 1 − π/4, so 200 failures in a row (p ≈ 1e-134) means the
      // source is broken (say, stuck at a constant): fail loudly rather than hang.
      for (let tries = 0; !(s > 0 && s < 1); tries++) {
        if (tries === MAX_POLAR_TRIES) throw new Error(`noise source rejected ${MAX_POLAR_TRIES} times in a row: its uniforms are not random`);
        u = 2 * uniform() - 1;
        v = 2 * uniform() - 1;
        s = u * u + v * v;
      }
      const factor = Math.sqrt((-2 * Math.log(s)) / s);
      spare = v * factor;
      return u * factor;
    },
  };
}

/**
 * **For tests and reproducible simulations only — never for real privacy.** A deterministic
 * noise source from a seed (xoshiro128** via `@shoal/protocol`'s `createSeededRandom`), so a test
 * can assert exact values. Anyone who knows the seed can subtract the noise, so this gives no
 * privacy at all; nothing in Shoal uses it as a default.
 */
export function seededNoise(seed: number): NoiseSource {
  const random = createSeededRandom(seed);
  // Two draws per uniform, like cryptoNoise, so the statistics match: 27 + 26 bits.
  return noiseFromUniform(() => (Math.floor(random.next() * 2 ** 27) * 67_108_864 + Math.floor(random.next() * 2 ** 26)) * TWO_POW_MINUS_53);
}
