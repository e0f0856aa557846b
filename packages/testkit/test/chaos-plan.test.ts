import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CLIENT_KILL_STAGES, COORDINATOR_KILLS, cutsConnection, planCoordinatorKills } from '../src/index.js';

describe('planCoordinatorKills', () => {
  it('plans kills at rounds 2 … rounds − 2, at least two apart, as many as fit, each kind once per cycle; the same seed gives the same plan', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: 80 }), (seed, rounds, kills) => {
        const plan = planCoordinatorKills(seed, rounds, kills);
        expect(plan).toEqual(planCoordinatorKills(seed, rounds, kills));
        expect(plan).toHaveLength(Math.max(0, Math.min(kills, Math.floor((rounds - 2) / 2))));
        plan.forEach((kill, i) => {
          expect(kill.round).toBeGreaterThanOrEqual(i === 0 ? 2 : plan[i - 1]!.round + 2);
          expect(kill.round).toBeLessThanOrEqual(rounds - 2);
        });
        for (let cycle = 0; cycle * COORDINATOR_KILLS.length < plan.length; cycle++) {
          const kinds = plan.slice(cycle * COORDINATOR_KILLS.length, (cycle + 1) * COORDINATOR_KILLS.length).map((kill) => kill.kind);
          expect(new Set(kinds).size).toBe(kinds.length);
        }
      }),
      { seed: 13 },
    );
  });

  it('covers every kind in a run that fits one kill of each', () => {
    expect(planCoordinatorKills(13, 14, 6).map((kill) => kill.kind).sort()).toEqual([...COORDINATOR_KILLS].sort());
  });
});

describe('cutsConnection', () => {
  it('depends only on the seed and the place, and cuts about the asked share of places', () => {
    const places = Array.from({ length: 4_000 }, (_, i) => ({ life: i % 7, slot: i % 8, round: i >> 3, stage: CLIENT_KILL_STAGES[i % CLIENT_KILL_STAGES.length]! }));
    const cuts = places.filter((place) => cutsConnection(5, 0.1, place));
    expect(places.filter((place) => cutsConnection(5, 0.1, place))).toEqual(cuts);
    // 4,000 draws at p = 0.1: mean 400, standard deviation 19; ±100 is more than five of them.
    expect(cuts.length).toBeGreaterThan(300);
    expect(cuts.length).toBeLessThan(500);
    expect(places.some((place) => cutsConnection(5, 0, place))).toBe(false);
    expect(places.every((place) => cutsConnection(5, 1, place))).toBe(true);
  });
});
