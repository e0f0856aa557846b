import { describe, expect, it } from 'vitest';
import { deriveSecAggParams } from '../src/index.js';
import type { SecAggParams } from '../src/index.js';
import type { Dropouts, RoundOutcome } from './harness.js';
import { runRound } from './harness.js';

// Whole rounds through real clients and a real server: masks cancel exactly, with and without
// dropouts at every stage, and too few clients abort before anything is revealed.

const secagg = deriveSecAggParams({ mode: 'secagg', cohortSize: 8, numParams: 300, bound: 4, maxWeight: 50 });
const secaggPlus = deriveSecAggParams({ mode: 'secagg+', cohortSize: 12, numParams: 300, bound: 4, maxWeight: 50 });

function expectExactSum(outcome: RoundOutcome, survivors: number): void {
  expect(outcome.abort, outcome.abort?.reason).toBeUndefined();
  const result = outcome.result!;
  expect(result.count).toBe(survivors);
  // Exact: the unmasked sum is the sum of the survivors' encoded inputs, word for word, mod 2^32.
  expect(Array.from(result.encodedSum)).toEqual(Array.from(outcome.expectedEncodedSum));
  expect(result.totalWeight).toBe(outcome.weights.reduce((a, b) => a + b, 0));
  // Decoded: within count/scale of the float sum.
  const tolerance = result.count / outcome.params.scale;
  let worst = 0;
  for (let i = 0; i < result.sum.length; i++) worst = Math.max(worst, Math.abs(result.sum[i]! - outcome.plainSum[i]!));
  expect(worst).toBeLessThanOrEqual(tolerance);
  expect(worst).toBeGreaterThan(0); // stochastic rounding did happen: the check above is not vacuous
}

describe('the derived parameters used here', () => {
  it('are t = 5 of n = 8 for SecAgg and k = 11, t = 7 of n = 12 for SecAgg+', () => {
    expect([secagg.degree, secagg.threshold]).toEqual([8, 5]);
    expect([secaggPlus.degree, secaggPlus.threshold]).toEqual([11, 7]);
  });
});

describe('masks cancel exactly', () => {
  it.each([
    ['SecAgg', secagg],
    ['SecAgg+', secaggPlus],
  ])('%s without dropouts', async (_name, params) => {
    const outcome = await runRound({ params });
    expectExactSum(outcome, params.cohortSize);
    expect(outcome.revealers).toHaveLength(params.cohortSize);
  });

  // SecAgg tolerates n − t = 3 dropouts at any stage. In SecAgg+ what counts is each
  // neighbourhood: with k = 11 of n = 12 every client misses one client, so 4 = n − t − 1 dropouts
  // always leave each secret t holders (n − t is below, with a smaller degree).
  const cases: [string, SecAggParams, Dropouts, number][] = [];
  const stages = ['afterAdvertise', 'afterShare', 'afterMasked', 'duringUnmask'] as const;
  for (const stage of stages) {
    // Dropouts before the masked input shrink the sum; later ones only withhold reveals.
    const survivors = (n: number, dropped: number[]) => (stage === 'afterAdvertise' || stage === 'afterShare' ? n - dropped.length : n);
    for (const dropped of [[3], [2, 5], [1, 4, 8]]) cases.push([`SecAgg, ${dropped.length} ${stage}`, secagg, { [stage]: dropped }, survivors(8, dropped)]);
    for (const dropped of [[12], [1, 6, 11], [2, 3, 9, 10]]) cases.push([`SecAgg+, ${dropped.length} ${stage}`, secaggPlus, { [stage]: dropped }, survivors(12, dropped)]);
  }
  cases.push(['SecAgg, one at each stage', secagg, { afterAdvertise: [1], afterShare: [2], afterMasked: [3] }, 6]);
  cases.push(['SecAgg+, one at each stage and one late reveal', secaggPlus, { afterAdvertise: [4], afterShare: [7], afterMasked: [9], duringUnmask: [1] }, 10]);

  it.each(cases)('%s', async (_name, params, dropouts, survivors) => {
    const outcome = await runRound({ params, dropouts, seed: survivors * 31 + params.cohortSize });
    expectExactSum(outcome, survivors);
    const silent = [...(dropouts.afterMasked ?? []), ...(dropouts.duringUnmask ?? [])];
    expect(outcome.revealers).toHaveLength(survivors - silent.length);
    // The masked close announced every client that shared and then dropped.
    expect(outcome.maskedClose!.dropped).toEqual([...(dropouts.afterShare ?? [])].sort((a, b) => a - b));
  });

  it('SecAgg+ with as many dropouts after advertising as leave every survivor t − 1 surviving neighbours', async () => {
    // With 2t ≥ k + 2 no t clients are mutual neighbours on the ring (t − 1 > (k − 1)/2), so the
    // fewest survivors a SecAgg+ round can finish with is more than t. Drop greedily while each
    // remaining client keeps t − 1 remaining neighbours.
    const params = deriveSecAggParams({ mode: 'secagg+', cohortSize: 12, numParams: 50, degree: 7, maxDropout: 0.2, bound: 4, maxWeight: 50 });
    expect(params.threshold).toBe(5);
    const probe = await runRound({ params, seed: 5 });
    const remaining = new Set(Array.from({ length: params.cohortSize }, (_, i) => i + 1));
    const keepsEnough = (set: Set<number>) => [...set].every((u) => probe.server.neighboursOf(u).filter((v) => set.has(v)).length >= params.threshold - 1);
    for (const candidate of [...remaining]) {
      const without = new Set([...remaining].filter((v) => v !== candidate));
      if (keepsEnough(without)) remaining.delete(candidate);
    }
    const dropped = Array.from({ length: params.cohortSize }, (_, i) => i + 1).filter((v) => !remaining.has(v));
    expect(dropped.length).toBeGreaterThan(0);
    const outcome = await runRound({ params, seed: 5, dropouts: { afterAdvertise: dropped } });
    expectExactSum(outcome, remaining.size);
  });

  it.each([
    ['SecAgg', secagg],
    ['SecAgg+', secaggPlus],
  ])('%s with pinned identities: clients that trust exactly the cohort\'s identity keys and a server that checks them finish an honest round', async (_name, params) => {
    const outcome = await runRound({ params, identities: true, dropouts: { afterShare: [2] } });
    expectExactSum(outcome, params.cohortSize - 1);
  });

  it('with the WebCrypto PRG on both sides too', async () => {
    const { webCryptoMaskPrg } = await import('../src/index.js');
    const outcome = await runRound({ params: secaggPlus, prg: webCryptoMaskPrg(), dropouts: { afterShare: [3] } });
    expectExactSum(outcome, 11);
  });
});

