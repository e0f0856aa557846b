// Federated evaluation in a simulation: each virtual client keeps part of its share of the train
// split as held-out examples it never trains on, and evaluates the global model on them.
import { createSeededRandom, shuffled } from '@shoal/protocol';

/** `simulation.heldOut`'s default: a fifth of each client's examples. */
export const HELD_OUT_DEFAULT = 0.2;

/**
 * Splits one client's example indices into the ones it trains on and the ones it holds out:
 * ⌊fraction · n⌋ drawn with `seed` (a client's own seed, so the split does not depend on which
 * process hosts it), at least one of each when n ≥ 2; with one example nothing is held out.
 * Both parts keep the indices' original order. Pure.
 */
export function splitHeldOut(indices: Int32Array, fraction: number, seed: number): { train: Int32Array; heldOut: Int32Array } {
  if (!(fraction > 0 && fraction < 1)) throw new RangeError(`held-out fraction must be in (0, 1), got ${fraction}`);
  const n = indices.length;
  const count = n < 2 ? 0 : Math.min(n - 1, Math.max(1, Math.floor(fraction * n)));
  const chosen = new Set(shuffled([...Array(n).keys()], createSeededRandom(seed)).slice(0, count));
  const train: number[] = [];
  const heldOut: number[] = [];
  for (let i = 0; i < n; i++) (chosen.has(i) ? heldOut : train).push(indices[i]!);
  return { train: Int32Array.from(train), heldOut: Int32Array.from(heldOut) };
}
