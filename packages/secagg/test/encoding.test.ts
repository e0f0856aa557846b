import fc from 'fast-check';
import { ShoalError } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { SecAggError, checkEncoding, chooseScale, decodeSum, encodeUpdate, maxEncoded } from '../src/index.js';
import { seededRandomBytes } from './harness.js';

const random = seededRandomBytes('encoding');

/** Random bytes that make every rounding draw u = 1 − 2^−32, the largest it can be. */
const maxUniform = (n: number) => new Uint8Array(n).fill(0xff);

describe('encodeUpdate', () => {
  const params = { bound: 2, scale: 1000, maxWeight: 10 };

  it('rounds stochastically without bias: the mean of many encodings is (v + bound)·scale', () => {
    const value = 0.123_456_7; // (v + 2)·1000 = 2123.4567: between two levels
    const draws = 20_000;
    const values = new Float32Array(draws).fill(value);
    const encoded = encodeUpdate(values, 1, params, random);
    const levels = new Set(Array.from(encoded.subarray(0, draws)));
    expect(levels).toEqual(new Set([2123, 2124]));
    const mean = encoded.subarray(0, draws).reduce((a, b) => a + b, 0) / draws;
    const exact = (Math.fround(value) + params.bound) * params.scale;
    // Bernoulli(0.4567) per draw: standard error of the mean ≈ 0.0035; allow 5 of them.
    expect(Math.abs(mean - exact)).toBeLessThan(5 * Math.sqrt(0.4567 * 0.5433 / draws));
  });

  it('clamps to ±bound and puts the integer weight last', () => {
    const encoded = encodeUpdate(Float32Array.of(-50, -2, 0, 2, 50), 7, params, random);
    expect(Array.from(encoded)).toEqual([0, 0, 2000, 4000, 4000, 7]);
  });

  it('never exceeds ceil(2·bound·scale), even with the largest rounding draw', () => {
    const odd = { bound: 1, scale: 1.25, maxWeight: 1 }; // 2·bound·scale = 2.5
    expect(maxEncoded(odd)).toBe(3);
    const encoded = encodeUpdate(Float32Array.of(1, 0.99, -1), 1, odd, maxUniform);
    expect(Array.from(encoded)).toEqual([3, 3, 0, 1]);
  });

  it('refuses non-finite values and out-of-range weights', () => {
    expect(() => encodeUpdate(Float32Array.of(0, NaN), 1, params, random)).toThrow(/values\[1\] is NaN/);
    expect(() => encodeUpdate(Float32Array.of(Infinity), 1, params, random)).toThrow(SecAggError);
    expect(() => encodeUpdate(Float32Array.of(0), 11, params, random)).toThrow(/weight must be an integer in 0..10/);
    expect(() => encodeUpdate(Float32Array.of(0), 1.5, params, random)).toThrow(SecAggError);
  });

  it('asks randomBytes for at most 65,536 bytes at a time (crypto.getRandomValues limit)', () => {
    const requests: number[] = [];
    encodeUpdate(new Float32Array(40_000), 1, params, (n) => {
      requests.push(n);
      return random(n);
    });
    expect(Math.max(...requests)).toBeLessThanOrEqual(65_536);
    expect(requests.reduce((a, b) => a + b, 0)).toBe(160_000);
  });
});

