// The `secagg` section's schema applies the rules every round applies (one implementation,
// secAggNeighbourhood): whatever it accepts for a cohort of clientsPerRound, a round of that many
// clients derives its parameters from; what it refuses, the round refuses too, unless it breaks a
// rule of the config's surface (a degree with full secagg, an even or too small degree).
import fc from 'fast-check';
import { ShoalError } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { SECAGG_DEFAULTS, deriveSecAggParams, parseSecAggConfig } from '../src/index.js';

/** Whether `fn` runs; any failure must be INVALID_CONFIG. */
function accepts(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (error) {
    expect(error).toBeInstanceOf(ShoalError);
    expect((error as ShoalError).code).toBe('INVALID_CONFIG');
    return false;
  }
}

describe('parseSecAggConfig', () => {
  it('accepts for a cohort of clientsPerRound exactly what a round of that cohort accepts (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('secagg', 'secagg+'),
        fc.integer({ min: 1, max: 40 }),
        fc.double({ min: 0, max: 0.49, noNaN: true }),
        fc.option(fc.integer({ min: 2, max: 45 }), { nil: undefined }),
        fc.option(fc.integer({ min: 3, max: 45 }), { nil: undefined }),
        (mode, clientsPerRound, maxDropout, threshold, degree) => {
          const raw = { mode, maxDropout, ...(threshold !== undefined ? { threshold } : {}), ...(degree !== undefined ? { degree } : {}) };
          const configAccepts = accepts(() => parseSecAggConfig(raw, clientsPerRound));
          const roundAccepts = accepts(() =>
            deriveSecAggParams({ mode, cohortSize: clientsPerRound, numParams: 10, maxDropout, threshold, degree, bound: 1, maxWeight: SECAGG_DEFAULTS.maxWeight }),
          );
          const surfaceRule = degree !== undefined && (mode === 'secagg' || degree % 2 === 0);
          expect(configAccepts, JSON.stringify(raw)).toBe(roundAccepts && !surfaceRule);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('refuses a maxDropout of one half or more, saying why', () => {
    for (const maxDropout of [0.5, 0.6, 0.99]) {
      expect(() => parseSecAggConfig({ mode: 'off', maxDropout }, undefined)).toThrow(
        `secagg.maxDropout must be a number in [0, 0.5), got ${maxDropout}: the threshold must exceed half of each client's neighbourhood`,
      );
    }
  });

  it('fills in SECAGG_DEFAULTS, the defaults a round uses too', () => {
    expect(parseSecAggConfig({}, undefined)).toEqual(SECAGG_DEFAULTS);
    expect(deriveSecAggParams({ mode: 'secagg', cohortSize: 10, numParams: 1, bound: 1, maxWeight: 10 }).threshold).toBe(Math.floor((1 - SECAGG_DEFAULTS.maxDropout) * 10));
  });
});
