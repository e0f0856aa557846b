// Federated evaluation and q-FedAvg in the coordinator's config and options: defaults, value
// checks, and the two privacy refusals (per-client metrics under secagg/dp; qfedavg under secagg/dp).
import { ShoalError } from '@shoal/protocol';
import { fedAvg, qFedAvg } from '@shoal/strategy';
import { describe, expect, it } from 'vitest';
import { composeConfig, coordinatorOptions, type ConfigSections } from '../src/config.js';
import { FEDERATED_EVALUATION_DEFAULTS } from '../src/federated-evaluation.js';
import { resolveOptions } from '../src/options.js';
import { MODEL } from './scripted-cohort.js';

const NO_SECTIONS: ConfigSections<object> = { keys: [], parse: () => ({}) };
const read = (raw: object) => composeConfig(raw, NO_SECTIONS);

function invalidConfig(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ShoalError);
    expect((error as ShoalError).code).toBe('INVALID_CONFIG');
    return (error as ShoalError).message;
  }
  throw new Error('expected INVALID_CONFIG');
}

describe('federatedEvaluation in a config file', () => {
  it('is off when absent, and an empty object turns it on with the defaults', () => {
    expect(read({}).federatedEvaluation).toBeUndefined();
    expect(read({ federatedEvaluation: {} }).federatedEvaluation).toEqual(FEDERATED_EVALUATION_DEFAULTS);
    expect(FEDERATED_EVALUATION_DEFAULTS).toEqual({ every: 1, clients: 'all', timeoutMs: 30_000, allowUnprotectedMetrics: false });
  });

  it('reads every key and passes them to the coordinator', () => {
    const config = read({ federatedEvaluation: { every: 3, clients: 7, timeoutMs: 500 } });
    expect(config.federatedEvaluation).toEqual({ every: 3, clients: 7, timeoutMs: 500, allowUnprotectedMetrics: false });
    expect(coordinatorOptions(config).federatedEvaluation).toEqual(config.federatedEvaluation);
  });

  it('refuses bad values naming the key', () => {
    expect(invalidConfig(() => read({ federatedEvaluation: { every: 0 } }))).toMatch(/^federatedEvaluation\.every must be an integer/);
    expect(invalidConfig(() => read({ federatedEvaluation: { clients: 'some' } }))).toMatch(/^federatedEvaluation\.clients must be an integer/);
    expect(invalidConfig(() => read({ federatedEvaluation: { allowUnprotectedMetrics: 'yes' } }))).toMatch(/^federatedEvaluation\.allowUnprotectedMetrics must be true or false/);
    expect(invalidConfig(() => read({ federatedEvaluation: { everyRound: true } }))).toMatch(/federatedEvaluation.*everyRound/);
  });

  it('refuses per-client metrics under secagg or dp unless allowUnprotectedMetrics names the risk', () => {
    expect(invalidConfig(() => read({ clientsPerRound: 10, dp: { mode: 'central' }, federatedEvaluation: {} }))).toBe(
      "federatedEvaluation sends each client's loss and accuracy in the clear, outside the protection of dp.mode: set federatedEvaluation.allowUnprotectedMetrics to true to accept that, or remove federatedEvaluation",
    );
    expect(read({ clientsPerRound: 10, dp: { mode: 'central' }, federatedEvaluation: { allowUnprotectedMetrics: true } }).federatedEvaluation?.allowUnprotectedMetrics).toBe(true);
  });

  it('applies the same rule to options built in code', () => {
    const base = { model: MODEL, tokens: ['t'], rounds: 1, train: { epochs: 1, batchSize: 1, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const, strategy: fedAvg() };
    expect(resolveOptions({ ...base, federatedEvaluation: { clients: 2 } }).federatedEvaluation).toEqual({ ...FEDERATED_EVALUATION_DEFAULTS, clients: 2 });
    expect(invalidConfig(() => resolveOptions({ ...base, clientsPerRound: 5, secagg: { mode: 'secagg' }, federatedEvaluation: {} }))).toMatch(/outside the protection of secagg\.mode/);
  });
});

describe('qfedavg in a config file', () => {
  it('defaults strategy.lipschitz to 1 / train.learningRate, as the paper\'s code does', () => {
    const config = read({ strategy: { name: 'qfedavg', q: 0.5 }, train: { learningRate: 0.25 } });
    expect(config.strategy).toEqual({ name: 'qfedavg', serverLearningRate: 1, q: 0.5 });
    // The built strategy steps with L = 4: one client, loss 1, delta (1, 0, …): h = 0.5·1·16·1 + 4 = 12, step = 4/12.
    const strategy = coordinatorOptions(config).strategy;
    const delta = new Float32Array(MODEL.weights.length);
    delta[0] = 1;
    const aggregate = strategy.robustAggregate!([{ delta, weight: 1, initialLoss: 1 }]);
    expect(aggregate.weightedSum[0]! / aggregate.totalWeight).toBeCloseTo(4 / 12, 6);
  });

  it('is refused under secure aggregation and DP, like the robust rules', () => {
    expect(invalidConfig(() => read({ clientsPerRound: 10, strategy: { name: 'qfedavg' }, dp: { mode: 'central' } }))).toMatch(/^strategy\.name qfedavg cannot run with dp\.mode central/);
    const base = { model: MODEL, tokens: ['t'], rounds: 1, train: { epochs: 1, batchSize: 1, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const };
    expect(invalidConfig(() => resolveOptions({ ...base, clientsPerRound: 5, strategy: qFedAvg({ lipschitz: 10 }), secagg: { mode: 'secagg' } }))).toMatch(/^strategy\.name qfedavg needs each client's update/);
  });
});
