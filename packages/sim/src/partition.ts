/**
 * Partitioners: which example indices each virtual client holds. Pure and seeded: labels in,
 * index lists out, every draw from the given SeededRandom.
 */
import { ShoalError, shuffled } from '@shoal/protocol';
import type { SeededRandom } from '@shoal/protocol';
import { sampleDirichlet } from './sampling.js';

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

/** How quantity skew draws client sizes: log-normal (the default) or power-law (Pareto). */
export type QuantityDistribution = 'lognormal' | 'powerlaw';
export const QUANTITY_DISTRIBUTIONS: readonly QuantityDistribution[] = ['lognormal', 'powerlaw'];

/** A split `partitionLabels` makes from the labels alone. */
export type LabelPartitionSpec =
  | { readonly kind: 'iid' }
  | { readonly kind: 'shards'; readonly shardsPerClient: number }
  | { readonly kind: 'dirichlet'; readonly alpha: number; readonly recipe: DirichletRecipe }
  | { readonly kind: 'quantity'; readonly distribution: 'lognormal'; readonly sigma: number }
  | { readonly kind: 'quantity'; readonly distribution: 'powerlaw'; readonly exponent: number };

/**
 * How the train split is divided among virtual clients: the parsed `simulation.partition`. `natural`
 * is the split the data carries (one client per speaker or generated device), made by `clientData`.
 */
export type PartitionSpec = LabelPartitionSpec | { readonly kind: 'natural' };

export type PartitionKind = PartitionSpec['kind'];
export const PARTITION_KINDS: readonly PartitionKind[] = ['iid', 'shards', 'dirichlet', 'quantity', 'natural'];

/**
 * The two Dirichlet label-skew recipes of the literature, which are different splits:
 * `per-client` (Hsu et al. 2019): each client draws its own label mix q ~ Dir(α·p), p the label prior;
 * `per-class` (Flower Datasets' DirichletPartitioner, FedML): each class is split across the
 * clients by proportions ~ Dir(α, …, α).
 */
export type DirichletRecipe = 'per-client' | 'per-class';
export const DIRICHLET_RECIPES: readonly DirichletRecipe[] = ['per-client', 'per-class'];

/** Defaults of the partition parameters that have one (`dirichlet` needs `alpha` and `recipe`). */
export const PARTITION_DEFAULTS = { shardsPerClient: 2, distribution: 'lognormal', sigma: 1, exponent: 1.5 } as const;

/** How often `dirichlet` `per-class` redraws a split that leaves a client without examples. */
export const MAX_DIRICHLET_DRAWS = 100;

/**
 * Splits the examples whose labels are `labels` among numClients clients as `spec` says, and
 * returns each client's example indices. Pure: the same labels, spec and generator state give the
 * same split. Clients are disjoint and every client holds at least one example.
 *
 * - `iid`: exactly partitionIid (same draws, same split as before partitions had kinds).
 * - `shards` (McMahan et al. 2017): drop n mod (shardsPerClient·numClients) examples at random,
 *   sort the rest by label (ties in random order), cut them into shardsPerClient·numClients
 *   shards of equal size and give each client shardsPerClient shards at random.
 * - `dirichlet` `per-class`: each class's examples (shuffled) are cut among the clients at the
 *   cumulative sums of proportions ~ Dir(α), each cut rounded to the nearest example (Flower and
 *   FedML truncate, which hands the last client one example of nearly every class); all examples
 *   are used. A split that leaves a client empty is redrawn, at most MAX_DIRICHLET_DRAWS times
 *   (as Flower's min_partition_size does with 10 tries).
 * - `dirichlet` `per-client` (Hsu et al. 2019): clients get the equal sizes of `iid`; client by
 *   client, in order, q ~ Dir(α·p) with p the label prior of `labels`, then each of its examples
 *   is drawn without replacement: a class with probability q_k among the classes that still have
 *   examples (q renormalised over them), then an unused example of that class. When q puts no
 *   weight on any class that has examples left, the client draws in proportion to what is left.
 *   All examples are used, so the last clients' mixes drift towards the classes others left.
 * - `quantity`: client sizes 1 + a share of the other n − numClients examples proportional to a
 *   weight per client (largest remainder rounding), labels IID (a shuffle dealt in chunks of those
 *   sizes). `lognormal`: weight exp(σ·z), z ~ N(0, 1); σ = 0 gives iid's sizes. `powerlaw`: weight
 *   (1 − u)^(−1/a), u ~ U[0, 1), a Pareto draw of tail index a = exponent (P(weight > w) = w^−a,
 *   w ≥ 1): the smaller a, the heavier the tail (a ≤ 1: the largest client holds a share that does
 *   not shrink as clients are added).
 *
 * examplesPerClient caps each client's share: `iid` keeps the first examplesPerClient of its chunk,
 * as partitionIid does; the other kinds keep a random examplesPerClient of the client's examples.
 *
 * @param labels each example's class, an integer in 0..numClasses-1.
 * @param random consumed by the split; pass a fork when the caller needs its stream afterwards.
 * @throws ShoalError INVALID_CONFIG when the data cannot be split so: numClients not in 1..n,
 *   more shards than examples, a label outside 0..numClasses-1, a bad parameter, or a
 *   `per-class` split that left a client empty MAX_DIRICHLET_DRAWS times.
 */
