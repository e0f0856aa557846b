import { checkClipNorm, requireNumber } from './checks.js';
import type { NoiseSource } from './random.js';

/** The L2 norm of `v`, accumulated in Float64. */
export function l2Norm(v: ArrayLike<number>): number {
  let sumOfSquares = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    sumOfSquares += x * x;
  }
  return Math.sqrt(sumOfSquares);
}

export interface ClipResult {
  /** A new array: `v` scaled to L2 norm ≤ clipNorm, or an unchanged copy when it already was. */
  readonly clipped: Float32Array;
  /** The L2 norm of the input, before clipping. */
  readonly norm: number;
  /** True when the input's norm exceeded clipNorm and it was scaled down. */
  readonly wasClipped: boolean;
}

/**
 * Shrinks the clip scale by 2^-22 (≈ 2.4e-7, relative). Rounding each scaled value to Float32 can
 * grow it by up to 2^-24 relative, so without this margin a clipped vector could come out a few
 * ulps above C, and a guarantee that holds "up to rounding" is no guarantee for DP.
 */
const CLIP_SAFETY = 1 - 2 ** -22;

/**
 * Clips `v` to L2 norm ≤ `clipNorm` (Abadi et al. 2016; McMahan et al. 2018): v · min(1, C/‖v‖).
 * A vector within the norm is copied unchanged; a zero vector stays zero (never NaN). The result's
 * norm is ≤ C even after Float32 rounding. `v` is only read.
 *
 * @param clipNorm C, finite and ≥ 0 (0 clips everything to zero).
 */
export function clipToNorm(v: Float32Array, clipNorm: number): ClipResult {
  checkClipNorm(clipNorm);
  const norm = l2Norm(v);
  if (!Number.isFinite(norm)) throw new RangeError('cannot clip a vector holding NaN or ±Infinity');
  if (norm <= clipNorm) return { clipped: v.slice(), norm, wasClipped: false };
  const scale = (clipNorm / norm) * CLIP_SAFETY;
  const clipped = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) clipped[i] = v[i]! * scale;
  return { clipped, norm, wasClipped: true };
}

/**
 * The coordinator's own clip of a plain (non-SecAgg) update, so a client that skipped or faked its
 * clip step still contributes at most C to the sum: the sensitivity the DP guarantee assumes.
 * Unlike {@link clipToNorm} it does not copy an update that is already within the norm (the common
 * case: honest clients clipped it): `clipped` is then `delta` itself. `delta` is never mutated.
 * The update must already have passed validation (finite values, model length).
 */
export function enforceClip(delta: Float32Array, clipNorm: number): ClipResult {
  checkClipNorm(clipNorm);
  const norm = l2Norm(delta);
  if (norm <= clipNorm) return { clipped: delta, norm, wasClipped: false };
  return clipToNorm(delta, clipNorm);
}

/**
 * `v + N(0, std²)` per coordinate, as a new array (Float32Array in, Float32Array out; Float64Array
 * in, Float64Array out). `v` is only read. std 0 returns a copy.
 */
export function addGaussianNoise<T extends Float32Array | Float64Array>(v: T, std: number, noise: NoiseSource): T {
  requireNumber('noise std', std, 'a finite number >= 0', (s) => Number.isFinite(s) && s >= 0);
  const noisy = v.slice() as T;
  if (std === 0) return noisy;
  for (let i = 0; i < noisy.length; i++) noisy[i] = noisy[i]! + std * noise.gaussian();
  return noisy;
}
