/**
 * Redis restarted mid-round (SIGKILLed, then started empty on the same port: it never saves): the
 * in-flight round is abandoned everywhere (the leader logs it aborted, the gateways tell their
 * devices so), and training continues: the next round commits, under a new lease epoch.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { builtinInitialModel, readLatestCheckpoint, type CoordinatorOptions, type RoundMetrics } from '@shoal/coordinator';
import { startGateway, startLeader } from '@shoal/scaleout';
import { fedAvg } from '@shoal/strategy';
import { gate, startRedisServer, startScriptedPeer, type RedisServer, type ScriptedPeer } from '@shoal/testkit';

const TOKEN = 'redis-restart-token';
const MODEL = builtinInitialModel('logreg', [4], 3, 2);

describe('Redis restarted mid-round', () => {
  const cleanup: (() => Promise<unknown> | void)[] = [];
  afterEach(async () => {
    for (const step of cleanup.reverse()) await step();
    cleanup.length = 0;
  });

  it('abandons the round in flight and goes on training', async () => {
    let redis: RedisServer = await startRedisServer();
    cleanup.push(() => redis.kill());
    const dir = await mkdtemp(join(tmpdir(), 'shoal-redis-restart-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const options: CoordinatorOptions = {
      model: MODEL,
      tokens: [TOKEN],
      rounds: 2,
      clientsPerRound: 4,
      minClients: 2,
      minAvailable: 4,
      roundTimeoutMs: 60_000,
      heartbeatIntervalMs: 60_000,
      train: { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
    };
    const rounds: RoundMetrics[] = [];
    const task = { redisUrl: redis.url, task: 'restart' };
    const leader = await startLeader({ ...options, checkpointDir: dir, onRound: (metrics) => rounds.push(metrics) }, {}, { ...task, id: 'leader', leaseMs: 1_000 });
    cleanup.push(() => leader.close());
    const epochBefore = leader.epoch();
    const gateways = await Promise.all(['gw-0', 'gw-1'].map((id) => startGateway(options, {}, { ...task, id })));
    cleanup.push(() => Promise.all(gateways.map((gateway) => gateway.close())));

    // Every device holds its round-1 update until Redis has been restarted.
    const roundOne = gate();
    let trainsOfRoundOne = 0;
    const allTrained = gate();
    const peers: ScriptedPeer[] = [];
    cleanup.push(() => peers.forEach((peer) => peer.peer.ws.terminate()));
    for (let k = 0; k < 4; k++) {
      peers.push(
        await startScriptedPeer(gateways[k % 2]!.url, {
          token: TOKEN,
          numExamples: 10,
          delta: () => new Float32Array(MODEL.weights.length).fill(0.01),
          beforeUpdate: async (train) => {
            if (train.round !== 1) return;
            if (++trainsOfRoundOne === 4) allTrained.open();
            await roundOne.opened;
          },
        }),
      );
    }
    await allTrained.opened;
    await redis.kill();
    redis = await startRedisServer(redis.port);
    roundOne.open();

    await leader.finished;
    expect(rounds.map(({ round, status }) => [round, status])).toEqual([
      [1, 'aborted'],
      [2, 'committed'],
    ]);
    expect(rounds[0]!.reason).toMatch(/Redis/);
    expect(leader.epoch()).toBeGreaterThan(epochBefore); // the lease was taken again, with a higher epoch
    expect((await readLatestCheckpoint(dir))?.round).toBe(2);
    // The devices heard that round 1 did not commit, and that round 2 did.
    for (const peer of peers) {
      const results = [await peer.peer.next('result'), await peer.peer.next('result')];
      expect(results.map(({ round, status }) => [round, status])).toEqual([
        [1, 'aborted'],
        [2, 'committed'],
      ]);
    }
  }, 60_000);
});