export function partitionLabels(
  labels: ArrayLike<number>,
  numClasses: number,
  numClients: number,
  spec: LabelPartitionSpec,
  random: SeededRandom,
  examplesPerClient?: number,
): Int32Array[] {
  if (spec.kind === 'iid') return partitionIid(labels.length, numClients, random, examplesPerClient);
  const n = labels.length;
  const where = `partition ${spec.kind}`;
  if (!Number.isInteger(numClasses) || numClasses < 1) throw invalid(`${where}: numClasses must be a positive integer, got ${numClasses}`);
  if (!Number.isInteger(numClients) || numClients < 1 || numClients > n) {
    throw invalid(`${where}: numClients must be an integer in 1..${n} (one example per client at least), got ${numClients}`);
  }
  if (examplesPerClient !== undefined && (!Number.isInteger(examplesPerClient) || examplesPerClient < 1)) {
    throw invalid(`${where}: examplesPerClient must be a positive integer, got ${examplesPerClient}`);
  }
  for (let i = 0; i < n; i++) {
    const label = labels[i]!;
    if (!Number.isInteger(label) || label < 0 || label >= numClasses) throw invalid(`${where}: label ${label} at index ${i} is outside 0..${numClasses - 1}`);
  }
  let parts: number[][];
  switch (spec.kind) {
    case 'shards':
      parts = shards(labels, numClients, spec.shardsPerClient, random);
      break;
    case 'dirichlet':
      if (!(spec.alpha > 0) || !Number.isFinite(spec.alpha)) throw invalid(`${where}: alpha must be a finite positive number, got ${spec.alpha}`);
      parts = spec.recipe === 'per-class' ? dirichletPerClass(labels, numClasses, numClients, spec.alpha, random) : dirichletPerClient(labels, numClasses, numClients, spec.alpha, random);
      break;
    case 'quantity':
      parts = quantity(n, quantityWeights(spec, numClients, random), random);
      break;
  }
  // Each client's examples in random order, so a cap keeps a random subset of them.
  return parts.map((part) => Int32Array.from(shuffled(part, random).slice(0, examplesPerClient ?? part.length)));
}

function shards(labels: ArrayLike<number>, numClients: number, shardsPerClient: number, random: SeededRandom): number[][] {
  const n = labels.length;
  if (!Number.isInteger(shardsPerClient) || shardsPerClient < 1) throw invalid(`partition shards: shardsPerClient must be a positive integer, got ${shardsPerClient}`);
  const numShards = shardsPerClient * numClients;
  if (numShards > n) throw invalid(`partition shards: shardsPerClient (${shardsPerClient}) × numClients (${numClients}) = ${numShards} shards, more than the ${n} examples`);
  const shardSize = Math.floor(n / numShards);
  // Shuffle, keep the first numShards·shardSize, then a stable sort by label: ties stay in random order.
  const kept = shuffled(range(n), random).slice(0, numShards * shardSize).sort((a, b) => labels[a]! - labels[b]!);
  const shardOrder = shuffled(range(numShards), random);
  return Array.from({ length: numClients }, (_, client) =>
    shardOrder.slice(client * shardsPerClient, (client + 1) * shardsPerClient).flatMap((shard) => kept.slice(shard * shardSize, (shard + 1) * shardSize)),
  );
}

