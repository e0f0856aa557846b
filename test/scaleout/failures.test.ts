/**
 * Scale-out failures with real processes: `shoal leader` and `shoal gateway` children of this test
 * on one real redis-server, scripted WebSocket devices, and SIGKILLs at explicit crash points
 * (SHOAL_CRASH_AT), never at a time that happens to land somewhere:
 * - a gateway dies mid-round: its group is lost, the round commits from the other groups;
 * - the leader dies mid-aggregation: a standby takes over, abandons that round (it never commits),
 *   and ε is the accountant's over the committed rounds;
 * - the leader dies after ending a round in Redis but before its checkpoint: the standby adopts
 *   that round once (one checkpoint, one ledger entry), and goes on.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LEDGER_FILE, builtinInitialModel, readLatestCheckpoint, readLedger, type RoundMetrics } from '@shoal/coordinator';
import { RdpAccountant } from '@shoal/dp';
import { ControlPlane } from '@shoal/scaleout';
import { float32Ulp, startRedisServer, startScriptedPeer, startServe, type RedisServer, type ScriptedPeer, type ServeProcess } from '@shoal/testkit';

const TOKEN = 'scaleout-failures-token';
const SEED = 1;
const MODEL = builtinInitialModel('logreg', [4], 3, SEED);
const NUM_PARAMS = MODEL.weights.length;
const DP = { mode: 'central', noiseMultiplier: 1, clipNorm: 1 } as const;

interface Task {
  readonly redis: RedisServer;
  readonly dir: string;
  readonly configPath: string;
  readonly processes: ServeProcess[];
  readonly peers: ScriptedPeer[];
}

const tasks: Task[] = [];
afterEach(async () => {
  for (const task of tasks.splice(0)) {
    for (const peer of task.peers) peer.peer.ws.terminate();
    await Promise.all(task.processes.map((process) => process.kill()));
    await task.redis.kill();
    await rm(task.dir, { recursive: true, force: true });
  }
});

async function newTask(config: Record<string, unknown>): Promise<Task> {
  const redis = await startRedisServer();
  const dir = await mkdtemp(join(tmpdir(), 'shoal-scaleout-failures-'));
  const configPath = join(dir, 'task.json');
  const base = { name: 'failover', seed: SEED, roundTimeoutMs: 30_000, model: { builtin: 'logreg', inputShape: [4], numClasses: 3 }, server: { tokens: [TOKEN], checkpointDir: join(dir, 'checkpoints') } };
  await writeFile(configPath, JSON.stringify({ ...base, ...config }));
  const task = { redis, dir, configPath, processes: [], peers: [] };
  tasks.push(task);
  return task;
}

function start(task: Task, command: 'gateway' | 'leader', id: string, env: Record<string, string> = {}, args: readonly string[] = []): ServeProcess {
  const child = startServe(task.configPath, ['--redis', task.redis.url, '--id', id, ...args], { command, env: { ...process.env, ...env } });
  task.processes.push(child);
  return child;
}

/** `count` scripted devices on `url`; device k sends the delta filled with (k + 1) / 100 over (k + 1) · 10 examples. */
async function devices(task: Task, url: string, first: number, count: number): Promise<void> {
  for (let k = first; k < first + count; k++) {
    task.peers.push(await startScriptedPeer(url, { token: TOKEN, numExamples: (k + 1) * 10, hello: { capabilities: ['fedavg', 'dp'] }, delta: () => new Float32Array(NUM_PARAMS).fill((k + 1) / 100) }));
  }
}

function roundLine(round: number) {
  return (line: Record<string, unknown>) => line['round'] === round && 'status' in line;
}

/** ε after `rounds` rounds at sampling rate 1 (every round's cohort is every eligible device here). */
function epsilonAfter(rounds: number, delta: number): number {
  const accountant = new RdpAccountant();
  for (let i = 0; i < rounds; i++) accountant.compose(1, DP.noiseMultiplier);
  return accountant.epsilon(delta).epsilon;
}

