import fc from 'fast-check';
import { createSeededRandom, type SeededRandom } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { expectShoalError } from '@shoal/testkit';
// The modules themselves, not the package index: the index pulls in tfjs, which these tests do not need.
import { describePartition, partitionIid, partitionLabels, MAX_DIRICHLET_DRAWS, type LabelPartitionSpec } from '../src/partition.js';
import { logGamma, sampleDirichlet, sampleGamma } from '../src/sampling.js';

/** n in 1..400 and numClients in 1..n. */
const sizes = fc.integer({ min: 1, max: 400 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 1, max: n })));
const seed = fc.integer({ min: 0, max: 0xffffffff });


describe('partitionIid', () => {
  it('gives every index 0..n-1 to exactly one client, with sizes differing by at most 1', () => {
    fc.assert(
      fc.property(sizes, seed, ([n, numClients], s) => {
        const parts = partitionIid(n, numClients, createSeededRandom(s));
        expect(parts.length).toBe(numClients);
        const seen = new Uint8Array(n);
        for (const part of parts) {
          for (const index of part) {
            expect(index >= 0 && index < n).toBe(true);
            seen[index]! += 1;
          }
        }
        expect(seen.every((count) => count === 1)).toBe(true);
        const lengths = parts.map((part) => part.length);
        expect(Math.max(...lengths) - Math.min(...lengths)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('is deterministic per seed', () => {
    fc.assert(
      fc.property(sizes, seed, ([n, numClients], s) => {
        expect(partitionIid(n, numClients, createSeededRandom(s))).toEqual(partitionIid(n, numClients, createSeededRandom(s)));
      }),
    );
  });

  it('differs across seeds', () => {
    // n ≥ 50 makes a coincidence across two seeds astronomically unlikely (≥ 50!/… orderings).
    const large = fc.integer({ min: 50, max: 400 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 1, max: 20 })));
    fc.assert(
      fc.property(large, seed, seed, ([n, numClients], a, b) => {
        fc.pre(a !== b);
        expect(partitionIid(n, numClients, createSeededRandom(a))).not.toEqual(partitionIid(n, numClients, createSeededRandom(b)));
      }),
    );
  });

  it('shuffles: a client does not get a contiguous run of indices', () => {
    const [first] = partitionIid(1_000, 10, createSeededRandom(0));
    expect(first!.length).toBe(100);
    expect(Array.from(first!)).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
    // A uniform sample of 100 from 1,000 spans far more than 100 consecutive indices.
    expect(Math.max(...first!) - Math.min(...first!)).toBeGreaterThan(500);
  });

  it('caps each client at examplesPerClient, keeping clients disjoint', () => {
    fc.assert(
      fc.property(sizes, fc.integer({ min: 1, max: 50 }), seed, ([n, numClients], cap, s) => {
        const uncapped = partitionIid(n, numClients, createSeededRandom(s));
        const capped = partitionIid(n, numClients, createSeededRandom(s), cap);
        capped.forEach((part, client) => {
          expect(part.length).toBe(Math.min(cap, uncapped[client]!.length));
          expect(Array.from(part)).toEqual(Array.from(uncapped[client]!.subarray(0, part.length)));
        });
        const all = capped.flatMap((part) => Array.from(part));
        expect(new Set(all).size).toBe(all.length);
      }),
    );
  });

  it('rejects numClients < 1 or > n and bad arguments with INVALID_CONFIG', () => {
    const random = createSeededRandom(0);
    expectShoalError(() => partitionIid(10, 0, random), 'INVALID_CONFIG', /numClients must be an integer in 1\.\.10.*got 0/);
    expectShoalError(() => partitionIid(10, 11, random), 'INVALID_CONFIG', /numClients must be an integer in 1\.\.10.*got 11/);
    expectShoalError(() => partitionIid(10, 2.5, random), 'INVALID_CONFIG', /numClients/);
    expectShoalError(() => partitionIid(0, 1, random), 'INVALID_CONFIG', /numClients must be an integer in 1\.\.0/);
    expectShoalError(() => partitionIid(-1, 1, random), 'INVALID_CONFIG', /number of examples/);
    expectShoalError(() => partitionIid(10, 2, random, 0), 'INVALID_CONFIG', /examplesPerClient must be a positive integer, got 0/);
  });
});

/** Labels 0..numClasses-1, `perClass` of each, in class order: [0,0,…,1,1,…]. */
function blocks(numClasses: number, perClass: number): Int32Array {
  return Int32Array.from({ length: numClasses * perClass }, (_, i) => Math.floor(i / perClass));
}

function histograms(parts: readonly Int32Array[], labels: ArrayLike<number>, numClasses: number): number[][] {
  return describePartition({ kind: 'iid' }, parts, labels, numClasses).labelHistograms.map((h) => [...h]);
}

/** Every index in 0..n-1 at most once; returns how many were used. */
function expectDisjoint(parts: readonly Int32Array[], n: number): number {
  const seen = new Uint8Array(n);
  let used = 0;
  for (const part of parts) {
    for (const index of part) {
      expect(Number.isInteger(index) && index >= 0 && index < n, `index ${index}`).toBe(true);
      expect(seen[index], `index ${index} given twice`).toBe(0);
      seen[index] = 1;
      used++;
    }
  }
  return used;
}

const sorted = (rows: number[][]): string[] => rows.map((row) => row.join(',')).sort();

describe('partitionLabels: iid', () => {
  it('is partitionIid exactly: same draws, same split (existing configs keep their runs)', () => {
    fc.assert(
      fc.property(sizes, seed, fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }), ([n, numClients], s, cap) => {
        const labels = new Int32Array(n);
        expect(partitionLabels(labels, 1, numClients, { kind: 'iid' }, createSeededRandom(s), cap)).toEqual(partitionIid(n, numClients, createSeededRandom(s), cap));
      }),
      { numRuns: 50 },
    );
  });
});

describe('partitionLabels: shards', () => {
  it('gives each client shardsPerClient single-label shards when classes fill whole shards', () => {
    // 4 classes × 6 examples, 4 clients × 2 shards of 3: every shard is one class, each class two shards.
    const labels = blocks(4, 6);
    const parts = partitionLabels(labels, 4, 4, { kind: 'shards', shardsPerClient: 2 }, createSeededRandom(3));
    expect(parts.map((part) => part.length)).toEqual([6, 6, 6, 6]);
    expect(expectDisjoint(parts, 24)).toBe(24);
    const hist = histograms(parts, labels, 4);
    for (const row of hist) expect(row.filter((count) => count > 0).every((count) => count === 3 || count === 6)).toBe(true);
    // Per class, its 6 examples are spread over the clients in shards of 3.
    for (let label = 0; label < 4; label++) expect(hist.reduce((sum, row) => sum + row[label]!, 0)).toBe(6);
  });

  it('with one shard per client and one class per shard, each client holds exactly one class', () => {
    const labels = blocks(5, 4);
    const parts = partitionLabels(labels, 5, 5, { kind: 'shards', shardsPerClient: 1 }, createSeededRandom(11));
    expect(sorted(histograms(parts, labels, 5))).toEqual(sorted([[4, 0, 0, 0, 0], [0, 4, 0, 0, 0], [0, 0, 4, 0, 0], [0, 0, 0, 4, 0], [0, 0, 0, 0, 4]]));
  });

  it('drops n mod (shards) examples and uses the rest; a shard straddles two classes when they do not divide evenly', () => {
    // 10 examples, 3 classes (4, 3, 3), 2 clients × 2 shards: shard size 2, 8 used, 2 dropped.
    const labels = Int32Array.from([0, 0, 0, 0, 1, 1, 1, 2, 2, 2]);
    const parts = partitionLabels(labels, 3, 2, { kind: 'shards', shardsPerClient: 2 }, createSeededRandom(0));
    expect(parts.map((part) => part.length)).toEqual([4, 4]);
    expect(expectDisjoint(parts, 10)).toBe(8);
    const report = describePartition({ kind: 'shards', shardsPerClient: 2 }, parts, labels, 3);
    expect(report.unused).toBe(2);
    expect(report.params).toEqual({ shardsPerClient: 2 });
  });

  it('refuses more shards than examples', () => {
    expectShoalError(
      () => partitionLabels(blocks(2, 5), 2, 6, { kind: 'shards', shardsPerClient: 2 }, createSeededRandom(0)),
      'INVALID_CONFIG',
      /shardsPerClient \(2\) × numClients \(6\) = 12 shards, more than the 10 examples/,
    );
  });
});

describe('partitionLabels: dirichlet per-class', () => {
  it('splits every class across the clients and uses every example', () => {
    const labels = blocks(3, 20);
    const parts = partitionLabels(labels, 3, 4, { kind: 'dirichlet', alpha: 1, recipe: 'per-class' }, createSeededRandom(5));
    expect(expectDisjoint(parts, 60)).toBe(60);
    const hist = histograms(parts, labels, 3);
    for (let label = 0; label < 3; label++) expect(hist.reduce((sum, row) => sum + row[label]!, 0)).toBe(20);
    expect(parts.every((part) => part.length > 0)).toBe(true);
  });

  it('with one client, gives it everything; with a huge alpha, each client gets close to 1/numClients of each class', () => {
    expect(partitionLabels(blocks(2, 5), 2, 1, { kind: 'dirichlet', alpha: 0.5, recipe: 'per-class' }, createSeededRandom(1))[0]!.length).toBe(10);
    const labels = blocks(2, 1_000);
    const hist = histograms(partitionLabels(labels, 2, 4, { kind: 'dirichlet', alpha: 1e6, recipe: 'per-class' }, createSeededRandom(2)), labels, 2);
    for (const row of hist) for (const count of row) expect(Math.abs(count - 250)).toBeLessThanOrEqual(2);
  });

  it('with a small alpha, one client holds most of each class; with a large one, the shares are even', () => {
    const labels = blocks(10, 200);
    /** The mean over classes of the largest share one client holds of the class. */
    const topShare = (alpha: number): number => {
      const hist = histograms(partitionLabels(labels, 10, 20, { kind: 'dirichlet', alpha, recipe: 'per-class' }, createSeededRandom(4)), labels, 10);
      return Array.from({ length: 10 }, (_, label) => Math.max(...hist.map((row) => row[label]!)) / 200).reduce((a, b) => a + b, 0) / 10;
    };
    expect(topShare(0.05)).toBeGreaterThan(0.5);
    expect(topShare(1_000)).toBeLessThan(0.1);
  });

  it('rounds its cuts: with a small alpha the last client does not collect one example of every class', () => {
    const labels = blocks(10, 200);
    const last = histograms(partitionLabels(labels, 10, 10, { kind: 'dirichlet', alpha: 0.1, recipe: 'per-class' }, createSeededRandom(4)), labels, 10).at(-1)!;
    expect(last.filter((count) => count > 0).length).toBeLessThan(5);
  });

  it('refuses, after redrawing, a split that keeps leaving a client empty', () => {
    // 4 examples of one class for 4 clients with alpha 1e-3: one client takes nearly all of it every time.
    expectShoalError(
      () => partitionLabels(new Int32Array(4), 1, 4, { kind: 'dirichlet', alpha: 1e-3, recipe: 'per-class' }, createSeededRandom(0)),
      'INVALID_CONFIG',
      new RegExp(`${MAX_DIRICHLET_DRAWS} draws with alpha 0.001 each left a client of 4 without examples`),
    );
  });
});

describe('partitionLabels: dirichlet per-client', () => {
  it("gives iid's sizes and uses every example, each class exactly once", () => {
    const labels = blocks(3, 7); // 21 examples, 4 clients: 6, 5, 5, 5
    const parts = partitionLabels(labels, 3, 4, { kind: 'dirichlet', alpha: 0.5, recipe: 'per-client' }, createSeededRandom(9));
    expect(parts.map((part) => part.length)).toEqual([6, 5, 5, 5]);
    expect(expectDisjoint(parts, 21)).toBe(21);
    const hist = histograms(parts, labels, 3);
    for (let label = 0; label < 3; label++) expect(hist.reduce((sum, row) => sum + row[label]!, 0)).toBe(7);
  });

  it('with a tiny alpha the first client holds one class only; with a huge alpha, about the prior', () => {
    const labels = blocks(4, 100);
    const skewed = histograms(partitionLabels(labels, 4, 4, { kind: 'dirichlet', alpha: 1e-4, recipe: 'per-client' }, createSeededRandom(6)), labels, 4);
    expect(skewed[0]!.filter((count) => count > 0)).toEqual([100]);
    const flat = histograms(partitionLabels(blocks(4, 2_000), 4, 4, { kind: 'dirichlet', alpha: 1e6, recipe: 'per-client' }, createSeededRandom(6)), blocks(4, 2_000), 4);
    // The first client draws 2,000 examples from a mix within ~0.1 % of (1/4, …): binomial spread ~20.
    for (const count of flat[0]!) expect(Math.abs(count - 500)).toBeLessThan(100);
  });

  it('follows a skewed prior: q ~ Dir(alpha·p) centres on p', () => {
    // 900 of class 0, 100 of class 1; with alpha large the first client's 100 examples are ~90 % class 0.
    const labels = Int32Array.from({ length: 1_000 }, (_, i) => (i < 900 ? 0 : 1));
    const first = histograms(partitionLabels(labels, 2, 10, { kind: 'dirichlet', alpha: 1e4, recipe: 'per-client' }, createSeededRandom(8)), labels, 2)[0]!;
    expect(first[0]).toBeGreaterThan(75);
  });
});

describe('partitionLabels: quantity', () => {
  it('with sigma 0 gives iid sizes; the sizes always sum to n and are at least 1', () => {
    const labels = blocks(2, 11);
    const even = partitionLabels(labels, 2, 4, { kind: 'quantity', distribution: 'lognormal', sigma: 0 }, createSeededRandom(1));
    expect(even.map((part) => part.length).sort()).toEqual([5, 5, 6, 6]);
    const skewed = partitionLabels(labels, 2, 4, { kind: 'quantity', distribution: 'lognormal', sigma: 2 }, createSeededRandom(1));
    expect(expectDisjoint(skewed, 22)).toBe(22);
    expect(skewed.every((part) => part.length >= 1)).toBe(true);
  });

  it('makes sizes log-normal: with sigma 1 the largest client holds several times the median', () => {
    const labels = new Int32Array(10_000);
    const lengths = partitionLabels(labels, 1, 100, { kind: 'quantity', distribution: 'lognormal', sigma: 1 }, createSeededRandom(2)).map((part) => part.length).sort((a, b) => a - b);
    // Max of 100 log-normals with σ = 1 is about e^2.5 ≈ 12 times the median.
    expect(lengths.at(-1)! / lengths[50]!).toBeGreaterThan(4);
  });
});

describe('partitionLabels: quantity, powerlaw', () => {
  /** A seeded generator whose first next() draws are `uniforms`, so the Pareto weights are known. */
  function scripted(uniforms: number[], seed: number): SeededRandom {
    const rest = createSeededRandom(seed);
    return { next: () => uniforms.shift() ?? rest.next(), nextInt: (bound) => rest.nextInt(bound), nextGaussian: () => rest.nextGaussian(), fork: () => rest.fork() };
  }
  const sizesOf = (parts: Int32Array[]): number[] => parts.map((part) => part.length);

  it('sizes are 1 + a largest-remainder share of the rest proportional to (1 − u)^(−1/exponent)', () => {
    const labels = new Int32Array(10);
    // exponent 2: u = 0, 0.75, 0.9375 give weights 1, 2, 4; the 7 spare examples split exactly 1 : 2 : 4.
    expect(sizesOf(partitionLabels(labels, 1, 3, { kind: 'quantity', distribution: 'powerlaw', exponent: 2 }, scripted([0, 0.75, 0.9375], 1)))).toEqual([2, 3, 5]);
    // exponent 1: weights 1, 4, 16; quotas 1/3, 4/3, 16/3 give 1, 2, 6 and the leftover example goes to
    // the tied remainders' lowest client.
    expect(sizesOf(partitionLabels(labels, 1, 3, { kind: 'quantity', distribution: 'powerlaw', exponent: 1 }, scripted([0, 0.75, 0.9375], 1)))).toEqual([2, 2, 6]);
  });

  it('is heavy-tailed: with exponent 1 the largest of 100 clients holds many times the median', () => {
    const labels = new Int32Array(10_000);
    const lengths = sizesOf(partitionLabels(labels, 1, 100, { kind: 'quantity', distribution: 'powerlaw', exponent: 1 }, createSeededRandom(2))).sort((a, b) => a - b);
    // The largest of 100 Pareto(1) draws is about 100 times the minimum, 50 times the median.
    expect(lengths.at(-1)! / lengths[50]!).toBeGreaterThan(5);
  });

  it('(property) covers every example once, gives every client one at least, and repeats per seed', () => {
    fc.assert(
      fc.property(sizes, fc.double({ min: 0.05, max: 20, noNaN: true }), seed, ([n, numClients], exponent, s) => {
        const spec = { kind: 'quantity', distribution: 'powerlaw', exponent } as const;
        const parts = partitionLabels(new Int32Array(n), 1, numClients, spec, createSeededRandom(s));
        expect(expectDisjoint(parts, n)).toBe(n);
        expect(parts.every((part) => part.length >= 1)).toBe(true);
        expect(partitionLabels(new Int32Array(n), 1, numClients, spec, createSeededRandom(s))).toEqual(parts);
      }),
    );
  });

  it('refuses an exponent that is not a finite positive number', () => {
    for (const exponent of [0, -1, Number.POSITIVE_INFINITY, Number.NaN]) {
      expectShoalError(() => partitionLabels(new Int32Array(4), 1, 2, { kind: 'quantity', distribution: 'powerlaw', exponent }, createSeededRandom(0)), 'INVALID_CONFIG', /exponent must be a finite positive number/);
    }
  });
});

describe('partitionLabels: examplesPerClient and bad arguments', () => {
  it('caps each client at examplesPerClient with a random subset of its examples', () => {
    const labels = blocks(4, 6);
    const full = partitionLabels(labels, 4, 4, { kind: 'shards', shardsPerClient: 2 }, createSeededRandom(3));
    const capped = partitionLabels(labels, 4, 4, { kind: 'shards', shardsPerClient: 2 }, createSeededRandom(3), 4);
    capped.forEach((part, client) => {
      expect(part.length).toBe(4);
      expect(Array.from(part)).toEqual(Array.from(full[client]!.subarray(0, 4)));
    });
    const report = describePartition({ kind: 'shards', shardsPerClient: 2 }, capped, labels, 4, 4);
    expect(report).toMatchObject({ sizes: [4, 4, 4, 4], unused: 8, params: { shardsPerClient: 2, examplesPerClient: 4 } });
  });

  it('refuses labels outside 0..numClasses-1, numClients outside 1..n and bad parameters', () => {
    const random = createSeededRandom(0);
    const spec: LabelPartitionSpec = { kind: 'quantity', distribution: 'lognormal', sigma: 1 };
    expectShoalError(() => partitionLabels(Int32Array.from([0, 3]), 3, 1, spec, random), 'INVALID_CONFIG', /label 3 at index 1 is outside 0\.\.2/);
    expectShoalError(() => partitionLabels(new Int32Array(4), 1, 5, spec, random), 'INVALID_CONFIG', /partition quantity: numClients must be an integer in 1\.\.4/);
    expectShoalError(() => partitionLabels(new Int32Array(4), 1, 2, { kind: 'quantity', distribution: 'lognormal', sigma: -1 }, random), 'INVALID_CONFIG', /sigma must be a finite non-negative number, got -1/);
    expectShoalError(() => partitionLabels(new Int32Array(4), 1, 2, { kind: 'dirichlet', alpha: 0, recipe: 'per-class' }, random), 'INVALID_CONFIG', /alpha must be a finite positive number, got 0/);
    expectShoalError(() => partitionLabels(new Int32Array(4), 1, 2, { kind: 'shards', shardsPerClient: 0 }, random), 'INVALID_CONFIG', /shardsPerClient must be a positive integer, got 0/);
    expectShoalError(() => partitionLabels(new Int32Array(4), 1, 2, spec, random, 0), 'INVALID_CONFIG', /examplesPerClient must be a positive integer, got 0/);
  });
});

describe('describePartition', () => {
  it('reports kind, params, sizes and each client\'s label histogram', () => {
    const labels = Int32Array.from([0, 1, 1, 2, 2, 2]);
    const parts = [Int32Array.from([0, 3]), Int32Array.from([1, 2, 4])];
    expect(describePartition({ kind: 'dirichlet', alpha: 0.5, recipe: 'per-client' }, parts, labels, 3)).toEqual({
      kind: 'dirichlet',
      params: { alpha: 0.5, recipe: 'per-client' },
      sizes: [2, 3],
      labelHistograms: [[1, 0, 1], [0, 2, 1]],
      unused: 1,
    });
  });
});

describe('partitionLabels (property): every kind over sizes, client counts and alpha', () => {
  const numClasses = fc.integer({ min: 1, max: 6 });
  /** labels (n in 1..300) over numClasses, numClients in 1..n. */
  const data = numClasses.chain((k) =>
    fc
      .array(fc.integer({ min: 0, max: k - 1 }), { minLength: 1, maxLength: 300 })
      .chain((labels) => fc.tuple(fc.constant(k), fc.constant(Int32Array.from(labels)), fc.integer({ min: 1, max: Math.min(labels.length, 30) }))),
  );
  const alpha = fc.double({ min: 1e-3, max: 1e3, noNaN: true });
  const spec: fc.Arbitrary<LabelPartitionSpec> = fc.oneof(
    fc.constant({ kind: 'iid' } as const),
    fc.record({ kind: fc.constant('shards' as const), shardsPerClient: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ kind: fc.constant('dirichlet' as const), alpha, recipe: fc.constantFrom('per-client' as const, 'per-class' as const) }),
    fc.record({ kind: fc.constant('quantity' as const), distribution: fc.constant('lognormal' as const), sigma: fc.double({ min: 0, max: 3, noNaN: true }) }),
    fc.record({ kind: fc.constant('quantity' as const), distribution: fc.constant('powerlaw' as const), exponent: fc.double({ min: 0.1, max: 10, noNaN: true }) }),
  );
  const cap = fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined });

  it('is disjoint, within bounds, non-empty per client, uses what it says and is deterministic per seed; refusals are INVALID_CONFIG', () => {
    let split = 0;
    fc.assert(
      fc.property(data, spec, seed, cap, ([k, labels, numClients], s, c, examplesPerClient) => {
        let parts: Int32Array[];
        try {
          parts = partitionLabels(labels, k, numClients, s, createSeededRandom(c), examplesPerClient);
        } catch (error) {
          // The only refusals the data can cause: too many shards, or a per-class split that keeps emptying a client.
          expect((error as { code?: string }).code).toBe('INVALID_CONFIG');
          expect(String((error as Error).message)).toMatch(/more than the \d+ examples|without examples/);
          return;
        }
        split++;
        const n = labels.length;
        expect(parts.length).toBe(numClients);
        const used = expectDisjoint(parts, n);
        expect(parts.every((part) => part.length >= 1 && part.length <= (examplesPerClient ?? n))).toBe(true);
        if (examplesPerClient === undefined) {
          // Every kind but shards uses every example; shards drops n mod (its shard count).
          const dropped = s.kind === 'shards' ? n % (s.shardsPerClient * numClients) : 0;
          expect(used).toBe(n - dropped);
        }
        expect(partitionLabels(labels, k, numClients, s, createSeededRandom(c), examplesPerClient)).toEqual(parts);
      }),
      { numRuns: 400 },
    );
    expect(split, 'splits that succeeded').toBeGreaterThan(200);
  });
});