function dirichletPerClass(labels: ArrayLike<number>, numClasses: number, numClients: number, alpha: number, random: SeededRandom): number[][] {
  const byClass = indicesByClass(labels, numClasses).map((members) => shuffled(members, random));
  const concentrations = new Array<number>(numClients).fill(alpha);
  for (let draw = 0; draw < MAX_DIRICHLET_DRAWS; draw++) {
    const parts: number[][] = Array.from({ length: numClients }, () => []);
    for (const members of byClass) {
      if (members.length === 0) continue;
      const proportions = sampleDirichlet(concentrations, random);
      let cumulative = 0;
      let start = 0;
      for (let client = 0; client < numClients; client++) {
        cumulative += proportions[client]!;
        const end = client === numClients - 1 ? members.length : Math.min(members.length, Math.round(cumulative * members.length));
        for (let i = start; i < end; i++) parts[client]!.push(members[i]!);
        start = Math.max(start, end);
      }
    }
    if (parts.every((part) => part.length > 0)) return parts;
  }
  throw invalid(
    `partition dirichlet per-class: ${MAX_DIRICHLET_DRAWS} draws with alpha ${alpha} each left a client of ${numClients} without examples; raise alpha, lower numClients or use recipe per-client`,
  );
}

function dirichletPerClient(labels: ArrayLike<number>, numClasses: number, numClients: number, alpha: number, random: SeededRandom): number[][] {
  const n = labels.length;
  const byClass = indicesByClass(labels, numClasses).map((members) => shuffled(members, random));
  const present = byClass.flatMap((members, label) => (members.length > 0 ? [label] : []));
  const concentrations = present.map((label) => (alpha * byClass[label]!.length) / n); // α·p over the classes present
  const taken = new Array<number>(numClasses).fill(0);
  const weights = new Float64Array(present.length);
  return equalSizes(n, numClients).map((size) => {
    const mix = sampleDirichlet(concentrations, random);
    const part: number[] = [];
    for (let j = 0; j < size; j++) {
      let total = 0;
      for (let k = 0; k < present.length; k++) {
        const label = present[k]!;
        weights[k] = taken[label]! < byClass[label]!.length ? mix[k]! : 0;
        total += weights[k]!;
      }
      if (!(total > 0)) {
        // q puts no weight on any class with examples left: draw in proportion to what is left.
        total = 0;
        for (let k = 0; k < present.length; k++) {
          const label = present[k]!;
          weights[k] = byClass[label]!.length - taken[label]!;
          total += weights[k]!;
        }
      }
      const k = pick(weights, random.next() * total);
      const label = present[k]!;
      part.push(byClass[label]![taken[label]!++]!);
    }
    return part;
  });
}

/** Each client's size weight, drawn in client order. */
function quantityWeights(spec: Extract<LabelPartitionSpec, { kind: 'quantity' }>, numClients: number, random: SeededRandom): number[] {
  if (spec.distribution === 'lognormal') {
    if (!(spec.sigma >= 0) || !Number.isFinite(spec.sigma)) throw invalid(`partition quantity: sigma must be a finite non-negative number, got ${spec.sigma}`);
    return Array.from({ length: numClients }, () => Math.exp(spec.sigma * random.nextGaussian()));
  }
  if (!(spec.exponent > 0) || !Number.isFinite(spec.exponent)) throw invalid(`partition quantity: exponent must be a finite positive number, got ${spec.exponent}`);
  // Inverse CDF of Pareto(1, a): (1 − u)^(−1/a), 1 − u in (0, 1]. In log space, scaled by the largest,
  // so a small exponent cannot overflow to Infinity; only the ratios matter.
  const logs = Array.from({ length: numClients }, () => -Math.log(1 - random.next()) / spec.exponent);
  const largest = Math.max(...logs);
  return logs.map((log) => Math.exp(log - largest));
}

