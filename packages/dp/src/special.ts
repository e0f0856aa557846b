// Log-space arithmetic and log(erfc) for the RDP accountant. JavaScript has no erf, and the
// accountant needs log(erfc(x)) far into the tail (erfc(40) ≈ 1e-697 underflows a double), so it
// is computed in log space from the incomplete gamma function: erfc(x) = Q(1/2, x²).

/** log(e^a + e^b), exact where either is −∞ (log 0). */
export function logAdd(a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (lo === -Infinity) return hi;
  return hi + Math.log1p(Math.exp(lo - hi));
}

/** log(e^a − e^b) for a ≥ b; −∞ when they are equal. Throws a RangeError when a < b. */
export function logSub(a: number, b: number): number {
  if (a < b) throw new RangeError(`logSub: the result would be negative (log ${a} < log ${b})`);
  if (b === -Infinity) return a;
  if (a === b) return -Infinity;
  const diff = a - b;
  // expm1 overflows past ~709: then e^a − e^b = e^a to double precision.
  return diff > 700 ? a : Math.log(Math.expm1(diff)) + b;
}

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);
const SQRT_PI = Math.sqrt(Math.PI);
const EPSILON = Number.EPSILON;
const TINY = 1e-300;
const MAX_ITERATIONS = 10_000;

/**
 * erf(x) for x² < 1.5 by the series of the lower incomplete gamma function P(1/2, x²)
 * (Numerical Recipes §6.2, `gser`): erf(x) = x·e^{−x²}/√π · Σ_n (x²)^n / (½·(3/2)···(½+n)).
 */
function erfSeries(x: number): number {
  const y = x * x;
  let denominator = 0.5;
  let term = 1 / denominator;
  let sum = term;
  for (let n = 0; n < MAX_ITERATIONS; n++) {
    denominator += 1;
    term *= y / denominator;
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * EPSILON) break;
  }
  return (sum * x * Math.exp(-y)) / SQRT_PI;
}

/**
 * log(erfc(x)) for x² ≥ 1.5 by the continued fraction of the upper incomplete gamma function
 * Q(1/2, x²) (Numerical Recipes §6.2, `gcf`, modified Lentz), kept in log space:
 * log erfc(x) = −x² + log x − log √π + log(CF).
 */
function logErfcContinuedFraction(x: number): number {
  const y = x * x;
  const a = 0.5;
  let b = y + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < MAX_ITERATIONS; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPSILON) break;
  }
  return -y + Math.log(x) - LOG_SQRT_PI + Math.log(h);
}

/** erfc(x) for x ≥ 0 (underflows to 0 past x ≈ 27, which is fine where it is used). */
function erfcNonNegative(x: number): number {
  if (x === Infinity) return 0;
  return x * x < 1.5 ? 1 - erfSeries(x) : Math.exp(logErfcContinuedFraction(x));
}

/**
 * log(erfc(x)) for any x, accurate to about 1e-15 relative (the series loses at most one digit to
 * cancellation near x ≈ 1.22, where erfc ≈ 0.08). Plays the part of `log(2) + log_ndtr(−x√2)` in
 * tensorflow/privacy and Opacus.
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x === Infinity) return -Infinity;
  if (x < 0) return Math.log(2 - erfcNonNegative(-x));
  return x * x < 1.5 ? Math.log1p(-erfSeries(x)) : logErfcContinuedFraction(x);
}
