import { describe, expect, it } from 'vitest';
import { logAdd, logErfc, logSub } from '../src/special.js';

describe('logErfc', () => {
  // Reference values: mpmath.log(mpmath.erfc(x)) at 40 significant digits.
  const reference: readonly (readonly [number, number])[] = [
    [-2, 0.6908055736465876567632438279326145203571],
    [-0.5, 0.4190391477755595803633712344360302258981],
    [0.7, -1.132586513514341234091448840253012177868],
    [1.22, -2.471404783919748994161203428550242321098], // last point of the series branch
    [1.23, -2.501647244406423021307403325142566191413], // first point of the continued fraction
    [1.3, -2.718220922090384481139451200559367134778],
    [10, -102.8798890248448885748047871396365980054],
    [26, -679.831199763194230262387142358051123785],
    [40, -1604.261556653273555659813563666431251894], // erfc(40) ≈ 1e-697 underflows a double; its log does not
  ];

  it.each(reference)('log erfc(%s) matches mpmath to 1e-14 relative', (x, expected) => {
    expect(Math.abs(logErfc(x) - expected) / Math.abs(expected)).toBeLessThan(1e-14);
  });

  it('handles 0, the infinities and NaN', () => {
    expect(Math.abs(logErfc(0))).toBe(0);
    expect(logErfc(Infinity)).toBe(-Infinity);
    expect(logErfc(-Infinity)).toBeCloseTo(Math.LN2, 15);
    expect(logErfc(Number.NaN)).toBeNaN();
  });
});

describe('log-space addition and subtraction', () => {
  it('adds and subtracts exactly where a term is log 0', () => {
    expect(logAdd(-Infinity, 2)).toBe(2);
    expect(logAdd(Math.log(2), Math.log(3))).toBeCloseTo(Math.log(5), 15);
    expect(logAdd(1000, 1000)).toBeCloseTo(1000 + Math.LN2, 12);
    expect(logSub(Math.log(5), Math.log(3))).toBeCloseTo(Math.log(2), 15);
    expect(logSub(4, -Infinity)).toBe(4);
    expect(logSub(4, 4)).toBe(-Infinity);
    expect(logSub(1000, 1)).toBe(1000);
    expect(() => logSub(1, 2)).toThrow(RangeError);
  });
});
