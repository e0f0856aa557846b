// The chaos run's checks must be able to fail: a real 4-round DP run's folder passes them, and a
// checkpoint whose weights or accountant were changed afterwards fails the check that names it.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinInitialModel, startCoordinator, writeCheckpoint, type Checkpoint } from '@shoal/coordinator';
import { RdpAccountant } from '@shoal/dp';
import { decodeFrame } from '@shoal/protocol';
import { fedAvg } from '@shoal/strategy';
import { startScriptedPeer } from '@shoal/testkit';
import { InvariantReport, checkFolder } from './invariants.js';

const TOKEN = 'chaos-invariants-token';
const MODEL = builtinInitialModel('logreg', [4], 3, 7);
const DELTA = 1e-5;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'shoal-chaos-invariants-'));
  const coordinator = await startCoordinator({
    model: MODEL,
    tokens: [TOKEN],
    rounds: 4,
    clientsPerRound: 2,
    minClients: 2,
    minAvailable: 3,
    seed: 5,
    roundTimeoutMs: 20_000,
    train: { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
    strategy: fedAvg(),
    dp: { mode: 'central', noiseMultiplier: 1.2, clipNorm: 1, delta: DELTA },
    checkpointDir: root,
    retention: { keepCheckpoints: 100 },
  });
  const peers = [];
  for (let i = 0; i < 3; i++) {
    peers.push(await startScriptedPeer(coordinator.url, { token: TOKEN, numExamples: 8, hello: { capabilities: ['dp'] }, delta: (train) => new Float32Array(MODEL.weights.length).fill(0.01 * train.round) }));
  }
  await coordinator.finished;
  await coordinator.close();
  for (const peer of peers) peer.peer.terminate();
}, 60_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function checkpointOf(round: number): Promise<Checkpoint> {
  return decodeFrame(await readFile(join(root, `round-00000${round}.ckpt`))) as Checkpoint;
}

describe('chaos invariants', () => {
  it('pass on an untouched run, and fail by name when a checkpoint\'s weights or accountant change', async () => {
    const clean = new InvariantReport();
    expect(await checkFolder(clean, root, DELTA, true)).toMatchObject({ latestRound: 4 });
    expect(clean.violations).toEqual([]);
    expect(clean.passed.get('ledger ε equals the accountant over the charged rounds')).toBe(4);

    // One weight of round 2's checkpoint changed by one float32 step: the ledger's modelHash no longer matches.
    const two = await checkpointOf(2);
    const weights = two.weights.slice();
    weights[0] = Math.fround(weights[0]! * (1 + 2 ** -23));
    await writeCheckpoint(root, { ...two, weights }, { retention: { keepCheckpoints: 100 } });
    const changedWeights = new InvariantReport();
    await checkFolder(changedWeights, root, DELTA, true);
    expect(changedWeights.violations.some((v) => v.startsWith('ledger modelHash equals the checkpoint weights: round 2'))).toBe(true);
    await writeCheckpoint(root, two, { retention: { keepCheckpoints: 100 } });

    // Round 3's accountant charged one extra round: ε no longer matches the ledger's charges.
    const three = await checkpointOf(3);
    const accountant = RdpAccountant.fromJSON(three.privacy!.accountant);
    accountant.compose(1, 1.2);
    await writeCheckpoint(root, { ...three, privacy: { ...three.privacy!, accountant: accountant.toJSON() } }, { retention: { keepCheckpoints: 100 } });
    const changedAccountant = new InvariantReport();
    await checkFolder(changedAccountant, root, DELTA, true);
    expect(changedAccountant.violations).toEqual(
      expect.arrayContaining([expect.stringMatching(/^a checkpoint's accountant history equals the charged rounds: round 3/), expect.stringMatching(/^a checkpoint's ε equals the accountant over the charged rounds: round 3/)]),
    );
  });
});
