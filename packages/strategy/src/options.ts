// Validation of strategy options, shared by the factories so every entry point (code or config
// file) rejects a bad value with the same INVALID_CONFIG message naming the `strategy.*` key.
import { ShoalError } from '@shoal/protocol';

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function requireNumber(key: string, value: unknown, rule: string, ok: (value: number) => boolean): number {
  if (typeof value !== 'number' || Number.isNaN(value) || !ok(value)) {
    throw new ShoalError('INVALID_CONFIG', `strategy.${key} must be ${rule}, got ${show(value)}`);
  }
  return value;
}

/** Server learning rate η: finite and > 0. */
export function checkServerLearningRate(value: unknown): number {
  return requireNumber('serverLearningRate', value, 'a finite number > 0', (v) => Number.isFinite(v) && v > 0);
}

/** Cap on a client's weight: > 0; Infinity means no cap. */
export function checkMaxWeight(value: unknown): number {
  return requireNumber('maxWeight', value, 'a number > 0', (v) => v > 0);
}

/** Server momentum β: in [0, 1), since β ≥ 1 lets the velocity grow without bound. */
export function checkMomentum(value: unknown): number {
  return requireNumber('momentum', value, 'in [0, 1)', (v) => v >= 0 && v < 1);
}

/** FedOpt decay rate `strategy.beta1` or `strategy.beta2`: in [0, 1), since β ≥ 1 lets a moment grow without bound. */
export function checkDecay(key: 'beta1' | 'beta2', value: unknown): number {
  return requireNumber(key, value, 'in [0, 1)', (v) => v >= 0 && v < 1);
}

/** FedOpt adaptivity τ: finite and > 0, since it keeps m / (√v + τ) finite when v is 0. */
export function checkTau(value: unknown): number {
  return requireNumber('tau', value, 'a finite number > 0', (v) => Number.isFinite(v) && v > 0);
}

/** FedProx proximal µ: finite and ≥ 0 (0 is plain FedAvg). Required, so `undefined` is rejected too. */
export function checkProximalMu(value: unknown): number {
  if (value === undefined) throw new ShoalError('INVALID_CONFIG', 'strategy.proximalMu is required for fedprox');
  return requireNumber('proximalMu', value, 'a finite number >= 0', (v) => Number.isFinite(v) && v >= 0);
}

/** FedTrimmedAvg's β, the fraction trimmed at each end: in [0, 0.5), so at least one value remains. */
export function checkTrimFraction(value: unknown): number {
  return requireNumber('trimFraction', value, 'in [0, 0.5)', (v) => v >= 0 && v < 0.5);
}

/** Krum's f, the Byzantine clients tolerated: an integer >= 0. */
export function checkByzantine(value: unknown): number {
  return requireNumber('byzantine', value, 'an integer >= 0', (v) => Number.isSafeInteger(v) && v >= 0);
}

/** Multi-Krum's m, the updates averaged: an integer >= 1 (1 is Krum). */
export function checkKrumSelect(value: unknown): number {
  return requireNumber('krumSelect', value, 'an integer >= 1', (v) => Number.isSafeInteger(v) && v >= 1);
}

/** q-FedAvg's q: finite and >= 0 (0 is FedAvg with every client weighing 1). */
export function checkQ(value: unknown): number {
  return requireNumber('q', value, 'a finite number >= 0', (v) => Number.isFinite(v) && v >= 0);
}

/**
 * q-FedAvg's Lipschitz estimate L: finite and > 0. Required in code; a config file defaults it to
 * 1 / train.learningRate, so `undefined` is rejected here with that hint.
 */
export function checkLipschitz(value: unknown): number {
  if (value === undefined) throw new ShoalError('INVALID_CONFIG', 'strategy.lipschitz is required for qfedavg built in code (a config file defaults it to 1 / train.learningRate)');
  return requireNumber('lipschitz', value, 'a finite number > 0', (v) => Number.isFinite(v) && v > 0);
}
