import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addGaussianNoise, clipToNorm, enforceClip, l2Norm, seededNoise } from '../src/index.js';

const vector = fc.float32Array({ minLength: 1, maxLength: 64, min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true });
const clipNorm = fc.double({ min: 1e-3, max: 1e3, noNaN: true });

function sampleStd(values: ArrayLike<number>): number {
  let sum = 0;
  let sumOfSquares = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i]!;
    sumOfSquares += values[i]! ** 2;
  }
  const mean = sum / values.length;
  return Math.sqrt(sumOfSquares / values.length - mean * mean);
}

describe('l2Norm', () => {
  it('is the Euclidean length, accumulated in Float64', () => {
    expect(l2Norm(Float32Array.of(3, 4))).toBe(5);
    expect(l2Norm(new Float32Array(0))).toBe(0);
    // 1e6 squares of 1e-3 do not vanish into a Float32 accumulator's rounding.
    expect(l2Norm(new Float32Array(1_000_000).fill(1e-3))).toBeCloseTo(1, 6);
  });
});

describe('clipToNorm', () => {
  it('scales a long vector down to the clip norm, keeping its direction, and reports the original norm', () => {
    const { clipped, norm, wasClipped } = clipToNorm(Float32Array.of(3, 4), 1);
    expect(norm).toBe(5);
    expect(wasClipped).toBe(true);
    expect(clipped[0]).toBeCloseTo(0.6, 6);
    expect(clipped[1]).toBeCloseTo(0.8, 6);
    expect(l2Norm(clipped)).toBeLessThanOrEqual(1);
  });

  it('copies a vector within the norm unchanged (a norm equal to C is not clipped)', () => {
    const v = Float32Array.of(3, 4);
    const result = clipToNorm(v, 5);
    expect(result.wasClipped).toBe(false);
    expect(result.clipped).toEqual(v);
    expect(result.clipped).not.toBe(v);
  });

  it('keeps a zero update zero, never NaN, for any clip norm including 0', () => {
    for (const c of [0, 1e-30, 1, 1e30]) {
      const { clipped, norm, wasClipped } = clipToNorm(new Float32Array(5), c);
      expect(Array.from(clipped)).toEqual([0, 0, 0, 0, 0]);
      expect(norm).toBe(0);
      expect(wasClipped).toBe(false);
    }
    expect(Array.from(clipToNorm(Float32Array.of(1, -2), 0).clipped)).toEqual([0, -0]);
  });

  it('never mutates its input', () => {
    const v = Float32Array.of(30, -40, 0.5);
    const before = v.slice();
    clipToNorm(v, 1);
    clipToNorm(v, 100);
    expect(v).toEqual(before);
  });

  it('property: the clipped norm is <= C even after Float32 rounding, and the result is v scaled by min(1, C/|v|)', () => {
    fc.assert(
      fc.property(vector, clipNorm, (v, c) => {
        const { clipped, norm, wasClipped } = clipToNorm(v, c);
        expect(l2Norm(clipped)).toBeLessThanOrEqual(c);
        expect(wasClipped).toBe(norm > c);
        const scale = Math.min(1, c / norm);
        for (let i = 0; i < v.length; i++) {
          expect(Math.abs(clipped[i]! - v[i]! * scale)).toBeLessThanOrEqual(1e-6 * Math.abs(v[i]! * scale) + 1e-30);
        }
      }),
    );
  });

  it('rejects a bad clip norm with INVALID_CONFIG and a non-finite vector with a RangeError', () => {
    for (const c of [-1, Number.NaN, Infinity]) {
      expect(() => clipToNorm(Float32Array.of(1), c)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    }
    expect(() => clipToNorm(Float32Array.of(1, Number.NaN), 1)).toThrow(RangeError);
  });
});

describe('enforceClip (the coordinator side)', () => {
  it('bounds a malicious oversized update by C', () => {
    const malicious = new Float32Array(1000).fill(1e6);
    const { clipped, norm, wasClipped } = enforceClip(malicious, 2);
    expect(norm).toBeCloseTo(1e6 * Math.sqrt(1000), 0);
    expect(wasClipped).toBe(true);
    expect(l2Norm(clipped)).toBeLessThanOrEqual(2);
    expect(malicious[0]).toBe(1e6);
  });

  it('passes an honest (already clipped) update through without copying it', () => {
    const honest = clipToNorm(Float32Array.of(3, 4, 12), 2).clipped;
    const result = enforceClip(honest, 2);
    expect(result.wasClipped).toBe(false);
    expect(result.clipped).toBe(honest);
  });
});

describe('addGaussianNoise', () => {
  it('adds N(0, std^2) per coordinate into a new array of the same type', () => {
    const v = new Float32Array(100_000).fill(1);
    const noisy = addGaussianNoise(v, 0.5, seededNoise(1));
    expect(noisy).toBeInstanceOf(Float32Array);
    expect(noisy).not.toBe(v);
    expect(v[0]).toBe(1);
    const differences = noisy.map((x, i) => x - v[i]!);
    expect(sampleStd(differences)).toBeGreaterThan(0.5 * 0.98);
    expect(sampleStd(differences)).toBeLessThan(0.5 * 1.02);
    const wide = addGaussianNoise(new Float64Array(10), 1, seededNoise(1));
    expect(wide).toBeInstanceOf(Float64Array);
  });

  it('with std 0 returns an equal copy, and rejects a negative or non-finite std', () => {
    const v = Float64Array.of(1, 2);
    const copy = addGaussianNoise(v, 0, seededNoise(1));
    expect(copy).toEqual(v);
    expect(copy).not.toBe(v);
    expect(() => addGaussianNoise(v, -1, seededNoise(1))).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    expect(() => addGaussianNoise(v, Infinity, seededNoise(1))).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });
});
