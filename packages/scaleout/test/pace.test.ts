/**
 * Pace steering's pure parts: the leader's window (fast-check: no pacing when everyone was admitted,
 * min ≤ max, within the floors and caps, and the return rate the rule promises) and the round
 * duration it is timed by; and the gateway's sending rule over a recording cohort (only the
 * eligible devices not admitted, only those that announced 'pace', one frame for all).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_PACE_MS, decodeCoordinatorMessage, type PaceMessage } from '@shoal/protocol';
import type { Cohort } from '@shoal/coordinator';
import { MIN_PACE_MS, paceNotAdmitted, retryWindowFor, typicalRoundMs } from '@shoal/scaleout';

describe('retryWindowFor', () => {
  it('paces nobody when every eligible device was admitted, nothing was admitted, no round follows, or no round was timed yet', () => {
    expect(retryWindowFor(30, 30, 5_000, 10)).toBeUndefined();
    expect(retryWindowFor(20, 26, 5_000, 10)).toBeUndefined(); // the quotas' floor can exceed the devices
    expect(retryWindowFor(30, 0, 5_000, 10)).toBeUndefined();
    expect(retryWindowFor(30, 10, 5_000, 0)).toBeUndefined();
    expect(retryWindowFor(30, 10, undefined, 10)).toBeUndefined();
  });

  it('spreads the devices left out over [T, k·T], k = eligible / admitted', () => {
    expect(retryWindowFor(300, 100, 6_000, 10)).toEqual({ min: 6_000, max: 18_000 });
    expect(retryWindowFor(36, 24, 4_000, 10)).toEqual({ min: 4_000, max: 6_000 });
    // A round faster than the floor is timed as the floor; k still applies.
    expect(retryWindowFor(50, 10, 120, 10)).toEqual({ min: MIN_PACE_MS, max: 5 * MIN_PACE_MS });
    // Never past the task's last round: k is at most the rounds left.
    expect(retryWindowFor(300, 100, 6_000, 2)).toEqual({ min: 6_000, max: 12_000 });
    expect(retryWindowFor(300, 100, 6_000, 1)).toEqual({ min: 6_000, max: 6_000 });
    // Never more than a day, at either end.
    expect(retryWindowFor(1_000_000, 1_000, 3_600_000, 10_000)).toEqual({ min: 3_600_000, max: MAX_PACE_MS });
  });

  it('property: a valid pace window (integers, floor ≤ min ≤ max ≤ a day), min one round, max within the rounds left, and about `admitted` devices back per round', () => {
    const inputs = fc.record({
      admitted: fc.integer({ min: 1, max: 100_000 }),
      extra: fc.integer({ min: 1, max: 1_000_000 }),
      roundMs: fc.double({ min: 0, max: 10 * MAX_PACE_MS, noNaN: true }),
      roundsLeft: fc.integer({ min: 1, max: 1_000_000 }),
    });
    fc.assert(
      fc.property(inputs, ({ admitted, extra, roundMs, roundsLeft }) => {
        const eligible = admitted + extra;
        const window = retryWindowFor(eligible, admitted, roundMs, roundsLeft)!;
        expect(Number.isInteger(window.min) && Number.isInteger(window.max)).toBe(true);
        expect(MIN_PACE_MS <= window.min && window.min <= window.max && window.max <= MAX_PACE_MS).toBe(true);
        const round = Math.min(MAX_PACE_MS, Math.max(MIN_PACE_MS, Math.round(roundMs)));
        expect(window.min).toBe(round);
        expect(window.max).toBeLessThanOrEqual(Math.round(roundsLeft * round));
        // Below the caps, `extra` devices spread uniformly over max − min return at `admitted` per
        // round, up to the rounding of max to a whole millisecond.
        if (window.max < MAX_PACE_MS && eligible / admitted <= roundsLeft && window.max > window.min) {
          const perRound = (extra * round) / (window.max - window.min);
          expect(Math.abs(perRound - admitted) / admitted).toBeLessThan(1e-3 + 1 / (window.max - window.min));
        }
      }),
    );
  });
});

describe('typicalRoundMs', () => {
  it('is the median of the timed rounds, ignoring untimed ones; undefined before any', () => {
    expect(typicalRoundMs([])).toBeUndefined();
    expect(typicalRoundMs([0, Number.NaN])).toBeUndefined();
    expect(typicalRoundMs([5_000])).toBe(5_000);
    expect(typicalRoundMs([9_000, 1_000, 5_000])).toBe(5_000);
    expect(typicalRoundMs([4_000, 2_000, 0, 60_000, 3_000])).toBe(3_500);
  });
});

/** The two Cohort methods pacing uses, over a fixed table of devices; every frame sent is recorded. */
function recordingCohort(capable: ReadonlySet<string>, connected: ReadonlySet<string>): { cohort: Cohort; sent: { device: string; frame: Uint8Array }[] } {
  const sent: { device: string; frame: Uint8Array }[] = [];
  const unused = (): never => {
    throw new Error('pacing uses only supports() and send()');
  };
  const cohort: Cohort = {
    supports: (device, capability) => capability === 'pace' && capable.has(device),
    send: (device, frame) => {
      if (!connected.has(device)) return 0;
      sent.push({ device, frame });
      return frame.byteLength;
    },
    select: unused,
    holds: unused,
    gather: unused,
    identityOf: unused,
    connected: unused,
    release: unused,
  };
  return { cohort, sent };
}

