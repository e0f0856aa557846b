// Pace steering on the wire: `pace` (coordinator → client) tells a device not admitted to a round
// when to come back. Validated strictly like every other message: whole milliseconds, min ≤ max,
// max at most a day.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_PACE_MS, closeCodeOf, decodeClientMessage, decodeCoordinatorMessage, encodeFrame, type PaceMessage } from '../src/index.js';

const pace: PaceMessage = { type: 'pace', round: 4, retryInMs: { min: 2_000, max: 9_000 } };
const decodePace = (value: object) => decodeCoordinatorMessage(encodeFrame(value));

/** A valid window: two integers in [0, MAX_PACE_MS], the smaller first. */
const window = fc.tuple(fc.integer({ min: 0, max: MAX_PACE_MS }), fc.integer({ min: 0, max: MAX_PACE_MS })).map(([a, b]) => ({ min: Math.min(a, b), max: Math.max(a, b) }));
const validPace = fc.record({ type: fc.constant('pace' as const), round: fc.nat(), retryInMs: window });

describe('pace (coordinator → client)', () => {
  it('round-trips', () => {
    expect(decodePace(pace)).toEqual({ ok: true, message: pace });
  });

  it('property: any round and any window of integers 0 ≤ min ≤ max ≤ a day round-trips through encodeFrame/decodeFrame', () => {
    fc.assert(
      fc.property(validPace, (sent) => {
        expect(decodePace(sent)).toEqual({ ok: true, message: sent });
      }),
    );
  });

  it('property: min above max is refused, naming both fields', () => {
    const inverted = fc.tuple(fc.integer({ min: 0, max: MAX_PACE_MS }), fc.integer({ min: 0, max: MAX_PACE_MS })).filter(([a, b]) => a !== b);
    fc.assert(
      fc.property(inverted, ([a, b]) => {
        const result = decodePace({ ...pace, retryInMs: { min: Math.max(a, b), max: Math.min(a, b) } });
        expect(result).toMatchObject({ ok: false, code: 'INVALID_MESSAGE', reason: expect.stringMatching(/pace\.retryInMs\.min .* pace\.retryInMs\.max/) });
      }),
    );
  });

  it('property: a max beyond a day is refused', () => {
    fc.assert(
      fc.property(fc.integer({ min: MAX_PACE_MS + 1, max: Number.MAX_SAFE_INTEGER }), (max) => {
        expect(decodePace({ ...pace, retryInMs: { min: 0, max } })).toMatchObject({ ok: false, code: 'INVALID_MESSAGE', reason: expect.stringContaining('pace.retryInMs.max') });
      }),
    );
  });

  it('property: a bound that is not a whole number of milliseconds ≥ 0 is refused, naming it', () => {
    const notWhole = fc.oneof(
      fc.double({ min: -1e12, max: 1e12, noNaN: true }).filter((x) => !Number.isInteger(x) || x < 0),
      fc.constantFrom<unknown>('1000', null, true, [], {}),
    );
    fc.assert(
      fc.property(notWhole, fc.constantFrom('min', 'max'), (value, bound) => {
        const retryInMs = { ...pace.retryInMs, [bound]: value };
        const result = decodePace({ ...pace, retryInMs });
        expect(result.ok).toBe(false);
        if (!result.ok) {
          expect(result.reason).toContain(`pace.retryInMs.${bound}`);
          expect(closeCodeOf(result.code)).toBeGreaterThanOrEqual(4000);
        }
      }),
    );
  });

  it.each([
    ['NaN', { ...pace, retryInMs: { min: Number.NaN, max: 5 } }, 'NON_FINITE', 'pace.retryInMs.min'],
    ['Infinity', { ...pace, retryInMs: { min: 0, max: Number.POSITIVE_INFINITY } }, 'NON_FINITE', 'pace.retryInMs.max'],
    ['a negative round', { ...pace, round: -1 }, 'INVALID_MESSAGE', 'pace.round'],
    ['a missing window', { type: 'pace', round: 1 }, 'INVALID_MESSAGE', 'pace.retryInMs is missing'],
    ['a window that is not an object', { ...pace, retryInMs: 5_000 }, 'INVALID_MESSAGE', 'pace.retryInMs is not an object'],
    ['a missing bound', { ...pace, retryInMs: { min: 5 } }, 'INVALID_MESSAGE', 'pace.retryInMs.max is missing'],
    ['an unknown field in the window', { ...pace, retryInMs: { ...pace.retryInMs, mean: 3 } }, 'INVALID_MESSAGE', 'pace.retryInMs has an unknown field "mean"'],
    ['an unknown field', { ...pace, reason: 'busy' }, 'INVALID_MESSAGE', 'pace has an unknown field "reason"'],
  ])('refuses %s', (_what, value, code, reason) => {
    expect(decodePace(value)).toMatchObject({ ok: false, code, reason: expect.stringContaining(reason) });
  });

  it('property: a valid pace with a byte flipped or the frame cut never throws, and is accepted as decoded or refused with a 4xxx code', () => {
    const mutation = fc.record({ index: fc.nat(), byte: fc.integer({ min: 0, max: 255 }), cut: fc.boolean() });
    fc.assert(
      fc.property(validPace, mutation, (sent, { index, byte, cut }) => {
        const bytes = encodeFrame(sent).slice();
        bytes[index % bytes.length] = byte;
        const result = decodeCoordinatorMessage(cut ? bytes.subarray(0, index % bytes.length) : bytes);
        if (result.ok) {
          expect(decodeCoordinatorMessage(encodeFrame(result.message))).toEqual(result);
        } else {
          expect(closeCodeOf(result.code)).toBeGreaterThanOrEqual(4000);
          expect(result.reason).not.toMatch(/^internal/);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('is a coordinator message only: a client sending it is refused', () => {
    expect(decodeClientMessage(encodeFrame(pace), { numParams: 4 })).toMatchObject({ ok: false, code: 'INVALID_MESSAGE', reason: 'unknown message type "pace"' });
  });
});
