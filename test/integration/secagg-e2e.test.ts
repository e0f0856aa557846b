/**
 * Secure aggregation end to end: a real coordinator and 20 real Node ShoalClients over loopback
 * WebSockets run one SecAgg+ round on scikit-learn digits while 30% of them are killed mid-round,
 * three before sending their masked input and three before unmasking. The round must commit, and
 * the new global model must equal the plain FedAvg of the updates that made it into the sum (the
 * clients whose masked input arrived), within the exact fixed-point decoding bound plus float32
 * rounding, per coordinate.
 */
import { setMaxListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { ShoalClient, initBackend, wsTransport, type ClientTransport, type LocalUpdate } from '@shoal/client';
import { builtinInitialModel, startCoordinator, type CoordinatorHandle, type RoundMetrics } from '@shoal/coordinator';
import { createSeededRandom, decodeFrame } from '@shoal/protocol';
import { loadDataset, partitionIid, subset } from '@shoal/sim';
import { fedAvg } from '@shoal/strategy';
import { secAggMeanBound } from '@shoal/testkit';

const TOKEN = 'secagg-token';
const NUM_CLIENTS = 20;
const KILL_BEFORE_MASKED = new Set([2, 7, 11]);
const KILL_BEFORE_UNMASK = new Set([4, 13, 18]);

/**
 * The real WebSocket transport, except that client `i` closes its connection instead of sending
 * the message of the stage it is killed at, and every masked input actually sent is recorded.
 */
function killingTransport(i: number, maskedSent: Set<number>, killBeforeMasked = KILL_BEFORE_MASKED, killBeforeUnmask = KILL_BEFORE_UNMASK): ClientTransport {
  return {
    async connect(url, token, signal) {
      const connection = await wsTransport.connect(url, token, signal);
      return {
        ...connection,
        send(frame) {
          const { type } = decodeFrame(frame) as { type: string };
          if ((type === 'masked' && killBeforeMasked.has(i)) || (type === 'reveal' && killBeforeUnmask.has(i))) {
            connection.close(1001, `killed before ${type}`);
            return;
          }
          if (type === 'masked') maskedSent.add(i);
          connection.send(frame);
        },
        onFrame: (handler) => connection.onFrame(handler),
        onClose: (handler) => connection.onClose(handler),
      };
    },
  };
}

describe('SecAgg+ with 20 Node clients over WebSockets', () => {
  let coordinator: CoordinatorHandle | undefined;
  afterEach(async () => {
    await coordinator?.close();
    coordinator = undefined;
  });

  it('commits a round that loses 30% of its clients and yields the survivors\u2019 FedAvg', async () => {
    await initBackend();
    const { train } = loadDataset('digits', { seed: 0 });
    const initial = builtinInitialModel('logreg', train.featureShape, train.numClasses, 0);
    const rounds: RoundMetrics[] = [];
    coordinator = await startCoordinator({
      model: initial,
      tokens: [TOKEN],
      rounds: 1,
      clientsPerRound: NUM_CLIENTS,
      minClients: 10,
      minAvailable: NUM_CLIENTS,
      roundTimeoutMs: 60_000,
      heartbeatIntervalMs: 60_000,
      train: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
      // Degree 15 with threshold 9 survives any 6 losses inside one neighbourhood (15 − 6 = 9), and
      // 9 is the smallest threshold degree 15 allows (2t ≥ k + 2); degree 13 would need t = 8 and
      // survive only 5.
      secagg: { mode: 'secagg+', degree: 15, threshold: 9, stageTimeoutMs: 10_000, clipRange: 2, maxWeight: 1_000 },
      onRound: (metrics) => rounds.push(metrics),
    });

    const updates = new Map<number, LocalUpdate>();
    const maskedSent = new Set<number>();
    const partitions = partitionIid(train.length, NUM_CLIENTS, createSeededRandom(1));
    const stop = new AbortController();
    setMaxListeners(4 * NUM_CLIENTS, stop.signal); // every client listens on it
    const runs = partitions.map((indices, i) => {
      const data = subset(train, indices);
      const client = new ShoalClient({
        url: coordinator!.url,
        token: TOKEN,
        data: { x: data.x, y: data.y, featureShape: data.featureShape },
        transport: killingTransport(i, maskedSent),
        reconnect: { initialDelayMs: 60_000 }, // killed clients stay away for the rest of the test
        // Records the update exactly as it enters secure aggregation.
        updateSteps: [(update) => (updates.set(i, update), update)],
      });
      return client.run({ signal: stop.signal });
    });

    const summary = await coordinator.finished;
    stop.abort();
    await Promise.allSettled(runs);

    const [round] = rounds;
    expect(round).toMatchObject({ status: 'committed', selected: 20 });
    expect(round!.secagg).toMatchObject({ mode: 'secagg+', threshold: 9, degree: 15, dropouts: { masked: 3, unmask: 3 } });
    // The survivors are the clients whose masked input arrived: the unmask-stage dead are in the sum.
    expect([...maskedSent].sort((a, b) => a - b)).toEqual([...Array(NUM_CLIENTS).keys()].filter((i) => !KILL_BEFORE_MASKED.has(i)));
    expect(round!.participants).toBe(17);

    // Plain FedAvg of the survivors' (clamped, weighted) updates, in float64.
    const d = initial.weights.length;
    const bound = 2 * 1_000;
    const weightedSum = new Float64Array(d);
    let totalWeight = 0;
    for (const i of maskedSent) {
      const update = updates.get(i)!;
      const weight = Math.min(update.numExamples, 1_000);
      totalWeight += weight;
      for (let j = 0; j < d; j++) weightedSum[j]! += Math.max(-bound, Math.min(bound, weight * update.delta[j]!));
    }
    const expected = initial.weights.map((w, j) => w + weightedSum[j]! / totalWeight);
    // Per coordinate: the decoding error (fewer than `count` steps of 1/scale, docs/secagg.md, over the
    // total weight), half a float32 ulp of the stored weight, and float64 rounding (secAggMeanBound).
    // Measured here: the worst coordinate uses about a third of it; the old `+ 1e-5` was 40× more.
    const encoding = { count: maskedSent.size, scale: round!.secagg!.scale, bound, totalWeight };
    const offBound = [...summary.weights].map((got, j) => ({ j, error: Math.abs(got - expected[j]!), allowed: secAggMeanBound(encoding, got) })).filter((c) => c.error > c.allowed);
    expect(offBound).toEqual([]);
    expect(summary.weights.some((got, j) => got !== Math.fround(expected[j]!))).toBe(true); // the sum really went through the fixed-point encoding
  });

  it('aborts, leaving the model unchanged, when fewer than the threshold survive', async () => {
    await initBackend();
    const { train } = loadDataset('digits', { seed: 0 });
    const initial = builtinInitialModel('logreg', train.featureShape, train.numClasses, 0);
    const rounds: RoundMetrics[] = [];
    const clients = 8;
    coordinator = await startCoordinator({
      model: initial,
      tokens: [TOKEN],
      rounds: 1,
      clientsPerRound: clients,
      minClients: 2,
      minAvailable: clients,
      heartbeatIntervalMs: 60_000,
      train: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
      secagg: { mode: 'secagg', threshold: 5, stageTimeoutMs: 10_000 },
      onRound: (metrics) => rounds.push(metrics),
    });
    const maskedSent = new Set<number>();
    const killed = new Set([0, 1, 2, 3]); // 4 of 8 survive: below the threshold of 5
    const partitions = partitionIid(train.length, clients, createSeededRandom(2));
    const stop = new AbortController();
    setMaxListeners(4 * clients, stop.signal);
    const runs = partitions.map((indices, i) => {
      const data = subset(train, indices);
      return new ShoalClient({
        url: coordinator!.url,
        token: TOKEN,
        data: { x: data.x, y: data.y, featureShape: data.featureShape },
        transport: killingTransport(i, maskedSent, killed, new Set()),
        reconnect: { initialDelayMs: 60_000 },
      }).run({ signal: stop.signal });
    });
    const summary = await coordinator.finished;
    stop.abort();
    await Promise.allSettled(runs);

    expect(rounds[0]).toMatchObject({ status: 'aborted', participants: 0 });
    expect(rounds[0]!.reason).toMatch(/masked stage: 4 of 8 clients answered, fewer than the 5 needed/);
    // Nothing was unmasked: the model is bit for bit the initial one.
    expect(summary.weights).toEqual(initial.weights);
  });
});
