// Where a real `shoal serve` draws its cohorts from. Without a seed, from a CSPRNG: two processes
// with the same config select different cohorts, so no client can predict who is selected (or who
// its SecAgg+ neighbours are). With a seed, reproducibly, and per round: a coordinator restarted
// from its checkpoint continues the seeded draws instead of replaying those of its first round.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startScriptedPeer, startServe, type ScriptedPeer, type ServeProcess } from '@shoal/testkit';

const TOKEN = 'cohort-randomness-token';
const PEERS = 10;
const COHORT = 3;
/** logreg on 4 features and 3 classes. */
const NUM_PARAMS = 15;

let workDir: string;
const servers: ServeProcess[] = [];
const peers: ScriptedPeer[] = [];

beforeEach(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'shoal-cohorts-'));
});

afterEach(async () => {
  for (const { peer } of peers.splice(0)) peer.terminate();
  for (const server of servers.splice(0)) await server.kill();
  await rm(workDir, { recursive: true, force: true });
});

/** A serve config: 10 idle clients wanted before each round, cohorts of 3. */
async function writeConfig(name: string, overrides: Record<string, unknown>): Promise<string> {
  const path = join(workDir, name);
  await writeFile(
    path,
    JSON.stringify({
      minClients: 2,
      clientsPerRound: COHORT,
      minAvailable: PEERS,
      roundTimeoutMs: 30_000,
      model: { builtin: 'logreg', inputShape: [4], numClasses: 3 },
      server: { tokens: [TOKEN] },
      ...overrides,
    }),
  );
  return path;
}

/**
 * Runs `shoal serve` to its end with ten honest peers, connected one after another (so the
 * admission order, which seeded sampling shuffles, is the same in every run); returns each
 * round's cohort as the sorted peer numbers that got its `train`.
 */
async function cohortsOf(configPath: string, rounds: readonly number[]): Promise<number[][]> {
  const server = startServe(configPath);
  servers.push(server);
  const url = await server.url;
  const mine: ScriptedPeer[] = [];
  for (let i = 0; i < PEERS; i++) {
    const peer = await startScriptedPeer(url, { token: TOKEN, numExamples: 10, delta: () => new Float32Array(NUM_PARAMS) });
    mine.push(peer);
    peers.push(peer);
  }
  await server.line((line) => line['event'] === 'finished');
  expect((await server.exit).code).toBe(0);
  return rounds.map((round) => mine.flatMap((peer, index) => (peer.trains.some((train) => train.round === round) ? [index] : [])));
}

describe('cohort randomness of shoal serve', () => {
  it('two processes with the same config and no seed select different cohorts', async () => {
    const configPath = await writeConfig('unseeded.json', { rounds: 3 });
    const [first, second] = await Promise.all([cohortsOf(configPath, [1, 2, 3]), cohortsOf(configPath, [1, 2, 3])]);
    for (const cohorts of [first, second]) for (const cohort of cohorts) expect(cohort).toHaveLength(COHORT);
    // Each round's cohort is one of C(10, 3) = 120, uniformly and independently: the two runs agree
    // on all three rounds with probability (1/120)^3 ≈ 5.8e-7. With a fixed seed they always agree.
    expect(second).not.toEqual(first);
  });

  it('a seeded coordinator restarted from its checkpoint continues its draws instead of repeating round 1', async () => {
    const seed = 5;
    // One life of two rounds, for reference.
    const [round1, round2] = await cohortsOf(await writeConfig('whole.json', { seed, rounds: 2 }), [1, 2]);
    // Two lives on one checkpoint folder: round 1, then (restored) round 2.
    const checkpointDir = join(workDir, 'checkpoints');
    const [firstLife] = await cohortsOf(await writeConfig('first.json', { seed, rounds: 1, server: { tokens: [TOKEN], checkpointDir } }), [1]);
    const [secondLife] = await cohortsOf(await writeConfig('second.json', { seed, rounds: 2, server: { tokens: [TOKEN], checkpointDir } }), [2]);
    expect(firstLife).toEqual(round1); // seeded: reproducible
    expect(secondLife).toEqual(round2); // the resumed run draws what the uninterrupted one drew
    // With this seed round 2's cohort differs from round 1's (a restart used to replay round 1's draw).
    expect(secondLife).not.toEqual(firstLife);
  });
});
