/**
 * Pace steering end to end: a real redis-server, a leader and two gateways (in this process, on
 * loopback WebSockets), 6 real Node SDK clients and 3 older clients that never announced 'pace'
 * (scripted peers). Each round wants fewer devices than the gateways hold, so from the second round
 * on (once the leader has timed a round) each gateway tells the eligible devices it did not admit to
 * come back within the leader's window. The paced SDK clients leave normally, come back with their
 * resume token (same client id), and every round commits; `minAvailable` is every device, so a round
 * begins only once everyone paced before it is back. The last round paces nobody (no round
 * follows). The older clients are never paced: gateway 0 holds them and 2 SDK clients and admits 2
 * devices a round, so at least one of them is left out of every round.
 *
 * Deterministic: it asserts on events (pace, reconnect, round records), never on timing. The leader's
 * window is read from Redis while the round it belongs to is provably open: before any member
 * answers (the SDK's `approveRound`, the peer's `beforeUpdate`), since the round cannot end first.
 * Members also hold their answer until each gateway's heartbeat shows the round under way (its
 * members busy): a round shorter than a heartbeat would let the leader begin the next one on the
 * counts from before the pacing, and so before the paced devices are back. Real rounds last far
 * longer than the 500 ms heartbeat; this test's last a few hundred ms.
 */
import { setMaxListeners } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ShoalClient, initBackend } from '@shoal/client';
import { builtinInitialModel, type CoordinatorOptions, type RoundMetrics } from '@shoal/coordinator';
import { createSeededRandom, type RetryWindow } from '@shoal/protocol';
import { ControlPlane, MIN_PACE_MS, startGateway, startLeader, type RoundTask } from '@shoal/scaleout';
import { loadDataset, partitionIid, subset } from '@shoal/sim';
import { fedAvg } from '@shoal/strategy';
import { startRedisServer, startScriptedPeer, type RedisServer, type ScriptedPeer } from '@shoal/testkit';

const TOKEN = 'pace-token';
const ROUNDS = 5;
const SDK_CLIENTS = 6;
const LEGACY_CLIENTS = 3;
const DEVICES = SDK_CLIENTS + LEGACY_CLIENTS;
/** Gateway 0: the older clients and SDK clients 0 and 1; gateway 1: SDK clients 2 to 5. */
const gatewayOf = (sdkClient: number) => (sdkClient < 2 ? 0 : 1);
const DEVICES_AT = [LEGACY_CLIENTS + 2, SDK_CLIENTS - 2];

