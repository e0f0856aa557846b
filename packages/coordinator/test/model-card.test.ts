import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledgerEpsilon, verifyLedger, type LedgerEntry, type RoundEntry } from '../src/ledger.js';
import { describedCardInput, groupFairness, modelCard, modelCardMarkdown, runDescription } from '../src/model-card.js';
import type { RoundMetrics } from '../src/round.js';
import { DELTA, dpSettings, writeSampleLedger } from './ledger-fixture.js';

let dir: string;
let dpLedger: readonly LedgerEntry[];
let plainLedger: readonly LedgerEntry[];

function entriesOf(text: string): readonly LedgerEntry[] {
  const result = verifyLedger(text);
  if (!result.ok) throw new Error(`fixture ledger invalid: ${result.problem}`);
  return result.entries;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shoal-card-'));
  await mkdir(join(dir, 'dp'));
  dpLedger = entriesOf(await writeSampleLedger(join(dir, 'dp')));
  await mkdir(join(dir, 'plain'));
  plainLedger = entriesOf(await writeSampleLedger(join(dir, 'plain'), 6, dpSettings({ dp: null, secagg: null, sampling: 'fixed' })));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const RUN = runDescription(
  { name: 'digits-dp', model: { builtin: 'mlp', inputShape: [64], numClasses: 10 }, simulation: { dataset: 'digits' } },
  { kind: 'dirichlet', params: { alpha: 0.5 }, sizes: [30, 50, 40] },
);

function metrics(round: number, accuracy: number): RoundMetrics {
  return { round, status: 'committed', selected: 5, participants: 4, dropouts: 1, modelVersion: `r:${round}`, accuracy, loss: 1 - accuracy, bytesUp: 0, bytesDown: 0, durationMs: 0, epsilon: 123 };
}

describe('modelCard', () => {
  it('takes every privacy figure from the ledger, none from the metrics', () => {
    const card = modelCard(describedCardInput(RUN, dpLedger, [metrics(1, 0.5), metrics(2, 0.75)]));
    const rounds = dpLedger.filter((e): e is RoundEntry => e.type === 'round');
    const charged = rounds.filter((e) => e.q !== null);
    const { privacy } = card;
    expect(privacy.epsilon).toBe(ledgerEpsilon(dpLedger)); // not the metrics' 123
    expect(privacy.delta).toBe(DELTA);
    expect(privacy.accountant).toBe('RDP, Poisson-subsampled Gaussian');
    expect(privacy.noiseMode).toBe('central');
    expect(privacy.noiseMultipliers).toEqual([1.1]);
    expect(privacy.clipNorms).toEqual([1]);
    expect(privacy.sampleRates).toEqual([...new Set(charged.map((e) => e.q))].sort());
    expect([privacy.roundsCommitted, privacy.roundsAborted, privacy.roundsCharged]).toEqual([9, 1, 9]);
    expect(privacy.secagg).toMatchObject({ mode: 'secagg+', thresholds: [3], fewestSurvivors: 1 });
    expect(privacy.modelHash).toBe(dpLedger.at(-1)!.modelHash);
    expect(card.model_details.version.name).toBe(privacy.modelHash);
    const markdown = modelCardMarkdown(card);
    expect(markdown).toContain(`Client-level ε = ${Number(privacy.epsilon!.toPrecision(6))}, δ = ${DELTA}`);
    expect(markdown).toContain('- Accountant: RDP, Poisson-subsampled Gaussian');
    expect(markdown).toContain('secagg+, threshold 3, fewest survivors 1');
    expect(markdown).not.toContain('123');
  });

  it('has the Model Card Toolkit sections, the central accuracy of the last committed round, and says when there are no groups', () => {
    const card = modelCard(describedCardInput(RUN, dpLedger, [metrics(1, 0.5), metrics(2, 0.75)]));
    expect(Object.keys(card)).toEqual(['model_details', 'model_parameters', 'quantitative_analysis', 'considerations', 'privacy']);
    expect(card.model_parameters.model_architecture).toBe('built-in mlp, 15 parameters');
    expect(card.model_parameters.data[0]).toEqual({ name: 'digits', description: '3 clients, partition dirichlet (alpha 0.5), 30 to 50 examples per client.' });
    expect(card.quantitative_analysis.performance_metrics).toContainEqual({ type: 'accuracy', value: 0.75, slice: 'central test set, round 2' });
    expect(card.considerations.limitations[0]!.description).toMatch(/^The data has no group attribute/);
    expect(card.considerations.ethical_considerations[1]!.mitigation_strategy).toMatch(/only the sum .* Residual trust/);
  });

  it('says plainly that there is no formal privacy guarantee with DP off', () => {
    const card = modelCard(describedCardInput(RUN, plainLedger));
    expect(card.privacy).toMatchObject({ differentialPrivacy: false, epsilon: null, delta: null, accountant: null, noiseMultipliers: [], secagg: null });
    expect(card.privacy.statement).toMatch(/^No differential privacy: no formal privacy guarantee\./);
    const markdown = modelCardMarkdown(card);
    expect(markdown).toContain('No differential privacy: no formal privacy guarantee');
    expect(markdown).toContain('- Differential privacy: none: no formal privacy guarantee');
    expect(markdown).not.toContain('ε =');
    expect(markdown).toContain('Fixed-size cohorts, accounted as if');
  });

  it('lists per-group accuracy, the gap and the equal-opportunity difference when given groups', () => {
    const groups = groupFairness(
      [
        { group: 'a', label: 1, predicted: 1 },
        { group: 'a', label: 0, predicted: 0 },
        { group: 'b', label: 1, predicted: 0 },
        { group: 'b', label: 1, predicted: 1 },
      ],
      'a',
      1,
    );
    expect(groups).toEqual({ accuracy: { a: 1, b: 0.5 }, accuracyGap: 0.5, equalOpportunityDifference: -0.5, privileged: 'a', favorableLabel: 1 });
    const card = modelCard({ ...describedCardInput(RUN, dpLedger), groups });
    expect(card.quantitative_analysis.performance_metrics).toContainEqual({ type: 'equal opportunity difference', value: -0.5, slice: 'TPR(unprivileged) − TPR(a), label 1' });
    expect(card.considerations.limitations[0]!.description).not.toMatch(/no group attribute/);
  });
});

describe('groupFairness (properties)', () => {
  const example = fc.record({ group: fc.constantFrom('a', 'b', 'c'), label: fc.integer({ min: 0, max: 2 }), predicted: fc.integer({ min: 0, max: 2 }) });

  it('accuracies lie in [0, 1], the gap is max − min, the difference in [−1, 1] or NaN; perfect predictions give gap 0 and difference 0', () => {
    fc.assert(
      fc.property(fc.array(example, { minLength: 1, maxLength: 60 }), (examples) => {
        const result = groupFairness(examples, 'a', 1);
        const values = Object.values(result.accuracy);
        for (const value of values) expect(value >= 0 && value <= 1).toBe(true);
        expect(result.accuracyGap).toBeCloseTo(Math.max(...values) - Math.min(...values), 12);
        const eod = result.equalOpportunityDifference;
        expect(Number.isNaN(eod) || (eod >= -1 && eod <= 1)).toBe(true);
        const perfect = groupFairness(examples.map((e) => ({ ...e, predicted: e.label })), 'a', 1);
        expect(perfect.accuracyGap).toBe(0);
        expect(Number.isNaN(perfect.equalOpportunityDifference) || perfect.equalOpportunityDifference === 0).toBe(true);
      }),
      { seed: 21 },
    );
  });
});
