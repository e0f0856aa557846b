/**
 * Gamma and Dirichlet draws from a seeded generator, for the non-IID partitioners. Written here
 * rather than taken from a library because every draw must come from the run's `SeededRandom`
 * (same seed, same split) and no bundled library samples from an injected generator.
 */
import type { SeededRandom } from '@shoal/protocol';

/**
 * The natural log of a Gamma(shape, 1) draw, by Marsaglia and Tsang ("A simple method for
 * generating gamma variables", ACM TOMS 26(3), 2000).
 *
 * For shape ≥ 1: d = shape − 1/3, c = 1/√(9d); draw x ~ N(0, 1) and v = (1 + c·x)³ until v > 0,
 * then accept d·v with u ~ U(0, 1] when u < 1 − 0.0331·x⁴ (the cheap squeeze) or
 * ln u < x²/2 + d·(1 − v + ln v) (the exact test). About 1.05 tries per draw for any shape.
 *
 * For shape < 1: Gamma(a) = Gamma(a + 1)·U^(1/a) (the paper's boosting step). It is returned as a
 * log, ln Gamma(a + 1) + (ln U)/a, because for the small shapes Dirichlet splits use (α·p_k can be
 * 0.001) U^(1/a) underflows to 0 in doubles; the log never does.
 *
 * @throws RangeError when shape is not a finite positive number (a caller bug).
 */
export function logGamma(shape: number, random: SeededRandom): number {
  if (!(shape > 0) || !Number.isFinite(shape)) throw new RangeError(`logGamma: shape must be a finite positive number, got ${shape}`);
  if (shape < 1) {
    const u = 1 - random.next(); // (0, 1]: the log is finite
    return logGamma(shape + 1, random) + Math.log(u) / shape;
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = random.nextGaussian();
    const root = 1 + c * x;
    if (root <= 0) continue;
    const v = root * root * root;
    const u = 1 - random.next();
    if (u < 1 - 0.0331 * x * x * x * x || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return Math.log(d) + Math.log(v);
  }
}

/** A Gamma(shape, 1) draw (see logGamma); may underflow to 0 for shapes well below 1. */
export function sampleGamma(shape: number, random: SeededRandom): number {
  return Math.exp(logGamma(shape, random));
}

/**
 * A draw from Dirichlet(concentrations): independent Gamma(α_k, 1) draws normalised to sum 1,
 * normalised in log space (subtract the largest log first), so the result always sums to 1 and its
 * largest entry is positive even when every α_k is tiny.
 *
 * @throws RangeError when concentrations is empty or holds a non-positive or non-finite value.
 */
export function sampleDirichlet(concentrations: readonly number[], random: SeededRandom): Float64Array {
  if (concentrations.length === 0) throw new RangeError('sampleDirichlet: needs at least one concentration');
  const logs = concentrations.map((alpha) => logGamma(alpha, random));
  const top = logs.reduce((a, b) => Math.max(a, b), -Infinity);
  const weights = Float64Array.from(logs, (log) => Math.exp(log - top));
  const total = weights.reduce((sum, w) => sum + w, 0);
  return weights.map((w) => w / total);
}
