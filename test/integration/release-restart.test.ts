// The release journal across restarts, over real files and real WebSockets: a DP round whose sum
// was released (the coordinator asked for its unmasking) and that the process never committed is
// charged by the next start, recorded as an aborted round in the checkpoint chain and the ledger,
// exactly once; the run then goes on at the round after it. A journal that does not fit the
// checkpoints, or does not parse, stops the start with a message naming the file.
// (The real crash, SIGKILL mid-unmask under distributed DP, is in the chaos run: test/chaos.)
import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Coordinator,
  LEDGER_FILE,
  RELEASE_FILE,
  builtinInitialModel,
  readLatestCheckpoint,
  readLedger,
  startCoordinator,
  weightsHash,
  type CoordinatorOptions,
  type RoundEntry,
} from '@shoal/coordinator';
import { RdpAccountant } from '@shoal/dp';
import { ShoalError } from '@shoal/protocol';
import { fedAvg } from '@shoal/strategy';
import { startScriptedPeer } from '@shoal/testkit';

const TOKEN = 'release-restart-token';
const MODEL = builtinInitialModel('logreg', [4], 3, 7);
const DP = { mode: 'central', noiseMultiplier: 1.2, clipNorm: 1 } as const;
const CHARGE = { sampleRate: 0.5, noiseMultiplier: 1.2, clipNorm: 1 };

function options(checkpointDir: string, rounds: number): CoordinatorOptions {
  return {
    model: MODEL,
    tokens: [TOKEN],
    rounds,
    clientsPerRound: 2,
    minClients: 2,
    minAvailable: 3,
    seed: 5,
    roundTimeoutMs: 20_000,
    train: { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
    strategy: fedAvg(),
    dp: DP,
    checkpointDir,
  };
}

/** Runs `rounds` rounds of a DP run in `dir` with three scripted peers. */
async function runRounds(dir: string, rounds: number): Promise<void> {
  const coordinator = await startCoordinator(options(dir, rounds));
  const peers = [];
  for (let i = 0; i < 3; i++) {
    peers.push(await startScriptedPeer(coordinator.url, { token: TOKEN, numExamples: 8, hello: { capabilities: ['dp'] }, delta: (train) => new Float32Array(MODEL.weights.length).fill(0.01 * train.round) }));
  }
  await coordinator.finished;
  await coordinator.close();
  for (const peer of peers) peer.peer.terminate();
}

async function roundEntries(dir: string): Promise<RoundEntry[]> {
  const ledger = await readLedger(join(dir, LEDGER_FILE));
  expect(ledger?.ok, ledger && !ledger.ok ? `entry ${ledger.entry} ${ledger.problem}` : 'no ledger').toBe(true);
  return ledger?.ok ? ledger.entries.filter((entry): entry is RoundEntry => entry.type === 'round') : [];
}

async function writeJournal(dir: string, release: object): Promise<void> {
  await writeFile(join(dir, RELEASE_FILE), `${JSON.stringify({ formatVersion: 1, ...release })}\n`);
}

async function startError(dir: string, rounds: number): Promise<ShoalError> {
  try {
    await new Coordinator(options(dir, rounds)).restore();
  } catch (error) {
    if (error instanceof ShoalError) return error;
    throw error;
  }
  throw new Error('expected the start to be refused');
}

let root: string;
/** A finished 2-round run. */
let twoRounds: string;
let runId: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'shoal-release-restart-'));
  twoRounds = join(root, 'two-rounds');
  await runRounds(twoRounds, 2);
  runId = (await readLatestCheckpoint(twoRounds))!.runId;
}, 60_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function copyOf(name: string): Promise<string> {
  const dir = join(root, name);
  await cp(twoRounds, dir, { recursive: true });
  return dir;
}

