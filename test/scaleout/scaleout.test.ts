/**
 * Scale-out end to end: a real redis-server, one leader and three gateways (in this process, on
 * loopback WebSockets) and 15 real Node SDK clients, 5 per gateway, training on scikit-learn
 * digits under SecAgg+ per group. The round commits, and the leader's model equals the FedAvg of
 * every participating client's update across the three gateways, within the fixed-point bound.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setMaxListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { ShoalClient, initBackend, type LocalUpdate } from '@shoal/client';
import { builtinInitialModel, readLatestCheckpoint, type CoordinatorOptions, type RoundMetrics } from '@shoal/coordinator';
import { createSeededRandom } from '@shoal/protocol';
import { startGateway, startLeader, ControlPlane } from '@shoal/scaleout';
import { loadDataset, partitionIid, subset } from '@shoal/sim';
import { fedAvg } from '@shoal/strategy';
import { secAggMeanBound, startRedisServer, upgradeStatus, type RedisServer } from '@shoal/testkit';

const TOKEN = 'scaleout-token';
const GATEWAYS = 3;
const PER_GATEWAY = 5;

describe('a leader and three gateways over Redis', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const step of cleanup.reverse()) await step();
    cleanup.length = 0;
  });

  it('commits rounds whose model is the FedAvg of every participating device across gateways', async () => {
    await initBackend();
    const redis: RedisServer = await startRedisServer();
    cleanup.push(() => redis.kill());
    const dir = mkdtempSync(join(tmpdir(), 'shoal-scaleout-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const { train } = loadDataset('digits', { seed: 0 });
    const initial = builtinInitialModel('logreg', train.featureShape, train.numClasses, 0);
    const options: CoordinatorOptions = {
      model: initial,
      tokens: [TOKEN],
      rounds: 1,
      clientsPerRound: GATEWAYS * PER_GATEWAY,
      minClients: 6,
      minAvailable: GATEWAYS * PER_GATEWAY,
      roundTimeoutMs: 60_000,
      heartbeatIntervalMs: 60_000,
      train: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
      secagg: { mode: 'secagg+', maxDropout: 0.2, stageTimeoutMs: 10_000, clipRange: 2, maxWeight: 1_000 },
    };
    const rounds: RoundMetrics[] = [];
    const task = { redisUrl: redis.url, task: 'digits' };
    const leader = await startLeader({ ...options, checkpointDir: dir, onRound: (metrics) => rounds.push(metrics) }, {}, { ...task, id: 'leader-a', leaseMs: 2_000 });
    cleanup.push(() => leader.close());
    // The leader takes no devices, even with a valid token: they belong on a gateway.
    expect(await upgradeStatus(leader.url, { Authorization: `Bearer ${TOKEN}` })).toEqual({ opened: false, statusCode: 503 });
    const gateways = await Promise.all([...Array(GATEWAYS).keys()].map((g) => startGateway(options, {}, { ...task, id: `gw-${g}` })));
    cleanup.push(() => Promise.all(gateways.map((gateway) => gateway.close())).then(() => {}));

    const updates = new Map<number, LocalUpdate>();
    const partitions = partitionIid(train.length, GATEWAYS * PER_GATEWAY, createSeededRandom(1));
    const stop = new AbortController();
    setMaxListeners(4 * partitions.length, stop.signal);
    const runs = partitions.map((indices, i) => {
      const data = subset(train, indices);
      const client = new ShoalClient({
        url: gateways[i % GATEWAYS]!.url,
        token: TOKEN,
        data: { x: data.x, y: data.y, featureShape: data.featureShape },
        updateSteps: [(update) => (updates.set(i, update), update)],
      });
      return client.run({ signal: stop.signal });
    });
    const summary = await leader.finished;
    await Promise.all(gateways.map((gateway) => gateway.finished)); // they end once the leader marks the task finished
    stop.abort();
    await Promise.allSettled(runs);

    expect(rounds, JSON.stringify([rounds, gateways.map((g) => g.history)])).toHaveLength(1);
    expect(rounds[0]).toMatchObject({ status: 'committed', participants: 15, selected: 15 });
    // Every gateway ran one group of its own five devices.
    for (const gateway of gateways) expect(gateway.history[0]).toMatchObject({ status: 'committed', participants: PER_GATEWAY });

    const d = initial.weights.length;
    const bound = 2 * 1_000;
    const weightedSum = new Float64Array(d);
    let totalWeight = 0;
    for (const update of updates.values()) {
      const weight = Math.min(update.numExamples, 1_000);
      totalWeight += weight;
      for (let j = 0; j < d; j++) weightedSum[j]! += Math.max(-bound, Math.min(bound, weight * update.delta[j]!));
    }
    expect(updates.size).toBe(15);
    const expected = initial.weights.map((w, j) => w + weightedSum[j]! / totalWeight);
    const scale = gateways[0]!.history[0]!.secagg!.scale;
    const offBound = [...summary.weights].map((got, j) => ({ j, error: Math.abs(got - expected[j]!), allowed: secAggMeanBound({ count: 15, scale, bound, totalWeight }, got) })).filter((c) => c.error > c.allowed);
    expect(offBound).toEqual([]);

    // Committed durably by the leader alone, and the task marked finished for the gateways.
    const checkpoint = await readLatestCheckpoint(dir);
    expect(checkpoint).toMatchObject({ round: 1 });
    expect([...checkpoint!.weights]).toEqual([...summary.weights]);
    const plane = new ControlPlane(redis.url, 'digits');
    await plane.connect();
    cleanup.push(() => plane.close());
    expect(await plane.roundStatus()).toMatchObject({ round: 1, phase: 'committed', finished: true });
  }, 120_000);
});
