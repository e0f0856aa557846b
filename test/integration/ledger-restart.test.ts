// The privacy ledger as the accountant's source of truth across restarts, over real WebSockets and
// real files: a 10-round DP run with checkpoints verifies; deleting the newest checkpoint, deleting
// or editing the ledger, or cutting entries off it makes the next coordinator refuse to start
// (naming both sides), so ε can never go down; a crash between the checkpoint and the ledger write
// (the ledger one round behind, at the checkpoint's anchor) resumes and writes that round's entry
// from the checkpoint, as the uninterrupted run wrote it.
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Coordinator,
  LEDGER_FILE,
  builtinInitialModel,
  ledgerEpsilon,
  readLatestCheckpoint,
  readLedger,
  startCoordinator,
  type CoordinatorOptions,
  type RoundEntry,
} from '@shoal/coordinator';
import { ShoalError } from '@shoal/protocol';
import { fedAvg } from '@shoal/strategy';
import { startScriptedPeer } from '@shoal/testkit';

const TOKEN = 'ledger-restart-token';
const ROUNDS = 10;
const MODEL = builtinInitialModel('logreg', [4], 3, 7);

function options(checkpointDir: string): CoordinatorOptions {
  return {
    model: MODEL,
    tokens: [TOKEN],
    rounds: ROUNDS,
    clientsPerRound: 2,
    minClients: 2,
    minAvailable: 3, // all three peers idle at every selection: q = 2/3 each round
    seed: 5,
    roundTimeoutMs: 20_000,
    train: { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
    strategy: fedAvg(),
    dp: { mode: 'central', noiseMultiplier: 1.2, clipNorm: 1 },
    checkpointDir,
  };
}

let root: string;
/** The folder of the finished run, copied before each scenario changes it. */
let finished: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'shoal-ledger-restart-'));
  finished = join(root, 'finished');
  const coordinator = await startCoordinator(options(finished));
  const peers = [];
  for (let i = 0; i < 3; i++) {
    peers.push(await startScriptedPeer(coordinator.url, { token: TOKEN, numExamples: 8, hello: { capabilities: ['dp'] }, delta: (train) => new Float32Array(MODEL.weights.length).fill(0.01 * train.round) }));
  }
  const summary = await coordinator.finished;
  await coordinator.close();
  for (const peer of peers) peer.peer.terminate();
  expect(summary.rounds.filter((r) => r.status === 'committed')).toHaveLength(ROUNDS);
}, 60_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A copy of the finished run's folder to change. */
async function copyOfRun(name: string): Promise<string> {
  const dir = join(root, name);
  await cp(finished, dir, { recursive: true });
  return dir;
}

async function ledgerLines(dir: string): Promise<string[]> {
  return (await readFile(join(dir, LEDGER_FILE), 'utf8')).trimEnd().split('\n');
}

async function restartError(dir: string): Promise<ShoalError> {
  try {
    await new Coordinator(options(dir)).restore();
  } catch (error) {
    if (error instanceof ShoalError) return error;
    throw error;
  }
  throw new Error('expected the restart to be refused');
}

