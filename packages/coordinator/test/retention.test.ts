/**
 * Retention (docs/privacy.md, "Retention"): checkpoints pruned by count and by age with real files
 * and an injected clock (file ages are set with utimes, nothing sleeps); `server.retention` in the
 * config; retention in the published promise; and the registry's bounded memory of each client id,
 * its erasure on `forget`, and the request counts the round log's records carry.
 */
import { mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_ROUNDS_PER_CLIENT, ShoalError, decodePrivacyPromise } from '@shoal/protocol';
import { fedAvg } from '@shoal/strategy';
import { builtinInitialModel, composeConfig, privacyPromise, resolveOptions, writeCheckpoint, type Checkpoint } from '../src/index.js';
import { ClientRegistry, type ConnectedClient } from '../src/clients.js';
import type { RoundRecord } from '../src/round-log.js';
import { RoundLogWithSubjectRequests, SubjectRequestCounter } from '../src/subject-requests.js';

const HOUR = 3_600_000;
/** The injected clock: file modification times are set relative to it. */
const NOW = Date.UTC(2026, 0, 1);

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-retention-'));
  dirs.push(dir);
  return dir;
}

function checkpoint(round: number): Checkpoint {
  return { formatVersion: 1, runId: 'run', round, modelVersion: `run:${round}`, weights: new Float32Array(3), strategyName: 'fedavg', strategyState: {} };
}

async function roundsIn(dir: string): Promise<number[]> {
  return (await readdir(dir)).map((name) => Number(/^round-(\d+)\.ckpt$/.exec(name)?.[1])).filter((round) => !Number.isNaN(round)).sort((a, b) => a - b);
}

/** Writes checkpoints 1..count, checkpoint r aged (count − r + 1) hours at NOW, then lets a last write prune them. */
async function agedCheckpoints(dir: string, count: number): Promise<void> {
  for (let round = 1; round <= count; round++) await writeCheckpoint(dir, checkpoint(round), { retention: { keepCheckpoints: 1_000 } });
  for (let round = 1; round <= count; round++) {
    const at = new Date(NOW - (count - round + 1) * HOUR);
    await utimes(join(dir, `round-${String(round).padStart(6, '0')}.ckpt`), at, at);
  }
}

describe('checkpoint retention', () => {
  it('keeps the newest 3 by default, and keepCheckpoints when given', async () => {
    const dir = await tempDir();
    for (let round = 1; round <= 6; round++) await writeCheckpoint(dir, checkpoint(round));
    expect(await roundsIn(dir)).toEqual([4, 5, 6]);
    for (let round = 7; round <= 9; round++) await writeCheckpoint(dir, checkpoint(round), { retention: { keepCheckpoints: 1 } });
    expect(await roundsIn(dir)).toEqual([9]);
  });

  it('deletes checkpoints older than maxCheckpointAgeMs at the injected time, within the count limit', async () => {
    const dir = await tempDir();
    await agedCheckpoints(dir, 5); // round 5 is 1 h old … round 1 is 5 h old
    await writeCheckpoint(dir, checkpoint(6), { retention: { keepCheckpoints: 4, maxCheckpointAgeMs: 2.5 * HOUR }, now: () => NOW });
    // Count first (3..6), then age: 3 is 3 h old; 4 (2 h) and 5 (1 h) are young; 6 was just written.
    expect(await roundsIn(dir)).toEqual([4, 5, 6]);
  });

  it('always keeps the newest checkpoint, however old', async () => {
    const dir = await tempDir();
    await agedCheckpoints(dir, 3);
    // A clock far ahead: every file is older than the limit, the newest one stays.
    await writeCheckpoint(dir, checkpoint(4), { retention: { maxCheckpointAgeMs: HOUR }, now: () => NOW + 100 * HOUR });
    expect(await roundsIn(dir)).toEqual([4]);
  });
});

describe('server.retention', () => {
  const sections = { keys: [], parse: () => ({}) };

  it('defaults to keeping 3 checkpoints of any age, and reads both keys', () => {
    expect(composeConfig({}, sections).server.retention).toEqual({ keepCheckpoints: 3 });
    expect(composeConfig({ server: { retention: { keepCheckpoints: 5, maxCheckpointAgeMs: 86_400_000 } } }, sections).server.retention).toEqual({ keepCheckpoints: 5, maxCheckpointAgeMs: 86_400_000 });
  });

  it('names the key of a bad value', () => {
    expect(() => composeConfig({ server: { retention: { keepCheckpoints: 0 } } }, sections)).toThrow(/server\.retention\.keepCheckpoints/);
    expect(() => composeConfig({ server: { retention: { maxCheckpointAgeMs: -1 } } }, sections)).toThrow(ShoalError);
    expect(() => composeConfig({ server: { retention: { keep: 2 } } }, sections)).toThrow(/keep/);
  });
});

