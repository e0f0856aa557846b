import { expect } from 'vitest';

/** max |actual − expected| relative to max |expected|: how far a kernel's output is from a reference. */
export function relativeError(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let maxDiff = 0;
  let maxAbs = 0;
  expected.forEach((value, index) => {
    maxDiff = Math.max(maxDiff, Math.abs(actual[index]! - value));
    maxAbs = Math.max(maxAbs, Math.abs(value));
  });
  return maxDiff / Math.max(maxAbs, 1e-12);
}
