import { shuffled, type UniformRandom } from '@shoal/protocol';

/**
 * Cuts a gateway's admitted devices into the round's SecAgg groups: floor(n / groupSize) groups,
 * their sizes as equal as possible (they differ by at most one, so each holds at least
 * `groupSize`), over a shuffled order drawn from `random` (seeded in tests and simulations), so
 * which devices share a group depends on neither admission order nor arrival.
 *
 * `groupSize` undefined (no `secagg.groupSize` configured): one group of every admitted device, as
 * without groups. Fewer than `groupSize` devices: no group. Every device is in at most one group.
 */
export function splitIntoGroups<T>(admitted: readonly T[], groupSize: number | undefined, random: UniformRandom): T[][] {
  if (groupSize !== undefined && !(Number.isInteger(groupSize) && groupSize >= 1)) throw new RangeError(`groupSize must be a positive integer, got ${groupSize}`);
  if (admitted.length === 0) return [];
  if (groupSize === undefined) return [[...admitted]];
  const count = Math.floor(admitted.length / groupSize);
  if (count === 0) return [];
  const order = shuffled(admitted, random);
  // The first `larger` groups take one device more than the rest: n = count · base + larger.
  const base = Math.floor(order.length / count);
  const larger = order.length % count;
  const groups: T[][] = [];
  let start = 0;
  for (let k = 0; k < count; k++) {
    const size = base + (k < larger ? 1 : 0);
    groups.push(order.slice(start, start + size));
    start += size;
  }
  return groups;
}