function quantity(n: number, weights: readonly number[], random: SeededRandom): number[][] {
  const numClients = weights.length;
  const total = weights.reduce((sum, w) => sum + w, 0);
  const spare = n - numClients; // every client holds at least one example
  const quotas = weights.map((w) => (spare * w) / total);
  const sizes = quotas.map((quota) => 1 + Math.floor(quota));
  let left = n - sizes.reduce((sum, size) => sum + size, 0);
  // Largest remainder: the leftover examples go to the largest fractional parts (ties: lower client).
  const byRemainder = range(numClients).sort((a, b) => quotas[b]! - Math.floor(quotas[b]!) - (quotas[a]! - Math.floor(quotas[a]!)) || a - b);
  for (const client of byRemainder) {
    if (left <= 0) break;
    sizes[client]! += 1;
    left--;
  }
  const order = shuffled(range(n), random);
  let start = 0;
  return sizes.map((size) => order.slice(start, (start += size)));
}

/** The index k where the running sum of weights first exceeds point; the last positive weight when rounding overshoots. */
function pick(weights: Float64Array, point: number): number {
  let last = -1;
  for (let k = 0; k < weights.length; k++) {
    if (weights[k]! <= 0) continue;
    point -= weights[k]!;
    if (point < 0) return k;
    last = k;
  }
  return last;
}

/** iid's sizes: ⌊n / numClients⌋, one more for the first n mod numClients clients. */
function equalSizes(n: number, numClients: number): number[] {
  return Array.from({ length: numClients }, (_, client) => Math.floor(n / numClients) + (client < n % numClients ? 1 : 0));
}

function indicesByClass(labels: ArrayLike<number>, numClasses: number): number[][] {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]!]!.push(i);
  return byClass;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function invalid(message: string): ShoalError {
  return new ShoalError('INVALID_CONFIG', message);
}

/** A split the data itself carries (Synthetic(α, β)'s devices, Shakespeare's speakers), with its parameters. */
export interface NaturalPartition {
  readonly kind: 'natural';
  readonly [param: string]: number | string;
}

/** What a run's summary records of its partition: compact enough to read, enough to check the skew. */
export interface PartitionReport {
  readonly kind: PartitionKind;
  /** The spec's parameters (none for `iid`), and `examplesPerClient` when it capped the shares. */
  readonly params: Readonly<Record<string, number | string>>;
  /** Examples each client holds, in client order. */
  readonly sizes: readonly number[];
  /** Per client, how many of its examples have each label 0..numClasses-1. */
  readonly labelHistograms: readonly (readonly number[])[];
  /** Examples of the split held by no client (dropped shards' remainder, or cut off by examplesPerClient). */
  readonly unused: number;
  /** With a natural partition that names its owners (Shakespeare's speakers): client i's owner. */
  readonly owners?: readonly string[];
}

/** The report of a split made by partitionLabels (or partitionIid) over `labels`, or of a natural one. */
export function describePartition(spec: PartitionSpec | NaturalPartition, parts: readonly Int32Array[], labels: ArrayLike<number>, numClasses: number, examplesPerClient?: number): PartitionReport {
  const { kind, ...params } = spec;
  const sizes = parts.map((part) => part.length);
  const labelHistograms = parts.map((part) => {
    const histogram = new Array<number>(numClasses).fill(0);
    for (const index of part) histogram[labels[index]!]! += 1;
    return histogram;
  });
  return {
    kind,
    params: { ...params, ...(examplesPerClient !== undefined ? { examplesPerClient } : {}) },
    sizes,
    labelHistograms,
    unused: labels.length - sizes.reduce((sum, size) => sum + size, 0),
  };
}
