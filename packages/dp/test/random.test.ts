import { afterEach, describe, expect, it, vi } from 'vitest';
import { cryptoNoise, seededNoise, type NoiseSource } from '../src/index.js';

/** Sample mean, variance and fourth standardized moment (3 for a Gaussian, 1.8 for a uniform). */
function moments(source: () => number, n: number): { mean: number; variance: number; kurtosis: number } {
  const xs = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += xs[i] = source();
  const mean = sum / n;
  let m2 = 0;
  let m4 = 0;
  for (const x of xs) {
    const d = (x - mean) ** 2;
    m2 += d;
    m4 += d * d;
  }
  const variance = m2 / n;
  return { mean, variance, kurtosis: m4 / n / (variance * variance) };
}

afterEach(() => vi.restoreAllMocks());

describe('cryptoNoise', () => {
  it('draws standard normals: mean 0, variance 1, Gaussian kurtosis (200,000 draws, 5-sigma bounds)', () => {
    const noise = cryptoNoise();
    const { mean, variance, kurtosis } = moments(() => noise.gaussian(), 200_000);
    expect(Math.abs(mean)).toBeLessThan(0.012);
    expect(Math.abs(variance - 1)).toBeLessThan(0.016);
    expect(Math.abs(kurtosis - 3)).toBeLessThan(0.12);
  });

  it('draws uniforms in [0, 1) with mean 1/2 and variance 1/12', () => {
    const noise = cryptoNoise();
    let min = 1;
    let max = 0;
    const { mean, variance } = moments(() => {
      const u = noise.uniform();
      min = Math.min(min, u);
      max = Math.max(max, u);
      return u;
    }, 100_000);
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.002);
  });

  it('takes its bits from globalThis.crypto.getRandomValues in 64 KiB blocks, never from Math.random', () => {
    const mathRandom = vi.spyOn(Math, 'random');
    const getRandomValues = vi.spyOn(globalThis.crypto, 'getRandomValues');
    const noise = cryptoNoise();
    for (let i = 0; i < 10_000; i++) noise.gaussian();
    // 10,000 Gaussians = 5,000 accepted polar pairs ≈ 6,366 tries (acceptance π/4) × 4 words ≈ 25,500 words: two 16,384-word blocks.
    expect(getRandomValues).toHaveBeenCalledTimes(2);
    expect((getRandomValues.mock.calls[0]![0] as Uint32Array).byteLength).toBe(65_536);
    expect(mathRandom).not.toHaveBeenCalled();
  });

  it('builds each uniform from the top 27 and 26 bits of two words, exactly', () => {
    const fill = (out: Uint32Array) => {
      for (let i = 0; i < out.length; i += 2) {
        out[i] = 0xffff_ffff;
        out[i + 1] = 0x8000_0000;
      }
    };
    const u = cryptoNoise(fill).uniform();
    expect(u).toBe(((2 ** 27 - 1) * 2 ** 26 + 2 ** 25) / 2 ** 53);
  });

  it('fails loudly instead of hanging when its words are stuck at a constant', () => {
    const noise = cryptoNoise((out) => out.fill(0));
    expect(noise.uniform()).toBe(0);
    expect(() => noise.gaussian()).toThrow(/not random/);
  });

  it('turns a known word stream into the polar-method pair it defines', () => {
    // Words giving u1 = 0.75, u2 = 0.5 → (u, v) = (0.5, 0): s = 0.25, factor = √(−2 ln 0.25 / 0.25).
    const words = [0.75 * 2 ** 32, 0, 0.5 * 2 ** 32, 0];
    const noise = cryptoNoise((out) => out.forEach((_, i) => (out[i] = words[i % 4]!)));
    expect(noise.gaussian()).toBeCloseTo(0.5 * Math.sqrt((-2 * Math.log(0.25)) / 0.25), 12);
    expect(Math.abs(noise.gaussian())).toBe(0);
  });
});

describe('seededNoise (tests only)', () => {
  it('repeats its sequence for a seed and differs across seeds', () => {
    const draw = (noise: NoiseSource) => Array.from({ length: 8 }, () => noise.gaussian());
    expect(draw(seededNoise(7))).toEqual(draw(seededNoise(7)));
    expect(draw(seededNoise(7))).not.toEqual(draw(seededNoise(8)));
  });

  it('has the statistics of a standard normal', () => {
    const noise = seededNoise(42);
    const { mean, variance, kurtosis } = moments(() => noise.gaussian(), 200_000);
    expect(Math.abs(mean)).toBeLessThan(0.012);
    expect(Math.abs(variance - 1)).toBeLessThan(0.016);
    expect(Math.abs(kurtosis - 3)).toBeLessThan(0.12);
  });
});
