// Rényi DP of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang, "Rényi
// Differential Privacy of the Sampled Gaussian Mechanism", arXiv:1908.10530, 2019, Sec. 3.3) and
// the conversion of RDP to (ε, δ)-DP. Numerically this follows Opacus `opacus/accountants/
// analysis/rdp.py` and the legacy tensorflow/privacy `rdp_accountant.py`, so the two projects'
// asserted values are reproduced. The mechanism: each client is in a round's cohort independently
// with probability q, and the sum of clipped updates gets N(0, (zC)²) noise; add-or-remove-one
// adjacency.
import { ShoalError } from '@shoal/protocol';
import { logAdd, logErfc, logSub } from './special.js';

/** The fractional series stops once both of a term's parts are below e^-30, as the references do. */
const SERIES_CUTOFF = -30;
/** A safety net: the series converges polynomially, so allow many terms but never loop forever. */
const MAX_SERIES_TERMS = 50_000_000;

/** log A_α for integer α: the exact binomial sum Σ_i C(α,i) q^i (1−q)^(α−i) exp((i²−i)/(2σ²)), in log space. */
function logAInteger(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1MinusQ = Math.log1p(-q);
  const twoVariance = 2 * sigma * sigma;
  let logA = -Infinity;
  let logBinomial = 0; // log C(α, 0)
  for (let i = 0; i <= alpha; i++) {
    logA = logAdd(logA, logBinomial + i * logQ + (alpha - i) * log1MinusQ + (i * i - i) / twoVariance);
    logBinomial += Math.log((alpha - i) / (i + 1));
  }
  return logA;
}

/**
 * log A_α for fractional α: the two-sided series of Mironov et al. (Sec. 3.3), split at
 * z0 = σ² log(1/q − 1) + ½.
 *
 * The generalized binomial coefficients C(α, i) change sign once i > α. Like Opacus and the legacy
 * tensorflow/privacy accountant, terms are added or subtracted by the sign of C(α, i): this is the
 * series' actual value. The newer Google `dp_accounting` library instead adds |C(α, i)| for every
 * term (it computes log C(α, i) with gammaln, which drops the sign), a slightly larger, more
 * conservative value. Integer orders are unaffected; on the Opacus test (z = 1.5, q = 0.04, 2,250
 * steps, δ = 1e-5) this convention gives ε = 7.32911117, dp_accounting 7.3293347.
 */
function logAFractional(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1MinusQ = Math.log1p(-q);
  const twoVariance = 2 * sigma * sigma;
  const sqrt2Sigma = Math.SQRT2 * sigma;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const logHalf = Math.log(0.5);
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  let coefficient = 1; // C(α, 0)
  for (let i = 0; i < MAX_SERIES_TERMS; i++) {
    const logCoefficient = Math.log(Math.abs(coefficient));
    const j = alpha - i;
    const logS0 = logCoefficient + i * logQ + j * log1MinusQ + (i * i - i) / twoVariance + logHalf + logErfc((i - z0) / sqrt2Sigma);
    const logS1 = logCoefficient + j * logQ + i * log1MinusQ + (j * j - j) / twoVariance + logHalf + logErfc((z0 - j) / sqrt2Sigma);
    if (coefficient > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < SERIES_CUTOFF) return logAdd(logA0, logA1);
    coefficient *= (alpha - i) / (i + 1); // C(α, i+1) from C(α, i)
  }
  throw new RangeError(`the RDP series at order ${alpha} (q = ${q}, z = ${sigma}) did not converge in ${MAX_SERIES_TERMS} terms`);
}

/**
 * The RDP at `order` of one step of the Poisson-subsampled Gaussian with sampling rate q and noise
 * multiplier z. Exact cases: q = 0 → 0 (nobody's data is used); z = 0 → ∞ (no noise);
 * q = 1 → α/(2z²) (the plain Gaussian); α = ∞ → ∞.
 */
export function rdpOfStep(q: number, noiseMultiplier: number, order: number): number {
  if (q === 0) return 0;
  if (noiseMultiplier === 0) return Infinity;
  if (q === 1) return order / (2 * noiseMultiplier * noiseMultiplier);
  if (order === Infinity) return Infinity;
  const logA = Number.isInteger(order) ? logAInteger(q, noiseMultiplier, order) : logAFractional(q, noiseMultiplier, order);
  return logA / (order - 1);
}

/** The RDP of `steps` compositions at each order: steps · rdpOfStep (0 steps cost nothing, even at ∞). */
export function computeRdp(q: number, noiseMultiplier: number, steps: number, orders: readonly number[]): number[] {
  return orders.map((order) => (steps === 0 ? 0 : steps * rdpOfStep(q, noiseMultiplier, order)));
}

export interface PrivacySpent {
  /** The smallest ε over the orders (∞ when no order gives a finite bound). */
  readonly epsilon: number;
  /** The order that gives it (the first of equals). */
  readonly order: number;
}

/**
 * (ε, δ) from RDP with the improved conversion of Balle, Barthe, Gaboardi, Hsu, Sato (AISTATS
 * 2020, Thm. 21), as Opacus `get_privacy_spent` and dp_accounting `compute_epsilon` use it:
 * ε_α = rdp_α − (log δ + log α)/(α − 1) + log((α − 1)/α), minimised over the orders.
 * As in dp_accounting: when δ² + expm1(−rdp) > 0 the KL bound δ ≤ √(1 − e^−rdp) already gives
 * ε = 0; orders ≤ 1.01 give no bound (the formula is unstable there); ε is never negative.
 */
export function epsilonFromRdp(orders: ArrayLike<number>, rdp: ArrayLike<number>, delta: number): PrivacySpent {
  if (!(delta > 0 && delta < 1)) throw new ShoalError('INVALID_CONFIG', `delta must be in (0, 1), got ${delta}`);
  if (orders.length !== rdp.length || orders.length === 0) {
    throw new RangeError(`epsilonFromRdp needs one RDP value per order (${orders.length} orders, ${rdp.length} values)`);
  }
  let best: PrivacySpent = { epsilon: Infinity, order: orders[0]! };
  for (let k = 0; k < orders.length; k++) {
    const epsilon = epsilonAtOrder(orders[k]!, rdp[k]!, delta);
    if (epsilon < best.epsilon) best = { epsilon, order: orders[k]! };
  }
  return { epsilon: Math.max(0, best.epsilon), order: best.order };
}

function epsilonAtOrder(order: number, rdp: number, delta: number): number {
  if (Number.isNaN(rdp) || rdp < 0) throw new RangeError(`RDP must be >= 0, got ${rdp} at order ${order}`);
  if (delta * delta + Math.expm1(-rdp) > 0) return 0;
  if (rdp === Infinity || order <= 1.01) return Infinity;
  if (order === Infinity) return rdp; // the correction terms vanish as α → ∞
  return rdp + Math.log1p(-1 / order) - (Math.log(delta) + Math.log(order)) / (order - 1);
}
