// Federated evaluation and q-FedAvg on the wire: `evaluate`, `evaluation`, `update.initialLoss`
// and `train.config.reportInitialLoss`, strictly validated like every other message.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { closeCodeOf, decodeClientMessage, decodeCoordinatorMessage, encodeFrame, type EvaluationMessage, type UpdateMessage } from '../src/index.js';

const NUM_PARAMS = 4;
const limits = { numParams: NUM_PARAMS };
const evaluation: EvaluationMessage = { type: 'evaluation', round: 3, modelVersion: 'run:3', loss: 0.7, accuracy: 0.75, numExamples: 12 };
const update: UpdateMessage = { type: 'update', round: 3, modelVersion: 'run:2', numExamples: 5, delta: new Float32Array(NUM_PARAMS), metrics: { loss: 1, accuracy: 0.5, trainMs: 3 } };
const decodeEvaluation = (fields: Record<string, unknown>) => decodeClientMessage(encodeFrame({ ...evaluation, ...fields }), limits);

describe('evaluation (client → coordinator)', () => {
  it('round-trips', () => {
    expect(decodeEvaluation({})).toEqual({ ok: true, message: evaluation });
  });

  it('property: any finite loss ≥ 0, accuracy in [0, 1] and count ≥ 0 is accepted as sent', () => {
    const message = fc.record({
      type: fc.constant('evaluation' as const),
      round: fc.nat(),
      modelVersion: fc.string({ minLength: 1, maxLength: 256 }),
      loss: fc.double({ min: 0, max: 1e300, noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
      accuracy: fc.double({ min: 0, max: 1, noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
      numExamples: fc.nat(),
    });
    fc.assert(
      fc.property(message, (sent) => {
        expect(decodeClientMessage(encodeFrame(sent), limits)).toEqual({ ok: true, message: sent });
      }),
    );
  });

  it.each([
    ['loss', Number.NaN, 'NON_FINITE'],
    ['loss', Number.POSITIVE_INFINITY, 'NON_FINITE'],
    ['loss', -0.5, 'INVALID_MESSAGE'],
    ['accuracy', 1.5, 'INVALID_MESSAGE'],
    ['accuracy', -0.1, 'INVALID_MESSAGE'],
    ['accuracy', Number.NaN, 'NON_FINITE'],
    ['numExamples', -1, 'INVALID_MESSAGE'],
    ['numExamples', 2.5, 'INVALID_MESSAGE'],
    ['numExamples', '12', 'INVALID_MESSAGE'],
    ['modelVersion', '', 'INVALID_MESSAGE'],
  ])('refuses %s = %s with %s (a 4xxx close)', (field, value, code) => {
    const result = decodeEvaluation({ [field]: value });
    expect(result).toMatchObject({ ok: false, code, reason: expect.stringContaining(`evaluation.${field}`) });
    if (!result.ok) expect(closeCodeOf(result.code)).toBeGreaterThanOrEqual(4000);
  });

  it('property: an absurd accuracy or a negative loss is never accepted', () => {
    const outside = fc.oneof(fc.double({ min: 1.000001, max: 1e300 }), fc.double({ max: -1e-9, min: -1e300 }));
    fc.assert(
      fc.property(outside, fc.double({ max: -1e-9, min: -1e300 }), (accuracy, loss) => {
        expect(decodeEvaluation({ accuracy }).ok).toBe(false);
        expect(decodeEvaluation({ loss }).ok).toBe(false);
      }),
    );
  });

  it('refuses a missing or an unknown field', () => {
    const { numExamples: _dropped, ...missing } = evaluation;
    expect(decodeClientMessage(encodeFrame(missing), limits)).toMatchObject({ ok: false, code: 'INVALID_MESSAGE', reason: 'evaluation.numExamples is missing' });
    expect(decodeEvaluation({ weights: new Float32Array(NUM_PARAMS) })).toMatchObject({ ok: false, code: 'INVALID_MESSAGE', reason: 'evaluation has an unknown field "weights"' });
  });
});

describe('update.initialLoss', () => {
  it('round-trips, and is optional', () => {
    const decoded = decodeClientMessage(encodeFrame({ ...update, initialLoss: 2.25 }), limits);
    expect(decoded).toEqual({ ok: true, message: { ...update, initialLoss: 2.25 } });
    expect(decodeClientMessage(encodeFrame(update), limits)).toEqual({ ok: true, message: update });
  });

  it.each([
    [Number.NaN, 'NON_FINITE'],
    [Number.NEGATIVE_INFINITY, 'NON_FINITE'],
    [-1, 'INVALID_MESSAGE'],
    ['2', 'INVALID_MESSAGE'],
  ])('refuses %s with %s', (initialLoss, code) => {
    expect(decodeClientMessage(encodeFrame({ ...update, initialLoss }), limits)).toMatchObject({ ok: false, code, reason: expect.stringContaining('update.initialLoss') });
  });
});

describe('evaluate (coordinator → client)', () => {
  const evaluate = { type: 'evaluate', round: 3, modelVersion: 'run:3', deadlineMs: 5_000 } as const;

  it('round-trips with and without weights', () => {
    expect(decodeCoordinatorMessage(encodeFrame(evaluate), limits)).toEqual({ ok: true, message: evaluate });
    const withWeights = { ...evaluate, weights: Float32Array.from([1, 2, 3, 4]) };
    expect(decodeCoordinatorMessage(encodeFrame(withWeights), limits)).toEqual({ ok: true, message: withWeights });
  });

  it('refuses weights of the wrong length, non-finite weights and a non-positive deadline', () => {
    expect(decodeCoordinatorMessage(encodeFrame({ ...evaluate, weights: new Float32Array(3) }), limits)).toMatchObject({ ok: false, code: 'LENGTH_MISMATCH' });
    expect(decodeCoordinatorMessage(encodeFrame({ ...evaluate, weights: Float32Array.from([0, Number.NaN, 0, 0]) }), limits)).toMatchObject({ ok: false, code: 'NON_FINITE' });
    expect(decodeCoordinatorMessage(encodeFrame({ ...evaluate, deadlineMs: 0 }), limits)).toMatchObject({ ok: false, code: 'INVALID_MESSAGE' });
  });
});

describe('train.config.reportInitialLoss', () => {
  it('round-trips, and must be a boolean', () => {
    const config = { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0, reportInitialLoss: true } as const;
    const train = { type: 'train', round: 1, modelVersion: 'run:0', config, deadlineMs: 1_000 } as const;
    expect(decodeCoordinatorMessage(encodeFrame(train), limits)).toEqual({ ok: true, message: train });
    expect(decodeCoordinatorMessage(encodeFrame({ ...train, config: { ...config, reportInitialLoss: 1 } }), limits)).toMatchObject({ ok: false, code: 'INVALID_MESSAGE' });
  });
});
