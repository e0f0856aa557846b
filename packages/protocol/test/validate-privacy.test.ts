// The privacy policy and data-subject requests on the wire: `train.privacy`,
// `welcome.subjectRequests`, `subject-access`, `forget`, `subject-data` and `forgotten`, strictly
// validated like every other message.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_ROUNDS_PER_CLIENT, decodeClientMessage, decodeCoordinatorMessage, encodeFrame, type RoundPrivacy, type SubjectDataMessage, type TrainMessage } from '../src/index.js';

const limits = { numParams: 4 };
const train: TrainMessage = { type: 'train', round: 2, modelVersion: 'run:1', config: { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0, clipNorm: 1 }, deadlineMs: 1000 };
const decodeTrain = (privacy: unknown) => decodeCoordinatorMessage(encodeFrame({ ...train, privacy }), limits);

describe('train.privacy', () => {
  it('property: any stated privacy with finite, non-negative numbers is accepted as sent', () => {
    const nonNegative = fc.double({ min: 0, max: 1e6, noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x));
    const privacy = fc.oneof(
      fc.constant<RoundPrivacy>({ dpMode: 'off' }),
      fc.record(
        {
          dpMode: fc.constantFrom('central' as const, 'distributed' as const),
          noiseMultiplier: nonNegative,
          // A noise multiplier of 0 spends an unbounded ε: Infinity is a valid ε spent.
          epsilonSpent: fc.oneof(nonNegative, fc.constant(Infinity)),
          epsilonBudget: fc.double({ min: 1e-3, max: 1e6, noNaN: true }),
          delta: fc.double({ min: 0, max: 1, noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
        },
        { requiredKeys: ['dpMode', 'noiseMultiplier', 'epsilonSpent'] },
      ),
    );
    fc.assert(
      fc.property(privacy, (stated) => {
        expect(decodeTrain(stated)).toEqual({ ok: true, message: { ...train, privacy: stated } });
      }),
    );
  });

  it.each([
    [{ dpMode: 'central' }, 'INVALID_MESSAGE', /lacks noiseMultiplier or epsilonSpent/],
    [{ dpMode: 'local', noiseMultiplier: 1, epsilonSpent: 0 }, 'INVALID_MESSAGE', /dpMode is not one of/],
    [{ dpMode: 'central', noiseMultiplier: -1, epsilonSpent: 0 }, 'INVALID_MESSAGE', /noiseMultiplier/],
    [{ dpMode: 'central', noiseMultiplier: 1, epsilonSpent: Number.NaN }, 'NON_FINITE', /epsilonSpent/],
    [{ dpMode: 'central', noiseMultiplier: 1, epsilonSpent: 0, epsilonBudget: 0 }, 'INVALID_MESSAGE', /epsilonBudget/],
    [{ dpMode: 'off', claims: 'nothing' }, 'INVALID_MESSAGE', /unknown field "claims"/],
  ])('rejects %j with %s', (privacy, code, reason) => {
    const decoded = decodeTrain(privacy);
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) {
      expect(decoded.code).toBe(code);
      expect(decoded.reason).toMatch(reason);
    }
  });
});

describe('data-subject requests', () => {
  it('accepts subject-access and forget with nothing but their type', () => {
    expect(decodeClientMessage(encodeFrame({ type: 'subject-access' }), limits)).toEqual({ ok: true, message: { type: 'subject-access' } });
    expect(decodeClientMessage(encodeFrame({ type: 'forget' }), limits)).toEqual({ ok: true, message: { type: 'forget' } });
    expect(decodeClientMessage(encodeFrame({ type: 'forget', clientId: 'c2' }), limits)).toMatchObject({ ok: false, code: 'INVALID_MESSAGE' });
  });

  it('round-trips subject-data and forgotten, and bounds the round lists', () => {
    const data: SubjectDataMessage = { type: 'subject-data', clientId: 'c1', resumeTokenHeld: true, selectedRounds: [1, 2], contributedRounds: [1] };
    expect(decodeCoordinatorMessage(encodeFrame(data))).toEqual({ ok: true, message: data });
    expect(decodeCoordinatorMessage(encodeFrame({ type: 'forgotten', clientId: 'c1' }))).toEqual({ ok: true, message: { type: 'forgotten', clientId: 'c1' } });
    const tooMany = { ...data, selectedRounds: Array.from({ length: MAX_ROUNDS_PER_CLIENT + 1 }, (_, i) => i + 1) };
    expect(decodeCoordinatorMessage(encodeFrame(tooMany))).toMatchObject({ ok: false, code: 'INVALID_MESSAGE' });
    expect(decodeCoordinatorMessage(encodeFrame({ ...data, contributedRounds: [0] }))).toMatchObject({ ok: false, code: 'INVALID_MESSAGE' });
  });
});
