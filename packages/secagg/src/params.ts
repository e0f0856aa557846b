import { ShoalError } from '@shoal/protocol';
import type { SecAggRoundConfig } from '@shoal/protocol';
import { SECAGG_DEFAULTS, secAggNeighbourhood } from './config.js';
import { checkEncoding, chooseScale } from './encoding.js';

/** Everything both sides of one SecAgg round agree on. */
export interface SecAggParams {
  readonly mode: 'secagg' | 'secagg+';
  /** Clients selected for the round (indices 1..cohortSize). */
  readonly cohortSize: number;
  /** Parameters of the model; masked inputs have numParams + 1 words (the weight last). */
  readonly numParams: number;
  /** t: shares needed to reconstruct a secret, and the fewest clients a round can finish with. */
  readonly threshold: number;
  /** k: neighbourhood size counting the client itself; the cohort size for full SecAgg. */
  readonly degree: number;
  /** Weighted values are clamped to [−bound, bound]. */
  readonly bound: number;
  /** Fixed-point steps per unit (see encoding.ts). */
  readonly scale: number;
  /** The largest weight one client may send. */
  readonly maxWeight: number;
}

export interface DeriveSecAggParamsOptions {
  readonly mode: 'secagg' | 'secagg+';
  readonly cohortSize: number;
  readonly numParams: number;
  /**
   * Fraction of a neighbourhood that may drop out after sharing and the round still finishes.
   * Must be < 0.5 (see `checkMaxDropout`). Default 0.3 (`SECAGG_DEFAULTS`).
   */
  readonly maxDropout?: number;
  /** t; derived when absent. */
  readonly threshold?: number;
  /** k; derived when absent (the cohort size for full SecAgg). */
  readonly degree?: number;
  readonly bound: number;
  readonly maxWeight: number;
  /** Bits kept free in the 32-bit sums (see `chooseScale`). Default 0. */
  readonly headroomBits?: number;
}

/**
 * Derives (or checks) k and t (`secAggNeighbourhood`) and chooses the encoding scale for a round
 * (`chooseScale` for cohortSize clients). Throws ShoalError INVALID_CONFIG, naming the broken rule,
 * when given or derived values break a rule of `secAggNeighbourhood` or the encoding cannot fit.
 */
export function deriveSecAggParams(options: DeriveSecAggParamsOptions): SecAggParams {
  const { mode, cohortSize: n, numParams, maxDropout = SECAGG_DEFAULTS.maxDropout, bound, maxWeight, headroomBits = 0 } = options;
  if (mode !== 'secagg' && mode !== 'secagg+') invalid(`secagg.mode must be 'secagg' or 'secagg+', got ${String(mode)}`);
  if (!Number.isSafeInteger(numParams) || numParams < 1) invalid(`numParams must be an integer ≥ 1, got ${numParams}`);
  const { degree, threshold } = secAggNeighbourhood({ mode, maxDropout, threshold: options.threshold, degree: options.degree }, { size: n, name: 'the cohort' })!;
  const scale = chooseScale({ bound, maxClients: n, maxWeight, headroomBits });
  return { mode, cohortSize: n, numParams, threshold, degree, bound, scale, maxWeight };
}

/**
 * Re-checks params built elsewhere (e.g. restored from a file): the structural rules of
 * `deriveSecAggParams` (without maxDropout) and that the encoding cannot wrap. Throws INVALID_CONFIG.
 */
export function checkSecAggParams(params: SecAggParams): void {
  deriveSecAggParams({ ...params, maxDropout: 0, threshold: params.threshold, degree: params.degree });
  checkEncoding(params, params.cohortSize);
}

/** The `train.secagg` config of one client. */
export function roundConfig(params: SecAggParams, index: number, sessionId: string): SecAggRoundConfig {
  const { mode, threshold, degree, bound, scale, maxWeight } = params;
  return { mode, index, threshold, degree, bound, scale, maxWeight, sessionId };
}

function invalid(message: string): never {
  throw new ShoalError('INVALID_CONFIG', message);
}
