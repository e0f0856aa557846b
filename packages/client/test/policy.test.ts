/**
 * The client's privacy policy as pure functions: the promise URL, the noise multiplier a client can
 * verify itself, and the shortfalls of a round against a policy and a published promise. Rounds are
 * built as `train` messages the way the coordinator builds them; properties run under fast-check.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PrivacyPromise, TrainMessage } from '@shoal/protocol';
import { planRound } from '../src/common/consent.js';
import { evaluationShortfalls, fetchPromise, policyShortfalls, promiseUrl, verifiedNoiseMultiplier, type ClientPolicy, type PromiseState } from '../src/common/policy.js';

const NUM_PARAMS = 15;
const CONFIG = { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;
const SECAGG = { mode: 'secagg', index: 1, threshold: 3, degree: 4, bound: 10, scale: 1000, maxWeight: 1, sessionId: 's' } as const;

/** A plain round without DP. */
const plainRound: TrainMessage = { type: 'train', round: 1, modelVersion: 'r:0', config: CONFIG, deadlineMs: 1000, privacy: { dpMode: 'off' } };

/** A central-DP round stating z and ε. */
function centralRound(z: number, budget?: number, spent = 0): TrainMessage {
  return { ...plainRound, config: { ...CONFIG, clipNorm: 1 }, privacy: { dpMode: 'central', noiseMultiplier: z, epsilonSpent: spent, delta: 1e-5, ...(budget !== undefined ? { epsilonBudget: budget } : {}) } };
}

/** A distributed-DP round under SecAgg with threshold t, whose clients add noiseStd each, stating z. */
function distributedRound(noiseStd: number, clipNorm: number, threshold: number, statedZ: number): TrainMessage {
  return {
    ...plainRound,
    config: { ...CONFIG, clipNorm, noiseStd },
    secagg: { ...SECAGG, threshold, degree: Math.max(threshold, 4) },
    privacy: { dpMode: 'distributed', noiseMultiplier: statedZ, epsilonSpent: 0 },
  };
}

function promised(overrides: Partial<PrivacyPromise> = {}): PromiseState {
  return {
    promise: {
      formatVersion: 1,
      secureAggregation: { mode: 'off' },
      differentialPrivacy: { mode: 'central', noiseMultiplier: 1, clipNorm: 1, adaptiveClipping: false, delta: 1e-5, epsilonBudget: 8 },
      metricsInClear: true,
      evaluationInClear: false,
      leavesDevice: ['the model update, in the clear'],
      retention: { keepCheckpoints: 3, maxCheckpointAgeMs: null, resumeTokenTtlMs: 600_000, roundsPerClient: 1000 },
      ...overrides,
    },
  };
}

const check = (policy: ClientPolicy, train: TrainMessage, promise?: PromiseState) => policyShortfalls(policy, train, planRound(train, NUM_PARAMS), promise);

describe('promiseUrl', () => {
  it('maps ws to http and wss to https on the same host and port, dropping path and query', () => {
    fc.assert(
      fc.property(fc.constantFrom('ws', 'wss', 'WS'), fc.domain(), fc.option(fc.integer({ min: 1, max: 65_535 }), { nil: undefined }), fc.webPath(), (scheme, host, port, path) => {
        const authority = port === undefined ? host : `${host}:${port}`;
        const url = promiseUrl(`${scheme}://${authority}${path}?token=secret`);
        expect(url).toBe(`${scheme.toLowerCase() === 'wss' ? 'https' : 'http'}://${authority}/.well-known/shoal-privacy.json`);
      }),
    );
  });

  it('has no URL for transports without an HTTP origin', () => {
    expect(promiseUrl('memory://coordinator')).toBeUndefined();
  });
});

describe('fetchPromise', () => {
  it('turns a failed fetch and an invalid body into a problem, never a throw', async () => {
    const signal = new AbortController().signal;
    const failed = await fetchPromise('ws://127.0.0.1:1', async () => Promise.reject(new Error('ECONNREFUSED')), signal);
    expect(failed).toEqual({ problem: expect.stringContaining('ECONNREFUSED') });
    const invalid = await fetchPromise('ws://127.0.0.1:1', async () => ({ formatVersion: 1 }), signal);
    expect(invalid).toEqual({ problem: expect.stringContaining('promise.secureAggregation is not an object') });
    const good = promised();
    const read = await fetchPromise('wss://example.org', async (url) => {
      expect(url).toBe('https://example.org/.well-known/shoal-privacy.json');
      return JSON.parse(JSON.stringify('promise' in good ? good.promise : null));
    }, signal);
    expect(read).toEqual(good);
  });
});

