/**
 * Scale-out end to end: a real redis-server, one leader and three gateways (in this process, on
 * loopback WebSockets) and real Node SDK clients training on scikit-learn digits under SecAgg+ per
 * group. The round commits, and the leader's model equals the FedAvg of every participating
 * client's update across the three gateways, within the fixed-point bound: with one group per
 * gateway (15 clients, 5 per gateway, no `secagg.groupSize`), and with several groups per gateway
 * (21 clients as 9, 8 and 4, groups of at least 4: 5 + 4, 4 + 4 and 4, each its own SecAgg+); and a
 * group that fails is lost alone: groups of 3 cannot run SecAgg+ at maxDropout 0.2 (no valid
 * threshold), so a gateway of 7 clients in groups of at least 3 (4 + 3) loses its group of 3 and
 * still contributes its group of 4.
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

interface TaskRun {
  readonly rounds: RoundMetrics[];
  readonly gateways: { readonly history: readonly RoundMetrics[] }[];
  readonly updates: ReadonlyMap<number, LocalUpdate>;
  readonly weights: Float32Array;
  readonly initial: Float32Array;
}

describe('a leader and three gateways over Redis', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const step of cleanup.reverse()) await step();
    cleanup.length = 0;
  });

  /** One round of a task over three gateways holding `perGateway` clients each; every client takes part (the cohort is all of them). */
  async function runTask(perGateway: readonly number[], groupSize?: number): Promise<TaskRun> {
    await initBackend();
    const redis: RedisServer = await startRedisServer();
    cleanup.push(() => redis.kill());
    const dir = mkdtempSync(join(tmpdir(), 'shoal-scaleout-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const clients = perGateway.reduce((total, count) => total + count, 0);
    const { train } = loadDataset('digits', { seed: 0 });
    const initial = builtinInitialModel('logreg', train.featureShape, train.numClasses, 0);
    const options: CoordinatorOptions = {
      model: initial,
      tokens: [TOKEN],
      rounds: 1,
      clientsPerRound: clients,
      minClients: 6,
      minAvailable: clients,
      roundTimeoutMs: 60_000,
      heartbeatIntervalMs: 60_000,
      train: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
      secagg: { mode: 'secagg+', maxDropout: 0.2, stageTimeoutMs: 10_000, clipRange: 2, maxWeight: 1_000, ...(groupSize !== undefined ? { groupSize } : {}) },
    };
    const rounds: RoundMetrics[] = [];
    const task = { redisUrl: redis.url, task: 'digits' };
    const leader = await startLeader({ ...options, checkpointDir: dir, onRound: (metrics) => rounds.push(metrics) }, {}, { ...task, id: 'leader-a', leaseMs: 2_000 });
    cleanup.push(() => leader.close());
    // The leader takes no devices, even with a valid token: they belong on a gateway.
    expect(await upgradeStatus(leader.url, { Authorization: `Bearer ${TOKEN}` })).toEqual({ opened: false, statusCode: 503 });
    const gateways = await Promise.all(perGateway.map((_, g) => startGateway(options, {}, { ...task, id: `gw-${g}` })));
    cleanup.push(() => Promise.all(gateways.map((gateway) => gateway.close())).then(() => {}));

    const updates = new Map<number, LocalUpdate>();
    const partitions = partitionIid(train.length, clients, createSeededRandom(1));
    // Client i connects to gateway gatewayOf[i]: the first perGateway[0] to gw-0, and so on.
    const gatewayOf = perGateway.flatMap((count, g) => new Array<number>(count).fill(g));
    const stop = new AbortController();
    setMaxListeners(4 * partitions.length, stop.signal);
    const runs = partitions.map((indices, i) => {
      const data = subset(train, indices);
      const client = new ShoalClient({
        url: gateways[gatewayOf[i]!]!.url,
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

    // Committed durably by the leader alone, and the task marked finished for the gateways.
    const checkpoint = await readLatestCheckpoint(dir);
    expect(checkpoint).toMatchObject({ round: 1 });
    expect([...checkpoint!.weights]).toEqual([...summary.weights]);
    const plane = new ControlPlane(redis.url, 'digits');
    await plane.connect();
    cleanup.push(() => plane.close());
    expect(await plane.roundStatus()).toMatchObject({ round: 1, phase: 'committed', finished: true });
    return { rounds, gateways, updates, weights: summary.weights, initial: initial.weights };
  }

  /** The coordinates of the leader's model farther from initial + FedAvg of every update than the SecAgg fixed-point bound at the coarsest group's scale. */
  function offFedAvg({ gateways, updates, weights, initial }: TaskRun): { j: number; error: number; allowed: number }[] {
    const d = initial.length;
    const bound = 2 * 1_000;
    const weightedSum = new Float64Array(d);
    let totalWeight = 0;
    for (const update of updates.values()) {
      const weight = Math.min(update.numExamples, 1_000);
      totalWeight += weight;
      for (let j = 0; j < d; j++) weightedSum[j]! += Math.max(-bound, Math.min(bound, weight * update.delta[j]!));
    }
    const expected = initial.map((w, j) => w + weightedSum[j]! / totalWeight);
    // A gateway's secagg.scale is its groups' smallest; each group's error is at most its count × its step.
    const scale = Math.min(...gateways.map((gateway) => gateway.history[0]!.secagg!.scale));
    return [...weights].map((got, j) => ({ j, error: Math.abs(got - expected[j]!), allowed: secAggMeanBound({ count: updates.size, scale, bound, totalWeight }, got) })).filter((c) => c.error > c.allowed);
  }

  it('commits rounds whose model is the FedAvg of every participating device across gateways', async () => {
    const run = await runTask([5, 5, 5]);
    const { rounds, gateways } = run;
    expect(rounds, JSON.stringify([rounds, gateways.map((g) => g.history)])).toHaveLength(1);
    expect(rounds[0]).toMatchObject({ status: 'committed', participants: 15, selected: 15, groups: GATEWAYS });
    // Without secagg.groupSize every gateway ran one group of its own five devices.
    for (const gateway of gateways) expect(gateway.history[0]).toMatchObject({ status: 'committed', participants: 5, groups: 1 });
    expect(run.updates.size).toBe(15);
    expect(offFedAvg(run)).toEqual([]);
  }, 120_000);

  it('runs several SecAgg groups per gateway, each reported alone, and commits the FedAvg of them all', async () => {
    const run = await runTask([9, 8, 4], 4);
    const { rounds, gateways } = run;
    expect(rounds, JSON.stringify([rounds, gateways.map((g) => g.history)])).toHaveLength(1);
    // floor(9 / 4) + floor(8 / 4) + floor(4 / 4) = 5 groups: more group reports than gateways.
    expect(rounds[0]).toMatchObject({ status: 'committed', participants: 21, selected: 21, groups: 5 });
    expect(rounds[0]!.groups).toBeGreaterThan(GATEWAYS);
    expect(gateways.map((gateway) => gateway.history[0])).toMatchObject([
      { status: 'committed', selected: 9, participants: 9, groups: 2 },
      { status: 'committed', selected: 8, participants: 8, groups: 2 },
      { status: 'committed', selected: 4, participants: 4, groups: 1 },
    ]);
    expect(run.updates.size).toBe(21);
    expect(offFedAvg(run)).toEqual([]);
  }, 120_000);

  it('loses a failed group alone: its gateway still contributes its other group', async () => {
    const run = await runTask([7, 4, 4], 3);
    const { rounds, gateways } = run;
    expect(rounds, JSON.stringify([rounds, gateways.map((g) => g.history)])).toHaveLength(1);
    // 4 groups reported; the group of 3 failed before its members trained, so 3 sums were added.
    expect(rounds[0]).toMatchObject({ status: 'committed', selected: 15, participants: 12, dropouts: 3, groups: 3 });
    expect(gateways[0]!.history[0]).toMatchObject({ status: 'committed', selected: 7, participants: 4, groups: 2 });
    expect(run.updates.size).toBe(12);
    expect(offFedAvg(run)).toEqual([]);
  }, 120_000);
});
