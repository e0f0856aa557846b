import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { float32Ulp, secAggMeanBound } from '../src/index.js';

describe('float32Ulp', () => {
  it('is the gap to the next float32 away from zero: x + ulp is a float32, and no float32 lies in between', () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(-3e38), max: Math.fround(3e38) }), (x) => {
        const ulp = float32Ulp(x);
        const magnitude = Math.abs(x);
        expect(ulp).toBeGreaterThan(0);
        expect(Math.fround(magnitude + ulp)).toBe(magnitude + ulp); // the next float32 exactly
        expect(Math.fround(magnitude + 0.49 * ulp)).toBe(magnitude); // a float32 in between would be nearer
      }),
      { seed: 13 },
    );
  });

  it('matches the binade by hand', () => {
    expect(float32Ulp(1)).toBe(2 ** -23);
    expect(float32Ulp(-1.5)).toBe(2 ** -23);
    expect(float32Ulp(0.75)).toBe(2 ** -24);
    expect(float32Ulp(0)).toBe(2 ** -149); // the smallest subnormal
    expect(float32Ulp(3.4028234663852886e38)).toBe(2 ** 104);
  });
});

describe('secAggMeanBound', () => {
  it('is the decoding bound plus half a float32 ulp, with float64 slack many orders smaller', () => {
    const input = { count: 17, scale: 53_687.09, bound: 2_000, totalWeight: 1_222 };
    const decoding = 17 / 53_687.09 / 1_222;
    const bound = secAggMeanBound(input, -0.1879);
    expect(bound - decoding - 2 ** -26 / 2).toBeGreaterThan(0);
    expect(bound - decoding - 2 ** -26 / 2).toBeLessThan(1e-12);
  });
});