describe('Marsaglia–Tsang gamma and the Dirichlet built on it', () => {
  it('has the mean and variance of Gamma(shape, 1) (both equal shape) for shapes below and above 1', () => {
    for (const shape of [0.3, 1, 2.5, 20]) {
      const random = createSeededRandom(42);
      const draws = Array.from({ length: 20_000 }, () => sampleGamma(shape, random));
      const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
      const variance = draws.reduce((a, b) => a + (b - mean) ** 2, 0) / draws.length;
      expect(Math.abs(mean - shape) / shape, `mean, shape ${shape}`).toBeLessThan(0.03);
      expect(Math.abs(variance - shape) / shape, `variance, shape ${shape}`).toBeLessThan(0.1);
    }
  });

  it('stays finite in log space for tiny shapes, where the draw itself underflows to 0', () => {
    const random = createSeededRandom(1);
    const logs = Array.from({ length: 100 }, () => logGamma(1e-4, random));
    expect(logs.every(Number.isFinite)).toBe(true);
    expect(logs.some((log) => Math.exp(log) === 0)).toBe(true);
  });

  it('draws proportions that sum to 1, with mean alpha_k / sum(alpha)', () => {
    const random = createSeededRandom(7);
    const alphas = [0.5, 1, 2.5];
    const sums = [0, 0, 0];
    for (let i = 0; i < 10_000; i++) {
      const p = sampleDirichlet(alphas, random);
      expect(Math.abs(p.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-12);
      p.forEach((x, k) => (sums[k]! += x));
    }
    sums.forEach((sum, k) => expect(Math.abs(sum / 10_000 - alphas[k]! / 4)).toBeLessThan(0.01));
    expect(Array.from(sampleDirichlet([1e-6, 1e-6], random)).every(Number.isFinite)).toBe(true);
  });

  it('is deterministic per seed', () => {
    expect(sampleDirichlet([0.1, 0.2, 3], createSeededRandom(5))).toEqual(sampleDirichlet([0.1, 0.2, 3], createSeededRandom(5)));
  });
});
