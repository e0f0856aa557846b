/**
 * LocalCohort with several gathers open at once over disjoint members (a scale-out gateway's
 * groups): each answer goes to the gather of its member's group; a group between stages keeps its
 * members' answers queued whatever another group's gather is doing; a rule broken in one group
 * closes that member only; a gather across two groups is refused as a caller bug.
 */
import { describe, expect, it } from 'vitest';
import type { ErrorCode } from '@shoal/protocol';
import { ClientRegistry, type ConnectedClient } from '../src/clients.js';
import { LocalCohort } from '../src/cohort.js';
import { silentLogger } from '../src/logger.js';
import type { GatherRequest, Gathered } from '../src/ports.js';
import { FakeClock } from '@shoal/testkit';

const ROUND = 1;

interface Harness {
  readonly cohort: LocalCohort;
  readonly clients: ReadonlyMap<string, ConnectedClient>;
  readonly closed: { readonly id: string; readonly code: ErrorCode }[];
  readonly clock: FakeClock;
  /** Member `id` sends a confirm for ROUND. */
  confirm(id: string): void;
}

/** Six connected, ready clients c1..c6, all selected into ROUND. */
function harness(): Harness {
  const registry = new ClientRegistry({ ttlMs: 60_000, maxTokens: 100 });
  const clock = new FakeClock();
  const clients = new Map<string, ConnectedClient>();
  const closed: { id: string; code: ErrorCode }[] = [];
  for (let i = 0; i < 6; i++) {
    const client: ConnectedClient = { connection: { send() {}, close() {}, ping() {} }, state: 'ready', capabilities: [], assignedRounds: new Set(), lastSeenMs: 0 };
    registry.admit(client, undefined);
    clients.set(client.clientId!, client);
  }
  const cohort = new LocalCohort({
    registry,
    eligible: () => [...clients.values()].filter((client) => client.state === 'ready'),
    close: (client, code) => {
      closed.push({ id: client.clientId!, code });
      client.state = 'closed';
      cohort.disconnected(client.clientId!);
    },
    clock,
    logger: silentLogger,
  });
  expect(cohort.select(ROUND, (eligible) => eligible)).toEqual(['c1', 'c2', 'c3', 'c4', 'c5', 'c6']);
  return {
    cohort,
    clients,
    closed,
    clock,
    confirm: (id) => cohort.receive(clients.get(id)!, { type: 'confirm', round: ROUND, signature: new Uint8Array([Number(id.slice(1))]) }, 10),
  };
}

/** A confirm gather over `members` that records who it accepted, in order. */
function confirmGather(members: readonly string[], accepted: string[], deadline = 1_000): GatherRequest<'confirm'> {
  return { kind: 'confirm', members, deadline, quorum: members.length, signal: new AbortController().signal, accept: (member) => void accepted.push(member) };
}

describe('LocalCohort: concurrent gathers over disjoint groups', () => {
  it('routes each answer to its own group, and queues a group between stages', async () => {
    const { cohort, confirm, closed } = harness();
    const toA: string[] = [];
    const toB: string[] = [];
    const a = cohort.gather(confirmGather(['c1', 'c2', 'c3'], toA));
    const b = cohort.gather(confirmGather(['c4', 'c5', 'c6'], toB));
    expect(cohort.phase()).toEqual({ round: ROUND, stage: 'confirm' });
    // Interleaved arrivals: each lands in its group's gather.
    for (const id of ['c5', 'c1', 'c4', 'c3', 'c2']) confirm(id);
    const gotA: Gathered = await a;
    expect(gotA).toEqual({ answered: ['c1', 'c3', 'c2'], dropped: [], bytes: 30 });
    expect(toB).toEqual(['c5', 'c4']);

    // Group A is between stages while B's gather is still open: A's next answer waits, it is not refused.
    confirm('c2');
    expect(closed).toEqual([]);
    confirm('c6');
    expect(await b).toEqual({ answered: ['c5', 'c4', 'c6'], dropped: [], bytes: 30 });
    expect(cohort.phase()).toEqual({ round: ROUND, stage: 'between-stages' });

    // A's next stage opens: the queued answer is delivered to it.
    const nextA: string[] = [];
    const second = cohort.gather(confirmGather(['c2'], nextA));
    expect(await second).toEqual({ answered: ['c2'], dropped: [], bytes: 10 });
    expect(nextA).toEqual(['c2']);
    expect(closed).toEqual([]);
  });

  it('closes a member that breaks the rules in its group only, and drops it from that gather alone', async () => {
    const { cohort, confirm, closed, clock } = harness();
    const a = cohort.gather(confirmGather(['c1', 'c2', 'c3'], []));
    const b = cohort.gather(confirmGather(['c4', 'c5', 'c6'], []));
    confirm('c1');
    confirm('c1'); // a second answer in one stage
    expect(closed).toEqual([{ id: 'c1', code: 'DUPLICATE_MESSAGE' }]);
    confirm('c4');
    confirm('c5');
    confirm('c6');
    expect(await b).toEqual({ answered: ['c4', 'c5', 'c6'], dropped: [], bytes: 30 });
    confirm('c2');
    // c3 never answers: the deadline makes it a dropout of group A, and B is long done.
    await clock.advance(1_000);
    expect(await a).toEqual({ answered: ['c1', 'c2'], dropped: ['c3'], bytes: 20 });
  });

  it('refuses a gather across two groups, and a second open gather in one group', async () => {
    const { cohort, confirm } = harness();
    const a = cohort.gather(confirmGather(['c1', 'c2'], []));
    await expect(cohort.gather(confirmGather(['c2', 'c3'], []))).rejects.toThrow(/still open over these members/);
    const b = cohort.gather(confirmGather(['c4'], []));
    for (const id of ['c1', 'c2', 'c4']) confirm(id);
    await Promise.all([a, b]);
    await expect(cohort.gather(confirmGather(['c1', 'c4'], []))).rejects.toThrow(/one group/);
  });
});