describe('scale-out failures (real processes, redis-server, SIGKILL at explicit points)', () => {
  it('a leader whose lease another node took stops committing and exits 3', async () => {
    const task = await newTask({ rounds: 3, clientsPerRound: 4, minClients: 2, minAvailable: 4 });
    const leader = start(task, 'leader', 'leader-a', {}, ['--lease-ms', '600']);
    await leader.url;
    const intruder = new ControlPlane(task.redis.url, 'failover');
    await intruder.connect();
    try {
      await intruder.releaseLease('leader-a', 1); // as if leader-a's lease had lapsed
      expect(await intruder.acquireLease('intruder', 60_000)).toBe(2);
      expect(await leader.exit).toEqual({ code: 3, signal: null });
      expect(leader.stderr()).toMatch(/another leader holds the task/);
    } finally {
      intruder.close();
    }
  }, 60_000);

  it('a gateway SIGKILLed mid-round loses only its group: the round commits from the other gateways', async () => {
    const task = await newTask({ rounds: 1, clientsPerRound: 6, minClients: 2, minAvailable: 6 });
    const leader = start(task, 'leader', 'leader-a', {}, ['--lease-ms', '2000']);
    const gateways = [start(task, 'gateway', 'gw-0'), start(task, 'gateway', 'gw-1'), start(task, 'gateway', 'gw-2', { SHOAL_CRASH_AT: 'mid-update:1' })];
    const urls = await Promise.all(gateways.map((gateway) => gateway.url));
    for (const [g, url] of urls.entries()) await devices(task, url, 2 * g, 2);

    const round = (await leader.line(roundLine(1))) as unknown as RoundMetrics;
    expect(await gateways[2]!.exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(round).toMatchObject({ status: 'committed', selected: 4, participants: 4 });
    // FedAvg of devices 0–3 (gateways 0 and 1): Σ nₖ·δₖ / Σ nₖ, the same in every coordinate.
    const examples = [10, 20, 30, 40];
    const mean = examples.reduce((sum, n, k) => sum + n * ((k + 1) / 100), 0) / examples.reduce((sum, n) => sum + n, 0);
    const checkpoint = await readLatestCheckpoint(join(task.dir, 'checkpoints'));
    expect(checkpoint?.round).toBe(1);
    const off = [...checkpoint!.weights].map((got, j) => ({ j, error: Math.abs(got - (MODEL.weights[j]! + mean)) })).filter(({ j, error }) => error > float32Ulp(checkpoint!.weights[j]!));
    expect(off).toEqual([]);
  }, 90_000);

  it('a leader SIGKILLed mid-aggregation is replaced by a standby: that round is abandoned, never committed, and ε counts the committed rounds', async () => {
    const task = await newTask({ rounds: 3, clientsPerRound: 4, minClients: 2, minAvailable: 4, dp: DP });
    const first = start(task, 'leader', 'leader-a', { SHOAL_CRASH_AT: 'mid-aggregate:2' }, ['--lease-ms', '1000']);
    await first.url; // it holds the lease
    const standby = start(task, 'leader', 'leader-b', {}, ['--lease-ms', '1000']);
    await standby.line((line) => line['event'] === 'standby');
    const gateways = [start(task, 'gateway', 'gw-0'), start(task, 'gateway', 'gw-1')];
    const urls = await Promise.all(gateways.map((gateway) => gateway.url));
    for (const [g, url] of urls.entries()) await devices(task, url, 2 * g, 2);

    expect(await first.line(roundLine(1))).toMatchObject({ status: 'committed' });
    expect(await first.exit).toEqual({ code: null, signal: 'SIGKILL' });
    const abandoned = await standby.line(roundLine(2));
    expect(abandoned).toMatchObject({ status: 'aborted', reason: expect.stringContaining('replaced') });
    const last = await standby.line(roundLine(3));
    expect(last).toMatchObject({ status: 'committed' });
    expect(await standby.line((line) => line['event'] === 'finished')).toMatchObject({ stoppedBy: 'completed' });

    const ledger = await readLedger(join(task.dir, 'checkpoints', LEDGER_FILE));
    expect(ledger?.ok).toBe(true);
    const rounds = ledger!.entries.filter((entry) => entry.type === 'round') as unknown as { round: number; status: string; epsilon: number }[];
    expect(rounds.map(({ round, status }) => [round, status])).toEqual([
      [1, 'committed'],
      [2, 'aborted'],
      [3, 'committed'],
    ]);
    const delta = (last as { delta: number }).delta;
    expect((last as { epsilon: number }).epsilon).toBeCloseTo(epsilonAfter(2, delta), 10);
    expect(rounds.at(-1)!.epsilon).toBeCloseTo(epsilonAfter(2, delta), 5);
  }, 90_000);

  it('a leader SIGKILLed after ending a round in Redis, before its checkpoint: the standby adopts that round once and goes on', async () => {
    const task = await newTask({ rounds: 3, clientsPerRound: 4, minClients: 2, minAvailable: 4, dp: DP });
    const first = start(task, 'leader', 'leader-a', { SHOAL_CRASH_AT: 'after-end:2' }, ['--lease-ms', '1000']);
    await first.url;
    const standby = start(task, 'leader', 'leader-b', {}, ['--lease-ms', '1000']);
    await standby.line((line) => line['event'] === 'standby');
    const gateways = [start(task, 'gateway', 'gw-0'), start(task, 'gateway', 'gw-1')];
    const urls = await Promise.all(gateways.map((gateway) => gateway.url));
    for (const [g, url] of urls.entries()) await devices(task, url, 2 * g, 2);

    expect(await first.exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(first.lines.filter(roundLine(2))).toEqual([]); // it died before logging round 2
    const adopted = await standby.line(roundLine(2));
    expect(adopted).toMatchObject({ status: 'committed' });
    // The gateways were told round 2 committed as this model version: the one the standby adopted.
    for (const gateway of gateways) expect(await gateway.line(roundLine(2))).toMatchObject({ status: 'committed', modelVersion: adopted['modelVersion'] });
    expect(await standby.line(roundLine(3))).toMatchObject({ status: 'committed' });
    await standby.line((line) => line['event'] === 'finished');

    const ledger = await readLedger(join(task.dir, 'checkpoints', LEDGER_FILE));
    expect(ledger?.ok).toBe(true);
    const rounds = ledger!.entries.filter((entry) => entry.type === 'round') as unknown as { round: number; status: string; epsilon: number }[];
    expect(rounds.map(({ round, status }) => [round, status])).toEqual([
      [1, 'committed'],
      [2, 'committed'],
      [3, 'committed'],
    ]);
    expect(rounds.at(-1)!.epsilon).toBeCloseTo(epsilonAfter(3, (adopted as { delta: number }).delta), 5);
  }, 90_000);
});