describe('chooseScale', () => {
  it('gives the largest scale with maxClients·(2·bound·scale + 1) < 2^32', () => {
    const scale = chooseScale({ bound: 10, maxClients: 1000, maxWeight: 1000 });
    expect(1000 * (2 * 10 * scale + 1)).toBeLessThan(2 ** 32);
    expect(1000 * (2 * 10 * scale * 1.000_001 + 1)).toBeGreaterThan(2 ** 32 - 1); // no room left
  });

  it('leaves no wrap at the bound: maxClients inputs all at +bound with the largest rounding draws sum below 2^32', () => {
    for (const [bound, maxClients, headroomBits] of [[1, 1, 0], [0.5, 1000, 0], [100, 5000, 0], [3, 777, 4], [1, 2 ** 20, 0]] as const) {
      const maxWeight = 1;
      const scale = chooseScale({ bound, maxClients, maxWeight, headroomBits });
      const top = encodeUpdate(Float32Array.of(bound, bound * 0.999_999), 1, { bound, scale, maxWeight }, maxUniform);
      expect(maxClients * Math.max(top[0]!, top[1]!)).toBeLessThan(2 ** (32 - headroomBits));
      expect(() => checkEncoding({ bound, scale, maxWeight }, maxClients, headroomBits)).not.toThrow();
    }
  });

  it('refuses impossible configurations, naming the limit they break', () => {
    const attempt = (options: Parameters<typeof chooseScale>[0]) => () => chooseScale(options);
    expect(attempt({ bound: 1, maxClients: 2 ** 31, maxWeight: 1 })).toThrow(/cohort of 2147483648 clients is too large for 32-bit sums: each client would get fewer than 2 encoding levels \(at most 2147483647 clients\)/);
    expect(attempt({ bound: 1, maxClients: 2 ** 19, maxWeight: 1, headroomBits: 12 })).toThrow(/too large for 32-bit sums with 12 headroom bits/);
    expect(attempt({ bound: 1, maxClients: 1000, maxWeight: 5_000_000 })).toThrow(/maxWeight 5000000 × 1000 clients = 5000000000 ≥ 2\^32: the summed weight would wrap; lower maxWeight to at most 4294967/);
    expect(attempt({ bound: 0, maxClients: 10, maxWeight: 1 })).toThrow(/bound must be a finite number > 0/);
    expect(attempt({ bound: 1, maxClients: 0, maxWeight: 1 })).toThrow(/maxClients must be an integer ≥ 1/);
    expect(attempt({ bound: 1, maxClients: 10, maxWeight: 0 })).toThrow(/maxWeight must be an integer ≥ 1/);
    expect(attempt({ bound: 1, maxClients: 10, maxWeight: 1, headroomBits: 31 })).toThrow(/headroomBits must be an integer in 0..30/);
    try {
      chooseScale({ bound: 1, maxClients: 2 ** 31, maxWeight: 1 });
    } catch (error) {
      expect(error).toBeInstanceOf(ShoalError);
      expect((error as ShoalError).code).toBe('INVALID_CONFIG');
    }
  });

  it('checkEncoding refuses a scale that could wrap, and says which scale would fit', () => {
    expect(() => checkEncoding({ bound: 1, scale: 2 ** 30, maxWeight: 1 }, 4)).toThrow(/lets 4 clients' sums reach 8589934592 ≥ 2\^32: lower the scale to at most/);
    expect(() => checkEncoding({ bound: 1, scale: NaN, maxWeight: 1 }, 4)).toThrow(/scale must be a finite number > 0/);
  });
});

describe('decodeSum', () => {
  it('property: for unclamped inputs, |decoded − Σv| < count/scale per coordinate, and the weights add up', () => {
    const scenario = fc.record({
      bound: fc.double({ min: 1e-3, max: 1e3, noNaN: true }),
      clients: fc.integer({ min: 1, max: 40 }),
      maxClients: fc.integer({ min: 40, max: 100_000 }),
      fractions: fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 3, maxLength: 3 }),
      seed: fc.nat(),
    });
    fc.assert(
      fc.property(scenario, ({ bound, clients, maxClients, fractions, seed }) => {
        const maxWeight = 100;
        const scale = chooseScale({ bound, maxClients, maxWeight });
        const params = { bound, scale, maxWeight };
        const draws = seededRandomBytes(seed);
        const sum = new Uint32Array(fractions.length + 1);
        const exact = new Float64Array(fractions.length);
        let weight = 0;
        for (let c = 0; c < clients; c++) {
          const values = Float32Array.from(fractions, (f, i) => f * bound * ((c + i) % 3 === 0 ? 1 : 0.37));
          const encoded = encodeUpdate(values, c % maxWeight, params, draws);
          for (let i = 0; i < encoded.length; i++) sum[i] = sum[i]! + encoded[i]!;
          // float32 rounding can put f·bound a hair beyond ±bound, where the encoder clamps.
          values.forEach((v, i) => (exact[i] = exact[i]! + Math.min(bound, Math.max(-bound, v))));
          weight += c % maxWeight;
        }
        const decoded = decodeSum(sum, clients, params);
        expect(decoded.totalWeight).toBe(weight);
        for (let i = 0; i < exact.length; i++) {
          // The bound is exact in real arithmetic; float64 decoding adds a few ulps of the offset count·bound.
          expect(Math.abs(decoded.sum[i]! - exact[i]!)).toBeLessThanOrEqual(clients / scale + 1e-12 * clients * bound);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('decodes the all-zero-input sum of n clients to zero', () => {
    const params = { bound: 3, scale: 1000, maxWeight: 1 };
    const one = encodeUpdate(new Float32Array(4), 1, params, random);
    const sum = one.map((word) => word * 5);
    expect(Array.from(decodeSum(sum, 5, params).sum)).toEqual([0, 0, 0, 0]);
    expect(() => decodeSum(new Uint32Array(0), 1, params)).toThrow(RangeError);
    expect(() => decodeSum(sum, -1, params)).toThrow(RangeError);
  });
});