describe('privacy ledger across restarts', () => {
  it('a 10-round DP run leaves a ledger that verifies against its newest checkpoint, ε as the metrics reported it', async () => {
    const checkpoint = await readLatestCheckpoint(finished);
    const ledger = await readLedger(join(finished, LEDGER_FILE), checkpoint?.ledger);
    expect(ledger?.ok).toBe(true);
    if (!ledger?.ok) return;
    expect(ledger.entries.map((e) => e.type)).toEqual(['start', ...Array<string>(ROUNDS).fill('round'), 'end']);
    expect(checkpoint?.round).toBe(ROUNDS);
    // The checkpoint of round 10 was written before round 10's entry: it anchors entry 10 (round 9).
    expect(checkpoint?.ledger?.seq).toBe(ROUNDS);
    const rounds = ledger.entries.filter((e): e is RoundEntry => e.type === 'round');
    expect(rounds.map((e) => [e.q, e.noiseMultiplier, e.clipNorm, e.selected])).toEqual(Array(ROUNDS).fill([2 / 3, 1.2, 1, 2]));
    const epsilons = rounds.map((e) => e.epsilon!);
    expect([...epsilons].sort((a, b) => a - b)).toEqual(epsilons);
    expect(JSON.stringify(ledger.entries)).not.toMatch(/client-|"clientId"/);
  });

  it('refuses to restart after the newest checkpoint is deleted, naming the checkpoint and ledger rounds and ε', async () => {
    const dir = await copyOfRun('deleted-checkpoint');
    const before = await ledgerLines(dir);
    await rm(join(dir, 'round-000010.ckpt'));
    const error = await restartError(dir);
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toMatch(/checkpoint of round 9 \(ε = [\d.]+\) in .* is behind the privacy ledger .*ledger\.jsonl, which records round 10 \(ε = [\d.]+\)/);
    expect(await ledgerLines(dir)).toEqual(before); // nothing written: the ε on record stays
  });

  it('refuses a missing ledger, an edited byte (naming the entry) and entries cut past the checkpoint anchor', async () => {
    const missing = await copyOfRun('missing-ledger');
    await rm(join(missing, LEDGER_FILE));
    expect((await restartError(missing)).message).toMatch(/checkpoint of round 10 .* has spent ε = [\d.]+, but its privacy ledger .* is missing/);

    const edited = await copyOfRun('edited-ledger');
    const lines = await ledgerLines(edited);
    lines[4] = lines[4]!.replace('"selected":2', '"selected":3');
    await writeFile(join(edited, LEDGER_FILE), `${lines.join('\n')}\n`);
    expect((await restartError(edited)).message).toMatch(/fails verification: entry 5 its content does not match its own hash/);

    const cut = await copyOfRun('cut-ledger');
    await writeFile(join(cut, LEDGER_FILE), `${(await ledgerLines(cut)).slice(0, 9).join('\n')}\n`);
    expect((await restartError(cut)).message).toMatch(/entry 10 is missing: the newest checkpoint records entry 10, the ledger ends at entry 9/);
  });

  it('resumes when the process stopped between the checkpoint and the ledger write, recording the round with the checkpoint\'s ε', async () => {
    const dir = await copyOfRun('crash-between-writes');
    // Round 10's entry and the end entry never reached the ledger: it ends at the checkpoint's anchor.
    await writeFile(join(dir, LEDGER_FILE), `${(await ledgerLines(dir)).slice(0, ROUNDS).join('\n')}\n`);
    const checkpoint = await readLatestCheckpoint(dir);
    const coordinator = new Coordinator(options(dir));
    expect(await coordinator.restore()).toBe(true);
    const summary = await coordinator.run(); // all 10 rounds done: runs none, writes the end entry
    expect(summary.rounds).toEqual([]);
    const ledger = await readLedger(join(dir, LEDGER_FILE), checkpoint?.ledger);
    expect(ledger?.ok).toBe(true);
    if (!ledger?.ok) return;
    // The restart wrote the lost round-10 entry from its checkpoint first: byte for byte the line
    // the uninterrupted run wrote (same place in the chain), so the ledger records every round.
    expect((await ledgerLines(dir))[ROUNDS]).toBe((await ledgerLines(finished))[ROUNDS]);
    expect(ledger.entries.at(-3)).toMatchObject({ type: 'round', round: ROUNDS });
    const resume = ledger.entries.at(-2)!;
    expect(resume).toMatchObject({ type: 'resume', round: ROUNDS });
    expect(ledger.entries.at(-1)).toMatchObject({ type: 'end', round: ROUNDS, epsilon: resume.epsilon });
    const finishedLedger = await readLedger(join(finished, LEDGER_FILE));
    expect(resume.epsilon).toBe(finishedLedger?.ok ? ledgerEpsilon(finishedLedger.entries) : undefined);
    expect((await readdir(dir)).filter((name) => name.endsWith('.ckpt'))).toHaveLength(3);
  });
});