describe('the release journal across restarts', () => {
  it('charges an uncommitted release once, as an aborted round with the model kept, and the run goes on after it', async () => {
    const dir = await copyOf('uncommitted');
    const before = (await readLatestCheckpoint(dir))!;
    await writeJournal(dir, { runId, round: 3, charge: CHARGE });

    await runRounds(dir, 4); // restore charges round 3; round 4 is trained
    const entries = await roundEntries(dir);
    expect(entries.map((entry) => [entry.round, entry.status])).toEqual([
      [1, 'committed'],
      [2, 'committed'],
      [3, 'aborted'],
      [4, 'committed'],
    ]);
    const released = entries[2]!;
    expect(released).toMatchObject({ participants: 0, q: CHARGE.sampleRate, noiseMultiplier: CHARGE.noiseMultiplier, modelHash: weightsHash(before.weights) });
    expect(released.reason).toMatch(/after asking for the unmasking, before the commit/);
    // ε after round 3 is the accountant over the three charges, each round's own (q, z).
    const accountant = new RdpAccountant();
    for (const entry of entries.slice(0, 3)) accountant.compose(entry.q!, entry.noiseMultiplier!);
    expect(released.epsilon).toBe(accountant.epsilon(released.delta!).epsilon);
    expect(released.epsilon!).toBeGreaterThan(entries[1]!.epsilon!);
    const third = (await readdir(dir)).filter((name) => name === 'round-000003.ckpt');
    expect(third).toHaveLength(1);
    const latest = (await readLatestCheckpoint(dir))!;
    expect(latest.round).toBe(4);
    expect(latest.privacy!.accountant.history.reduce((total, entry) => total + entry.steps, 0)).toBe(4);

    // A later start finds the journal's round checkpointed: nothing is charged again. (Only the
    // restore: with every round done, a run would end before devices could even connect.)
    const again = new Coordinator(options(dir, 4));
    expect(await again.restore()).toBe(true);
    expect((await roundEntries(dir)).map((entry) => entry.round)).toEqual([1, 2, 3, 4]);
    expect((await readLatestCheckpoint(dir))!.privacy!.accountant.history.reduce((total, entry) => total + entry.steps, 0)).toBe(4);
  }, 60_000);

  it('a release of round 1, before any checkpoint: the run keeps its id and charges it', async () => {
    const dir = join(root, 'round-one');
    const first = new Coordinator(options(dir, 2));
    await first.restore(); // begins the ledger: the start entry of the run
    const id = first.modelVersion.split(':')[0]!;
    await writeJournal(dir, { runId: id, round: 1, charge: CHARGE });
    const second = new Coordinator(options(dir, 2));
    expect(await second.restore()).toBe(false);
    expect(second.modelVersion).toBe(`${id}:0`);
    const entries = await roundEntries(dir);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ round: 1, status: 'aborted', q: CHARGE.sampleRate });
    expect((await readLatestCheckpoint(dir))).toMatchObject({ round: 1, runId: id, modelVersion: `${id}:0` });
  });

  it('ignores a release already checkpointed, or of another run', async () => {
    for (const release of [{ runId, round: 2 }, { runId: 'another-run', round: 3 }]) {
      const dir = await copyOf(`stale-${release.runId}-${release.round}`);
      await writeJournal(dir, { ...release, charge: CHARGE });
      const coordinator = new Coordinator(options(dir, 2));
      expect(await coordinator.restore()).toBe(true);
      expect((await roundEntries(dir)).map((entry) => entry.round)).toEqual([1, 2]);
    }
  });

  it('refuses a journal past a missing checkpoint, or one that does not parse, naming the file', async () => {
    const gap = await copyOf('gap');
    await writeJournal(gap, { runId, round: 4, charge: CHARGE });
    expect((await startError(gap, 5)).message).toMatch(/release journal in .*gap records a released round 4 .* newest checkpoint there is of round 2/);

    const corrupt = await copyOf('corrupt');
    await writeFile(join(corrupt, RELEASE_FILE), '{"formatVersion":1,"runId":');
    const error = await startError(corrupt, 3);
    expect(error.code).toBe('CHECKPOINT_CORRUPT');
    expect(error.message).toContain(join(corrupt, RELEASE_FILE));

    const incomplete = await copyOf('incomplete');
    await writeJournal(incomplete, { runId, round: 3, charge: { sampleRate: 2, noiseMultiplier: 1, clipNorm: 1 } });
    expect((await startError(incomplete, 3)).message).toMatch(/release journal .* is missing fields/);
  });
});