describe('verifiedNoiseMultiplier', () => {
  it('recovers z from the per-client noise z·C/√t of distributed DP, and nothing without device noise', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.1, max: 10, noNaN: true }), fc.double({ min: 0.01, max: 100, noNaN: true }), fc.integer({ min: 2, max: 500 }), (z, clipNorm, t) => {
        const train = distributedRound((z * clipNorm) / Math.sqrt(t), clipNorm, t, z);
        expect(verifiedNoiseMultiplier(train)).toBeCloseTo(z, 9);
        // The same z passes a policy asking for exactly it; a little more fails.
        expect(check({ minNoiseMultiplier: z }, train)).toEqual([]);
        expect(check({ minNoiseMultiplier: z * 1.001 }, train)).toHaveLength(1);
      }),
    );
    expect(verifiedNoiseMultiplier(centralRound(1))).toBeUndefined();
  });

  it('counts only what it can verify: a coordinator that states z but sends less noise falls short', () => {
    const lying = distributedRound(0.2, 1, 4, 1); // verified z = 0.2·2/1 = 0.4
    expect(check({ minNoiseMultiplier: 1 }, lying)).toEqual([expect.stringMatching(/noise multiplier 0\.4 \(verified from noiseStd, clipNorm and the SecAgg threshold\) is below the policy's minimum 1/)]);
  });
});

describe('policyShortfalls against the policy', () => {
  it('declines a plain round when secure aggregation is required, and a round in the clear when metrics must not leave', () => {
    expect(check({ requireSecureAggregation: true }, plainRound)).toEqual(['the round is not securely aggregated; the policy requires secure aggregation']);
    expect(check({ noMetricsInClear: true }, plainRound)).toEqual([expect.stringContaining('training metrics in the clear')]);
    expect(check({ requireSecureAggregation: true, noMetricsInClear: true }, distributedRound(1, 1, 3, 1))).toEqual([]);
  });

  it('declines rounds without DP, or with too little noise or too large an ε budget', () => {
    expect(check({ minNoiseMultiplier: 0.5 }, plainRound)).toEqual([expect.stringContaining('no differential privacy')]);
    expect(check({ minNoiseMultiplier: 1.2 }, centralRound(1))).toEqual([expect.stringContaining('as the coordinator states it')]);
    expect(check({ maxEpsilon: 4 }, centralRound(1))).toEqual([expect.stringContaining('sets no ε budget')]);
    expect(check({ maxEpsilon: 4 }, centralRound(1, 8))).toEqual([expect.stringContaining('ε budget 8 exceeds')]);
    expect(check({ maxEpsilon: 4 }, centralRound(1, 3))).toEqual([]);
  });

  it('declines every round when a required promise could not be fetched', () => {
    expect(check({ requirePromise: true }, centralRound(1), { problem: 'HTTP 404' })).toEqual([expect.stringContaining('HTTP 404')]);
    expect(check({ requirePromise: true }, centralRound(1, 8), promised())).toEqual([]);
  });

  it('is monotone: a round that meets a policy meets every weaker one', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 5, noNaN: true }), fc.double({ min: 0, max: 5, noNaN: true }), fc.double({ min: 0.1, max: 20, noNaN: true }), (z, minimum, budget) => {
        const train = centralRound(z, budget);
        if (check({ minNoiseMultiplier: minimum, maxEpsilon: budget }, train).length === 0) {
          expect(check({ minNoiseMultiplier: minimum / 2, maxEpsilon: budget * 2 }, train)).toEqual([]);
        }
      }),
    );
  });
});

describe('policyShortfalls against the promise', () => {
  it('declines a round whose stated noise multiplier is below the promised one, and passes one that keeps it', () => {
    expect(check({}, centralRound(1, 8), promised())).toEqual([]);
    expect(check({}, centralRound(0.5, 8), promised())).toEqual(['the round\'s noise multiplier 0.5 is below the promised 1']);
  });

  it('declines a plain round when SecAgg is promised, a weaker SecAgg mode, and a lower threshold', () => {
    const secaggPromise = (threshold?: number) => promised({ secureAggregation: { mode: 'secagg', ...(threshold !== undefined ? { threshold } : {}) }, differentialPrivacy: { mode: 'off' } });
    expect(check({}, plainRound, secaggPromise())).toEqual([expect.stringContaining('not securely aggregated, but the coordinator promises secagg')]);
    const secaggPlus = { ...plainRound, secagg: { ...SECAGG, mode: 'secagg+' as const } };
    expect(check({}, secaggPlus, secaggPromise())).toEqual([expect.stringContaining('uses secagg+')]);
    const lowThreshold = { ...plainRound, secagg: SECAGG };
    expect(check({}, lowThreshold, secaggPromise(4))).toEqual([expect.stringContaining('threshold 3 is below the promised 4')]);
  });

  it('declines a round that does not state its privacy when DP is promised, or a larger ε budget', () => {
    const { privacy: _dropped, ...unstated } = centralRound(1, 8);
    expect(check({}, unstated, promised())).toEqual([expect.stringContaining('does not state its privacy settings')]);
    expect(check({}, centralRound(1), promised())).toEqual([expect.stringContaining('ε budget is unlimited')]);
    expect(check({}, centralRound(1, 9), promised())).toEqual([expect.stringContaining('ε budget 9, more than the promised 8')]);
  });

  it('declines metrics in the clear when the promise rules them out', () => {
    expect(check({}, centralRound(1, 8), promised({ metricsInClear: false }))).toEqual([expect.stringContaining('which the coordinator promises it does not')]);
  });
});

describe('evaluationShortfalls', () => {
  it('refuses federated evaluation under noMetricsInClear, or when the promise rules it out', () => {
    expect(evaluationShortfalls(undefined, undefined)).toEqual([]);
    expect(evaluationShortfalls({ noMetricsInClear: true }, undefined)).toHaveLength(1);
    expect(evaluationShortfalls({}, promised())).toEqual(['the coordinator promises no federated evaluation']);
    expect(evaluationShortfalls({}, promised({ evaluationInClear: true }))).toEqual([]);
  });
});
