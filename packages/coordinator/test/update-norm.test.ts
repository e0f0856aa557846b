import { describe, expect, it } from 'vitest';
import { l2Norm } from '@shoal/dp';
import { FakeClock } from '@shoal/testkit';
import { maxUpdateNormFor } from '../src/norm-bound.js';
import type { CoordinatorOptions } from '../src/options.js';
import { PrivacyPolicy } from '../src/privacy.js';
import { runRound } from '../src/run-round.js';
import { D, MEMBERS, MODEL, ScriptedCohort, harness, initialState, setup } from './scripted-cohort.js';

describe('maxUpdateNormFor', () => {
  it("'auto' is the global model's norm (at least 1) in a first round, and at most twice the previous median after", () => {
    const weights = Float32Array.of(3, 4); // ‖w‖ = 5
    expect(maxUpdateNormFor('auto', weights)).toBe(5);
    expect(maxUpdateNormFor('auto', new Float32Array(2))).toBe(1); // a zero model can still move
    expect(maxUpdateNormFor('auto', weights, 0.5)).toBe(1);
    // A hostile majority that inflated the median gets no more than the model-norm bound.
    expect(maxUpdateNormFor('auto', weights, 1e30)).toBe(5);
  });

  it('a number is the bound, whatever the model', () => {
    expect(maxUpdateNormFor(0.25, Float32Array.of(3, 4), 10)).toBe(0.25);
  });
});

describe('the norm bound in a plain round', () => {
  const bounded = (maxUpdateNorm: number, extra: Partial<CoordinatorOptions> = {}) => setup({ maxUpdateNorm, minClients: 1, ...extra });

  it('scales an update above the bound down to it, counts it, and reports the median norm as sent', async () => {
    const clock = new FakeClock();
    // c1 is honest (norm 1 after the fill below); c2 sends finite values that would dominate or overflow.
    const delta = (member: string) => (member === 'c1' ? Float32Array.of(0.6, 0.8, 0, 0, 0, 0) : new Float32Array(D).fill(3e38));
    const cohort = new ScriptedCohort(['c1', 'c2'], clock, undefined, delta, undefined, 1);
    const { ports } = harness(cohort, clock);
    const { state, record } = await runRound(ports, bounded(2, { clientsPerRound: 2 }), initialState(), new AbortController().signal);
    // The attacker moves the mean by at most bound · weight / totalWeight = 2 · 1/2.
    const honestPart = Float32Array.of(0.6, 0.8, 0, 0, 0, 0).map((v) => v / 2);
    const attackerPart = Array.from(state.weights, (w, i) => w - MODEL.weights[i]! - honestPart[i]!);
    expect(l2Norm(attackerPart)).toBeLessThanOrEqual(1 + 1e-6);
    expect(l2Norm(attackerPart)).toBeGreaterThan(0.999);
    expect(record.metrics).toMatchObject({ maxUpdateNorm: 2, clippedUpdates: 1 });
    // The median of the norms 1 and √6 · 3e38 (rounded to Float32) as they arrived, before the bound.
    expect(record.metrics.medianUpdateNorm! / ((1 + Math.sqrt(6) * Math.fround(3e38)) / 2)).toBeCloseTo(1, 6);
  });

  it('uses the DP clip norm as the bound when the round has one', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock);
    const { ports } = harness(cohort, clock);
    const dp = { mode: 'central', noiseMultiplier: 0, clipNorm: 0.5 } as const;
    const run = bounded(100, { dp });
    const { record } = await runRound(ports, { ...run, privacy: new PrivacyPolicy(dp, MEMBERS.length, 1, false) }, { ...initialState(), privacy: new PrivacyPolicy(dp, MEMBERS.length, 1, false).initialState() }, new AbortController().signal);
    expect(record.metrics).toMatchObject({ maxUpdateNorm: 0.5, clippedUpdates: MEMBERS.length });
  });

  it('aborts when every update claims numExamples 0: there is no mean to take', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(['c1', 'c2'], clock, undefined, undefined, undefined, 0);
    const { ports } = harness(cohort, clock);
    const { record } = await runRound(ports, bounded(2, { clientsPerRound: 2 }), initialState(), new AbortController().signal);
    expect(record.reason).toBe('the 2 updates carry a total weight of 0 (every client reported numExamples 0); there is no mean to take');
  });
});