describe('paceNotAdmitted', () => {
  const eligible = ['a', 'b', 'c', 'd', 'e', 'f'];
  const admitted = ['b', 'e'];

  it('sends the round and window to the eligible devices not admitted that announced pace, and counts the bytes', () => {
    const { cohort, sent } = recordingCohort(new Set(['a', 'b', 'c', 'e', 'f']), new Set(eligible.filter((device) => device !== 'f')));
    const bytes = paceNotAdmitted(cohort, 7, eligible, admitted, { min: 2_000, max: 6_000 });
    // 'd' never announced pace; 'f' left before the frame could go.
    expect(sent.map((entry) => entry.device)).toEqual(['a', 'c']);
    expect(bytes).toBe(sent.reduce((total, entry) => total + entry.frame.byteLength, 0));
    for (const { frame } of sent) {
      expect(decodeCoordinatorMessage(frame)).toEqual({ ok: true, message: { type: 'pace', round: 7, retryInMs: { min: 2_000, max: 6_000 } } satisfies PaceMessage });
    }
  });

  it('sends nothing without a window, or when this gateway admitted nobody (too few for a group)', () => {
    const { cohort, sent } = recordingCohort(new Set(eligible), new Set(eligible));
    expect(paceNotAdmitted(cohort, 7, eligible, admitted, undefined)).toBe(0);
    expect(paceNotAdmitted(cohort, 7, eligible, [], { min: 2_000, max: 6_000 })).toBe(0);
    expect(sent).toEqual([]);
  });

  it('property: paces exactly the capable eligible devices outside the admitted set', () => {
    const devices = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { maxLength: 40 });
    fc.assert(
      fc.property(devices, fc.func(fc.boolean()), fc.func(fc.boolean()), (ids, isAdmitted, isCapable) => {
        const admittedNow = ids.filter((id) => isAdmitted(id));
        fc.pre(admittedNow.length > 0);
        const capable = new Set(ids.filter((id) => isCapable(id)));
        const { cohort, sent } = recordingCohort(capable, new Set(ids));
        paceNotAdmitted(cohort, 1, ids, admittedNow, { min: 0, max: 1 });
        expect(sent.map((entry) => entry.device)).toEqual(ids.filter((id) => !admittedNow.includes(id) && capable.has(id)));
      }),
    );
  });
});
