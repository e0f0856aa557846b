// The privacy–utility frontier of a sweep: the runs no other run beats on both privacy (lower ε)
// and utility (higher final accuracy). Pure.

/** A run placed by what it spent and what it reached. */
export interface PrivacyUtilityPoint {
  readonly epsilon: number;
  readonly accuracy: number;
}

/** True when `a` is at least as private and as accurate as `b`, and strictly better in one. */
export function dominates(a: PrivacyUtilityPoint, b: PrivacyUtilityPoint): boolean {
  return a.epsilon <= b.epsilon && a.accuracy >= b.accuracy && (a.epsilon < b.epsilon || a.accuracy > b.accuracy);
}

/**
 * The Pareto-optimal points: those no other point dominates (two runs with the same ε and accuracy
 * are both on it), ordered by ε and then accuracy, the order a line through them takes. Sweeps are
 * small (a grid of tens of runs), so the plain all-pairs check is fast enough and obviously right.
 */
export function paretoFrontier<T extends PrivacyUtilityPoint>(points: readonly T[]): T[] {
  return points.filter((point) => !points.some((other) => dominates(other, point))).sort((a, b) => a.epsilon - b.epsilon || a.accuracy - b.accuracy);
}