/** Resolves once `condition` holds, checking it every 10 ms (the test's timeout bounds the wait). */
async function until(condition: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('pace steering across a leader and two gateways', () => {
  const cleanup: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => {
    for (const step of cleanup.reverse()) await step();
    cleanup.length = 0;
  });

  it('paces the eligible devices not admitted with the leader window; they come back and later rounds commit; older clients are never paced', async () => {
    await initBackend();
    const redis: RedisServer = await startRedisServer();
    cleanup.push(() => redis.kill());
    const dir = mkdtempSync(join(tmpdir(), 'shoal-pace-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const { train } = loadDataset('digits', { seed: 0 });
    const initial = builtinInitialModel('logreg', train.featureShape, train.numClasses, 0);
    const options: CoordinatorOptions = {
      model: initial,
      tokens: [TOKEN],
      rounds: ROUNDS,
      // 3 wanted, 4 admitted (over-selection 1.3; 2 per gateway) of the 9 devices: 5 left out every round.
      clientsPerRound: 3,
      minClients: 2,
      minAvailable: DEVICES,
      roundTimeoutMs: 60_000,
      heartbeatIntervalMs: 60_000,
      train: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
    };
    const rounds: RoundMetrics[] = [];
    const task = { redisUrl: redis.url, task: 'pace' };
    const leader = await startLeader({ ...options, checkpointDir: dir, onRound: (metrics) => rounds.push(metrics) }, {}, { ...task, id: 'leader' });
    cleanup.push(() => leader.close());
    const gateways = await Promise.all([0, 1].map((g) => startGateway(options, {}, { ...task, id: `gw-${g}` })));
    cleanup.push(() => Promise.all(gateways.map((gateway) => gateway.close())));
    const plane = new ControlPlane(redis.url, 'pace');
    await plane.connect();
    cleanup.push(() => plane.close());

    // Each round's task as the leader wrote it, read while that round is open (see the header); then
    // the wait for every gateway's heartbeat to count fewer eligible devices than it holds.
    const tasks = new Map<number, RoundTask>();
    const readTask = async (round: number) => {
      const status = await plane.roundStatus();
      if (status?.round !== round || status.phase !== 'selecting') throw new Error(`round ${round} is not open in Redis: ${JSON.stringify(status)}`);
      tasks.set(round, JSON.parse(status.task) as RoundTask);
      await until(async () => {
        const live = await plane.liveGateways();
        return [0, 1].every((g) => (live.find((gateway) => gateway.id === `gw-${g}`)?.eligible ?? Infinity) < DEVICES_AT[g]!);
      });
    };

    // The older clients first, on gateway 0: they announce no 'pace', and answer every train.
    const legacy: ScriptedPeer[] = [];
    for (let k = 0; k < LEGACY_CLIENTS; k++) {
      legacy.push(
        await startScriptedPeer(gateways[0]!.url, {
          token: TOKEN,
          numExamples: 10,
          hello: { capabilities: ['fedavg'] },
          delta: () => new Float32Array(initial.weights.length),
          beforeUpdate: (message) => readTask(message.round),
        }),
      );
    }

    // The SDK clients, each welcomed before the next starts.
    const stop = new AbortController();
    cleanup.push(() => stop.abort());
    setMaxListeners(4 * SDK_CLIENTS, stop.signal);
    const partitions = partitionIid(train.length, SDK_CLIENTS, createSeededRandom(1));
    const events: string[][] = partitions.map(() => []);
    const clientIds: Set<string>[] = partitions.map(() => new Set());
    const paced: { client: number; round: number; retryInMs: RetryWindow; delayMs: number }[] = [];
    const runs: Promise<unknown>[] = [];
    for (const [i, indices] of partitions.entries()) {
      const data = subset(train, indices);
      const client = new ShoalClient({
        url: gateways[gatewayOf(i)]!.url,
        token: TOKEN,
        data: { x: data.x, y: data.y, featureShape: data.featureShape },
        approveRound: async (plan) => (await readTask(plan.round), true),
      });
      const connected = new Promise<void>((resolve) => client.on('connected', () => resolve()));
      client.on('connected', ({ clientId }) => (events[i]!.push('connected'), clientIds[i]!.add(clientId)));
      client.on('disconnected', ({ code, reason }) => events[i]!.push(`disconnected ${code} ${reason}`));
      client.on('roundEnd', ({ round, status }) => events[i]!.push(`round ${round} ${status}`));
      client.on('error', ({ error }) => events[i]!.push(`error ${error.message}`));
      client.on('paced', (event) => (events[i]!.push(`paced ${event.round}`), paced.push({ client: i, ...event })));
      runs.push(client.run({ signal: stop.signal }).catch((error: unknown) => events[i]!.push(`run failed ${String(error)}`)));
      await connected;
    }

    await leader.finished;
    // Every paced device is back (its welcome arrived before the next round began).
    const pacedCount = (i: number) => paced.filter((event) => event.client === i).length;
    await until(async () => events.every((log, i) => log.filter((entry) => entry === 'connected').length >= 1 + pacedCount(i)));
    await Promise.all(gateways.map((gateway) => gateway.finished));
    // Every client's run() ends by itself: its gateway closed it with TRAINING_COMPLETE.
    await Promise.allSettled(runs);
    const context = JSON.stringify({ rounds, events, paced, tasks: [...tasks] });

    // Every round commits, paced devices notwithstanding.
    expect(rounds.map((round) => round.status), context).toEqual(Array(ROUNDS).fill('committed'));

    // Round 1 is untimed and the last round has no next: nobody is paced in them. The rounds
    // between have the window of the rule.
    expect(paced.filter((event) => event.round === 1 || event.round === ROUNDS), context).toEqual([]);
    expect(tasks.get(1)?.retryWindowMs, context).toBeUndefined();
    expect(tasks.get(ROUNDS)?.retryWindowMs, context).toBeUndefined();
    for (let round = 2; round < ROUNDS; round++) {
      const window = tasks.get(round)?.retryWindowMs;
      expect(window, `round ${round}: ${context}`).toBeDefined();
      expect(window!.min, context).toBeGreaterThanOrEqual(MIN_PACE_MS);
      // k = eligible / admitted = 9 / 4 with every device back (minAvailable), but at most the rounds
      // left (so 9/4, 2, 1 in rounds 2, 3, 4), up to a millisecond's rounding.
      expect(Math.abs(window!.max - Math.min(DEVICES / 4, ROUNDS - round) * window!.min), context).toBeLessThanOrEqual(1);
    }

    // Every pace carried its round's window; each paced round paced every capable device left out.
    expect(paced.length, context).toBeGreaterThan(0);
    for (const event of paced) {
      expect(event.retryInMs, context).toEqual(tasks.get(event.round)?.retryWindowMs);
      expect(event.delayMs).toBeGreaterThanOrEqual(event.retryInMs.min);
      expect(event.delayMs).toBeLessThanOrEqual(event.retryInMs.max);
    }
    for (let round = 2; round < ROUNDS; round++) {
      const admitted = rounds[round - 1]!.selected;
      const pacedThen = paced.filter((event) => event.round === round).length;
      const legacyLeftOut = legacy.filter((peer) => !peer.trains.some((message) => message.round === round)).length;
      // At least one older client is left out (3 of them, 2 admitted at gateway 0), and every device
      // left out is paced but those.
      expect(legacyLeftOut, `round ${round}: ${context}`).toBeGreaterThanOrEqual(1);
      expect(pacedThen, `round ${round}: ${context}`).toBe(DEVICES - admitted - legacyLeftOut);
    }

    // A paced client closes normally and comes back with the same id before the next round begins.
    for (const event of paced) {
      const log = events[event.client]!;
      const at = log.indexOf(`paced ${event.round}`);
      expect(log.slice(at - 1, at + 2), context).toEqual([`disconnected 1000 paced`, `paced ${event.round}`, 'connected']);
    }
    for (const [i, ids] of clientIds.entries()) expect(ids.size, `client ${i} kept its id: ${context}`).toBe(1);
    // No errors, and every SDK client stayed until training was complete.
    expect(events.flatMap((log) => log.filter((entry) => entry.startsWith('error') || entry.startsWith('run failed'))), context).toEqual([]);
    for (const log of events) expect(log.at(-1), context).toBe('disconnected 4013 training complete');

    // The older clients were never paced: nothing of the kind arrived, and they stayed connected
    // until training was complete.
    for (const peer of legacy) {
      expect(peer.peer.queued('pace'), context).toBe(0);
      expect((await peer.peer.closed).code, context).toBe(4013);
    }
  }, 120_000);
});
