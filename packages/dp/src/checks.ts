// Validation shared by the DP functions: every bad parameter becomes ShoalError('INVALID_CONFIG')
// naming the parameter, because these values come from configs, CLI flags and checkpoints.
import { ShoalError } from '@shoal/protocol';

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** Returns `value` when it is a number (not NaN) passing `ok`; otherwise throws INVALID_CONFIG naming `name`. */
export function requireNumber(name: string, value: unknown, rule: string, ok: (value: number) => boolean): number {
  if (typeof value !== 'number' || Number.isNaN(value) || !ok(value)) {
    throw new ShoalError('INVALID_CONFIG', `${name} must be ${rule}, got ${show(value)}`);
  }
  return value;
}

/** Noise multiplier z: the noise std divided by the sensitivity (the clip norm). Finite, ≥ 0. */
export function checkNoiseMultiplier(value: unknown, name = 'noiseMultiplier'): number {
  return requireNumber(name, value, 'a finite number >= 0', (v) => Number.isFinite(v) && v >= 0);
}

/** Clip norm C: finite and ≥ 0 (0 clips every update to zero). */
export function checkClipNorm(value: unknown, name = 'clipNorm'): number {
  return requireNumber(name, value, 'a finite number >= 0', (v) => Number.isFinite(v) && v >= 0);
}

/** A finite number > 0 (expected cohort size, target ε, learning rates…). */
export function checkPositive(value: unknown, name: string): number {
  return requireNumber(name, value, 'a finite number > 0', (v) => Number.isFinite(v) && v > 0);
}

/** Sampling rate q ∈ [0, 1]. */
export function checkSampleRate(value: unknown, name = 'sampleRate'): number {
  return requireNumber(name, value, 'in [0, 1]', (v) => v >= 0 && v <= 1);
}

/** δ ∈ (0, 1). */
export function checkDelta(value: unknown, name = 'delta'): number {
  return requireNumber(name, value, 'in (0, 1)', (v) => v > 0 && v < 1);
}

/** A non-negative integer count (steps, rounds). */
export function checkCount(value: unknown, name: string): number {
  return requireNumber(name, value, 'an integer >= 0', (v) => Number.isSafeInteger(v) && v >= 0);
}
