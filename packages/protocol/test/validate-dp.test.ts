import { describe, expect, it } from 'vitest';
import { decodeClientMessage, decodeCoordinatorMessage, encodeFrame, type TrainMessage, type UpdateMessage } from '../src/index.js';

const update: UpdateMessage = {
  type: 'update',
  round: 2,
  modelVersion: 'run:1',
  numExamples: 5,
  delta: new Float32Array([0.5, -0.5]),
  metrics: { loss: 1, accuracy: 0.5, trainMs: 3 },
};
const train: TrainMessage = {
  type: 'train',
  round: 2,
  modelVersion: 'run:1',
  config: { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
  deadlineMs: 1_000,
};

describe('differential-privacy fields on the wire', () => {
  it('round-trip: the unclipped bit of an update, the clip and noise settings of a train config', () => {
    const decoded = decodeClientMessage(encodeFrame({ ...update, unclipped: true }), { numParams: 2 });
    expect(decoded).toMatchObject({ ok: true, message: { unclipped: true } });
    const config = { ...train.config, clipNorm: 1.5, noiseStd: 0.25, bitNoiseStd: 0.1 };
    expect(decodeCoordinatorMessage(encodeFrame({ ...train, config }))).toMatchObject({ ok: true, message: { config } });
  });

  it('rejects a non-boolean unclipped bit and bad DP settings, naming the field', () => {
    expect(decodeClientMessage(encodeFrame({ ...update, unclipped: 1 }), { numParams: 2 })).toMatchObject({ ok: false, code: 'INVALID_MESSAGE', reason: expect.stringContaining('update.unclipped') });
    for (const [field, value] of [['clipNorm', 0], ['clipNorm', -1], ['noiseStd', -0.1], ['bitNoiseStd', 'x']] as const) {
      const decoded = decodeCoordinatorMessage(encodeFrame({ ...train, config: { ...train.config, [field]: value } }));
      expect(decoded.ok).toBe(false);
      expect(!decoded.ok && decoded.reason).toContain(`train.config.${field}`);
    }
    const nan = decodeCoordinatorMessage(encodeFrame({ ...train, config: { ...train.config, noiseStd: Number.NaN } }));
    expect(nan).toMatchObject({ ok: false, code: 'NON_FINITE' });
  });

  it('sizes masked inputs by the extra values the coordinator expects', () => {
    const masked = (words: number) => encodeFrame({ type: 'masked', round: 1, modelVersion: 'v', masked: new Uint32Array(words), metrics: update.metrics });
    expect(decodeClientMessage(masked(3), { numParams: 2 }).ok).toBe(true);
    expect(decodeClientMessage(masked(4), { numParams: 2 })).toMatchObject({ ok: false, code: 'LENGTH_MISMATCH' });
    expect(decodeClientMessage(masked(4), { numParams: 2, extraMaskedValues: 1 }).ok).toBe(true);
    expect(decodeClientMessage(masked(3), { numParams: 2, extraMaskedValues: 1 })).toMatchObject({ ok: false, code: 'LENGTH_MISMATCH' });
  });

  it('accepts a masked input without metrics (distributed DP sends none)', () => {
    const frame = encodeFrame({ type: 'masked', round: 1, modelVersion: 'v', masked: new Uint32Array(3) });
    const decoded = decodeClientMessage(frame, { numParams: 2 });
    expect(decoded.ok && decoded.message.type === 'masked' && decoded.message.metrics).toBeUndefined();
  });
});
