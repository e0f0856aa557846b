import { SecAggError } from './errors.js';

/** A uniformly random permutation of `items` (a copy); injected so tests and simulations are reproducible. */
export type Shuffle = <T>(items: readonly T[]) => T[];

/**
 * Who shares secrets with and masks against whom. Full SecAgg (Bonawitz et al. 2017): everyone
 * (`degree` = cohort size). SecAgg+ (Bell et al. 2020): a Harary graph H(degree, n), as Google's
 * FCP builds it (fcp/secagg/server/secret_sharing_harary_graph.h): the indices are placed on a
 * ring in a uniformly random order and each is joined to the (degree − 1)/2 nearest on either
 * side, so every client has exactly degree − 1 neighbours and `degree` counts the client itself.
 *
 * Returns each index's neighbours (never itself), ascending. The graph is symmetric.
 */
export function neighbourGraph(indices: readonly number[], degree: number, shuffle: Shuffle): Map<number, number[]> {
  checkIndices(indices);
  const n = indices.length;
  if (!Number.isInteger(degree) || degree < 1 || degree > n) {
    throw new SecAggError('INVALID_INPUT', `degree must be an integer in 1..${n} (the cohort size), got ${degree}`);
  }
  const graph = new Map<number, number[]>();
  if (degree === n) {
    for (const index of indices) graph.set(index, indices.filter((other) => other !== index).sort(ascending));
    return graph;
  }
  if (degree % 2 === 0) throw new SecAggError('INVALID_INPUT', `a SecAgg+ degree below the cohort size must be odd, got ${degree}`);
  const sorted = [...indices].sort(ascending);
  const ring = shuffle([...sorted]);
  if (ring.length !== n || [...ring].sort(ascending).some((index, i) => index !== sorted[i])) {
    throw new SecAggError('INVALID_INPUT', 'shuffle must return a permutation of its input');
  }
  const reach = (degree - 1) / 2;
  for (const [position, index] of ring.entries()) {
    const neighbours: number[] = [];
    for (let step = 1; step <= reach; step++) neighbours.push(ring[(position + step) % n]!, ring[(position - step + n) % n]!);
    graph.set(index, neighbours.sort(ascending));
  }
  return graph;
}

export function checkIndices(indices: readonly number[]): void {
  const seen = new Set<number>();
  for (const index of indices) {
    if (!Number.isSafeInteger(index) || index < 1) throw new SecAggError('INVALID_INPUT', `client index must be a positive integer, got ${index}`);
    if (seen.has(index)) throw new SecAggError('INVALID_INPUT', `client index ${index} appears twice`);
    seen.add(index);
  }
}

export function ascending(a: number, b: number): number {
  return a - b;
}
