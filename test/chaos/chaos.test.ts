// The CI-sized chaos run (issue #13 item 2; the full run is scripts/chaos.ts): a real `shoal serve`
// with SecAgg+ and distributed DP, 8 real Node SDK clients over WebSockets, 14 rounds, the
// coordinator SIGKILLed six times (once of each kind, at seeded rounds) and restarted on its
// folder, client connections cut at every stage. Every invariant of test/chaos/invariants.ts is
// checked after each death and at the end; the test fails on any violation.
import { describe, expect, it } from 'vitest';
import { COORDINATOR_KILLS } from '@shoal/testkit';
import { runChaos } from './driver.js';

/** The invariants every run must have checked at least once (so a run that checked nothing fails). */
const MUST_CHECK = [
  'a planned crash lands where it was planned',
  'ledger verifies against the newest checkpoint',
  'every round up to the newest checkpoint has exactly one checkpoint',
  'no round is recorded twice in the ledger',
  'ledger modelHash equals the checkpoint weights',
  'no checkpointed round is lost from the ledger',
  'ledger ε equals the accountant over the charged rounds',
  "a checkpoint's accountant history equals the charged rounds",
  'ε never decreases across coordinator lives',
  'a resume entry names the model of the checkpoint it resumed from',
  'finished round numbers strictly increase across lives',
  'served weights equal the committed checkpoint bit for bit',
  'a SecAgg session id belongs to one coordinator life',
  'a life starts at the round after its checkpoint',
  "a life trains from its checkpoint's model",
  'a result the clients got agrees with the checkpoint of that round',
  'a round released and never committed is recorded aborted and charged by the next life',
  'shoal ledger verify passes',
  'after every restart the clients reconnect',
  'every coordinator life trains with the reconnected clients',
  'most rounds commit despite the cuts',
  'every client contributes to committed rounds',
];

describe('chaos (CI size)', () => {
  it('keeps every invariant through six coordinator SIGKILLs, one of each kind, and client cuts at every stage', async () => {
    const summary = await runChaos({ rounds: 14, seed: 13, coordinatorKills: 6 });
    expect(summary.violations).toEqual([]);
    expect(summary.plannedKills.map((kill) => kill.kind).sort()).toEqual([...COORDINATOR_KILLS].sort());
    expect(summary.lives).toBe(7);
    // The file crash points always land; a stage crash lands between rounds instead when its round aborted before that stage.
    for (const kind of ['mid-write', 'before-rename', 'after-rename'] as const) expect(summary.coordinatorKills[kind]).toBe(1);
    expect(summary.coordinatorKills['mid-unmask'] + summary.coordinatorKills['mid-training'] + summary.coordinatorKills['between-rounds']).toBe(3);
    // A death mid-unmask comes after the round's release: the next life charges it (more lives may, after a death in a checkpoint write).
    expect(summary.releasesCharged).toBeGreaterThanOrEqual(summary.coordinatorKills['mid-unmask']);
    for (const name of MUST_CHECK) expect(summary.checksByName[name] ?? 0, name).toBeGreaterThan(0);
    expect(summary.committed + summary.aborted).toBe(14);
    expect(summary.committed).toBeGreaterThan(0);
    expect(Object.values(summary.clientCuts).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  }, 150_000);
});