describe('too few clients abort the round before anything is revealed', () => {
  it.each<[string, SecAggParams, Dropouts, RoundOutcome['abortedAt']]>([
    ['SecAgg: t − 1 share', secagg, { afterAdvertise: [1, 2, 3, 4] }, 'closeShares'],
    ['SecAgg: t − 1 send masked inputs', secagg, { afterShare: [5, 6, 7, 8] }, 'closeMasked'],
    ['SecAgg+: t − 1 share', secaggPlus, { afterAdvertise: [1, 2, 3, 4, 5, 6] }, 'closeShares'],
    ['SecAgg+: n − t send no masked input, so some secret has t − 1 surviving holders', secaggPlus, { afterShare: [1, 2, 3, 4, 5] }, 'closeMasked'],
  ])('%s', async (_name, params, dropouts, abortedAt) => {
    const outcome = await runRound({ params, dropouts });
    expect(outcome.abort).toBeDefined();
    expect(outcome.abortedAt).toBe(abortedAt);
    expect(outcome.revealers).toEqual([]);
    expect(outcome.server.stage).toBe('aborted');
    // No client was asked to reveal: every client that got this far still waits in a pre-unmask stage.
    for (const client of outcome.clients) expect(['share', 'inbox', 'masked', 'confirm', 'unmask']).toContain(client.stage);
  });

  it('SecAgg: with only t − 1 confirmations, the round aborts at closeConfirm and nobody reveals', async () => {
    const outcome = await runRound({ params: secagg, dropouts: { afterMasked: [1, 2, 3, 4] } });
    expect(outcome.abortedAt).toBe('closeConfirm');
    expect(outcome.abort!.reason).toMatch(/share holders left to ask; the threshold is 5/);
    expect(outcome.revealers).toEqual([]);
    for (const index of [5, 6, 7, 8]) expect(outcome.clients[index - 1]!.stage).toBe('unmask'); // signed, never asked to reveal
  });

  it('SecAgg: with only t − 1 reveals, the coordinator cannot rebuild the masks and aborts', async () => {
    const outcome = await runRound({ params: secagg, dropouts: { afterMasked: [1, 2], duringUnmask: [3, 4] } });
    expect(outcome.abortedAt).toBe('finish');
    expect(outcome.abort!.reason).toMatch(/only 4 shares of the self-mask seed of 1 arrived; the threshold is 5/);
    expect(outcome.result).toBeUndefined();
  });

  it('fewer than t clients advertising aborts at closeAdvertise', async () => {
    const { SecAggServer, SecAggAbort } = await import('../src/index.js');
    const { nodeMaskPrg } = await import('../src/node.js');
    const server = new SecAggServer({ round: 1, sessionId: 's', params: secagg, indices: [1, 2, 3, 4, 5, 6, 7, 8], prg: nodeMaskPrg, shuffle: (x) => [...x] });
    expect(() => server.closeAdvertise()).toThrow(SecAggAbort);
    expect(server.stage).toBe('aborted');
  });
});
