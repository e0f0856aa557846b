import fc from 'fast-check';
import { createSeededRandom } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { expectShoalError } from '@shoal/testkit';
import { partitionIid } from '../src/index.js';

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
