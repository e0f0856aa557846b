// The unmask work cut into jobs: every mask lands in exactly one job, the jobs are balanced, and
// the partial sums of the jobs add up to the whole job's sum bit for bit, however it is cut.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PairMasks, UnmaskJob } from '../src/index.js';
import { SecAggAbort, WordSum, jobMasks, keyPairFromSecret, removeMasks, splitUnmaskJobs, unmaskPartial } from '../src/index.js';
import { nodeKeyAgreement, nodeMaskPrg } from '../src/node.js';
import { seededRandomBytes } from './harness.js';

const CONTEXT = { sessionId: 'session-u', round: 3 };

/** A job with `selfMasks` seeds and, per entry of `pairCounts`, a dropped client with that many surviving neighbours. */
function jobOf(selfMasks: number, pairCounts: readonly number[], words: number, seed: number): UnmaskJob {
  const randomBytes = seededRandomBytes(`unmask-job/${seed}`);
  let nextIndex = 1;
  const pairMasks: PairMasks[] = pairCounts.map((count) => ({
    dropped: nextIndex++,
    secretKey: randomBytes(32),
    survivors: Array.from({ length: count }, () => ({ index: nextIndex++, maskKey: keyPairFromSecret(randomBytes(32)).publicKey })),
  }));
  return { context: CONTEXT, words, selfMaskSeeds: Array.from({ length: selfMasks }, () => randomBytes(32)), pairMasks };
}

/** Every mask of a job as text, to compare the multiset of masks before and after a split. */
function maskList(job: UnmaskJob): string[] {
  const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
  return [...job.selfMaskSeeds.map((seed) => `self ${hex(seed)}`), ...job.pairMasks.flatMap((pair) => pair.survivors.map((u) => `pair ${pair.dropped} ${hex(pair.secretKey)} ${u.index} ${hex(u.maskKey)}`))].sort();
}

describe('splitUnmaskJobs', () => {
  it('puts every mask in exactly one non-empty job, with mask counts that differ by at most one', () => {
    fc.assert(
      fc.property(fc.nat(6), fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 5 }), fc.integer({ min: 1, max: 8 }), fc.nat(1_000), (selfMasks, pairCounts, parts, seed) => {
        const whole = jobOf(selfMasks, pairCounts, 4, seed);
        const jobs = splitUnmaskJobs(whole, parts);
        const counts = jobs.map(jobMasks);
        expect(jobs.length).toBe(Math.min(parts, jobMasks(whole)));
        expect(counts.every((count) => count > 0)).toBe(true);
        if (counts.length > 0) expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
        expect(jobs.flatMap(maskList).sort()).toEqual(maskList(whole));
        for (const job of jobs) expect(job).toMatchObject({ context: CONTEXT, words: 4 });
      }),
      { seed: 13, numRuns: 200 },
    );
  });

  it('refuses a part count that is not a positive integer', () => {
    expect(() => splitUnmaskJobs(jobOf(1, [], 4, 0), 0)).toThrow('parts must be an integer ≥ 1, got 0');
  });
});

describe('unmaskPartial', () => {
  it('gives partial sums that add up to the whole job removed in place, bit for bit, for any cut', async () => {
    const whole = jobOf(5, [3, 1, 4], 1_001, 7);
    const inPlace = new WordSum(whole.words);
    await removeMasks(inPlace, whole, nodeMaskPrg, nodeKeyAgreement);
    const expected = inPlace.toUint32Array();
    expect(expected.some((word) => word !== 0)).toBe(true);
    for (const parts of [1, 2, 3, 13]) {
      const total = new WordSum(whole.words);
      for (const job of splitUnmaskJobs(whole, parts)) total.add(await unmaskPartial(job, nodeMaskPrg, nodeKeyAgreement));
      expect(total.toUint32Array()).toEqual(expected);
    }
  });

  it('aborts with a reason naming both clients when a neighbour key gives no mask secret (a small-order point)', async () => {
    const job: UnmaskJob = { context: CONTEXT, words: 4, selfMaskSeeds: [], pairMasks: [{ dropped: 2, secretKey: new Uint8Array(32).fill(1), survivors: [{ index: 5, maskKey: new Uint8Array(32) }] }] };
    const failure = unmaskPartial(job, nodeMaskPrg, nodeKeyAgreement);
    await expect(failure).rejects.toBeInstanceOf(SecAggAbort);
    await expect(failure).rejects.toThrow('no mask secret between 2 and 5');
  });
});