describe('the privacy promise', () => {
  const model = builtinInitialModel('logreg', [4], 3, 1);
  const base = { model, tokens: ['t'], rounds: 1, train: { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const, strategy: fedAvg() };

  it('states the retention the coordinator applies, and reads back with the client\'s decoder', () => {
    const promise = privacyPromise(resolveOptions({ ...base, retention: { keepCheckpoints: 2, maxCheckpointAgeMs: HOUR } }));
    expect(promise.retention).toEqual({ keepCheckpoints: 2, maxCheckpointAgeMs: HOUR, resumeTokenTtlMs: 600_000, roundsPerClient: MAX_ROUNDS_PER_CLIENT });
    expect(decodePrivacyPromise(JSON.parse(JSON.stringify(promise)))).toEqual({ ok: true, message: promise });
  });

  it('states DP and SecAgg settings, and metrics in the clear only where they are', () => {
    const promise = privacyPromise(
      resolveOptions({ ...base, clientsPerRound: 4, secagg: { mode: 'secagg', threshold: 3 }, dp: { mode: 'distributed', noiseMultiplier: 1.1, clipNorm: 1, targetEpsilon: 8 } }),
    );
    expect(promise).toMatchObject({
      secureAggregation: { mode: 'secagg', threshold: 3 },
      differentialPrivacy: { mode: 'distributed', noiseMultiplier: 1.1, epsilonBudget: 8 },
      metricsInClear: false,
      evaluationInClear: false,
      retention: { keepCheckpoints: 3, maxCheckpointAgeMs: null },
    });
    expect(decodePrivacyPromise(JSON.parse(JSON.stringify(promise))).ok).toBe(true);
  });
});

function connection(): ConnectedClient {
  return { connection: { send() {}, close() {}, ping() {} }, state: 'ready', capabilities: [], assignedRounds: new Set(), lastSeenMs: 0 };
}

describe('the registry\'s memory of a client id', () => {
  it('remembers selected and contributed rounds across reconnects, bounded to the newest MAX_ROUNDS_PER_CLIENT', () => {
    const registry = new ClientRegistry({ ttlMs: HOUR, maxTokens: 10 });
    const first = connection();
    const { clientId, resumeToken } = registry.admit(first, undefined);
    for (let round = 1; round <= MAX_ROUNDS_PER_CLIENT + 5; round++) {
      first.assignedRounds.add(round);
      registry.contributed(clientId, round);
    }
    registry.remove(first);
    const second = connection();
    expect(registry.admit(second, resumeToken).clientId).toBe(clientId);
    second.assignedRounds.add(2_000);
    const held = registry.heldAbout(second);
    expect(held.resumeTokenHeld).toBe(true);
    expect(held.selectedRounds).toHaveLength(MAX_ROUNDS_PER_CLIENT);
    expect(held.selectedRounds.at(-1)).toBe(2_000);
    expect(held.selectedRounds[0]).toBe(7); // 1..1005 plus 2000, the newest 1000
    expect(held.contributedRounds).toHaveLength(MAX_ROUNDS_PER_CLIENT);
    expect(held.contributedRounds[0]).toBe(6);
  });

  it('forgets an id whose resume token expired', () => {
    let now = 0;
    const registry = new ClientRegistry({ ttlMs: HOUR, maxTokens: 10 }, () => now);
    const client = connection();
    const { clientId } = registry.admit(client, undefined);
    registry.contributed(clientId, 1);
    registry.remove(client);
    expect(registry.knows(clientId)).toBe(true);
    now = 2 * HOUR;
    registry.admit(connection(), undefined); // any admission drops stale tokens
    expect(registry.knows(clientId)).toBe(false);
  });

  it('erases the entry, both kinds of resume token and the rounds of a forgotten id', () => {
    const registry = new ClientRegistry({ ttlMs: HOUR, maxTokens: 10 });
    const client = connection();
    const { clientId, resumeToken } = registry.admit(client, undefined);
    client.assignedRounds.add(1);
    registry.contributed(clientId, 1);
    registry.erase(client);
    expect(registry.knows(clientId)).toBe(false);
    expect(registry.get(clientId)).toBeUndefined();
    expect(registry.tokenCount).toBe(0);
    registry.remove(client); // the close that follows finds nothing to release
    expect(registry.tokenCount).toBe(0);
    expect(registry.admit(connection(), resumeToken).clientId).not.toBe(clientId);
  });
});

describe('subject request counts in the round log', () => {
  it('puts the counts since the previous record into each record, never who asked', async () => {
    const counter = new SubjectRequestCounter();
    const seen: RoundRecord['subjectRequests'][] = [];
    const log = new RoundLogWithSubjectRequests([(record) => void seen.push(record.subjectRequests)], counter);
    const record = (round: number) => ({ round, status: 'committed', metrics: {} }) as unknown as RoundRecord;
    counter.count('access');
    counter.count('access');
    counter.count('erasure');
    await log.append(record(1));
    await log.append(record(2));
    counter.count('erasure');
    await log.append(record(3));
    expect(seen).toEqual([{ access: 2, erasure: 1 }, { access: 0, erasure: 0 }, { access: 0, erasure: 1 }]);
  });
});
