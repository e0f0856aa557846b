import { l2Norm } from '@shoal/dp';

/** `maxUpdateNorm: 'auto'`: at most this multiple of the previous round's median update norm… */
export const AUTO_MEDIAN_FACTOR = 2;
/** …and at most this multiple of the global model's L2 norm (the whole bound in a first round)… */
export const AUTO_MODEL_FACTOR = 1;
/** …which counts as at least this, so a model that starts at (or near) zero can still move. */
export const AUTO_MODEL_FLOOR = 1;

/**
 * The bound on one plain update's L2 norm in a round that starts from `weights`. `auto`:
 * min(max(1, ‖weights‖), 2 · the median norm of the previous round's updates), or max(1, ‖weights‖)
 * with no previous round (the first, or the first after a restart). The median follows the honest
 * clients unless most of a cohort is hostile, so an attacker moves the mean by at most two typical
 * honest updates times its share of the weight; the model term caps what a hostile majority could
 * make of the median. Measured honest updates stay below 0.45 · ‖weights‖ and 1.3 · the previous
 * median (docs/reliability.md).
 */
export function maxUpdateNormFor(setting: number | 'auto', weights: Float32Array, previousMedian?: number): number {
  if (setting !== 'auto') return setting;
  const fromModel = AUTO_MODEL_FACTOR * Math.max(AUTO_MODEL_FLOOR, l2Norm(weights));
  return previousMedian === undefined ? fromModel : Math.min(fromModel, AUTO_MEDIAN_FACTOR * previousMedian);
}
