/**
 * Partitioners: which example indices each virtual client holds.
 */
import { ShoalError, shuffled } from '@shoal/protocol';
import type { SeededRandom } from '@shoal/protocol';

/**
 * Splits example indices 0..n-1 among numClients clients, IID: shuffle (seeded) then deal
 * equal-sized contiguous chunks (sizes differ by at most 1; the first n mod numClients clients get
 * the extra example). Optional examplesPerClient caps each client's share: a client keeps the first
 * examplesPerClient indices of its chunk, so clients stay disjoint.
 *
 * @param random consumed by the shuffle; pass a fork when the caller needs its stream afterwards.
 * @throws ShoalError INVALID_CONFIG when n is not a non-negative integer, numClients is not an
 *   integer in 1..n, or examplesPerClient is not a positive integer.
 */
export function partitionIid(n: number, numClients: number, random: SeededRandom, examplesPerClient?: number): Int32Array[] {
  if (!Number.isInteger(n) || n < 0) {
    throw new ShoalError('INVALID_CONFIG', `partitionIid: the number of examples must be a non-negative integer, got ${n}`);
  }
  if (!Number.isInteger(numClients) || numClients < 1 || numClients > n) {
    throw new ShoalError('INVALID_CONFIG', `partitionIid: numClients must be an integer in 1..${n} (one example per client at least), got ${numClients}`);
  }
  if (examplesPerClient !== undefined && (!Number.isInteger(examplesPerClient) || examplesPerClient < 1)) {
    throw new ShoalError('INVALID_CONFIG', `partitionIid: examplesPerClient must be a positive integer, got ${examplesPerClient}`);
  }
  const order = shuffled(Array.from({ length: n }, (_, i) => i), random);
  const baseSize = Math.floor(n / numClients);
  const clientsWithExtra = n % numClients;
  const parts: Int32Array[] = [];
  let start = 0;
  for (let client = 0; client < numClients; client++) {
    const size = baseSize + (client < clientsWithExtra ? 1 : 0);
    const kept = Math.min(size, examplesPerClient ?? size);
    parts.push(Int32Array.from(order.slice(start, start + kept)));
    start += size;
  }
  return parts;
}
