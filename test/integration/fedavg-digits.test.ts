/**
 * Real federated training: a coordinator and five real Node `ShoalClient`s over loopback
 * WebSockets, each holding an IID fifth of scikit-learn digits, train the built-in MLP with FedAvg.
 * The global model, evaluated centrally on the held-out test split, must pass 85% accuracy within
 * five rounds, and the clients (who share this process's tfjs engine) must not leak tensors.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { ShoalClient, initBackend, type ClientEvents } from '@shoal/client';
import { builtinInitialModel, startCoordinator, type CoordinatorHandle } from '@shoal/coordinator';
import { closeCodeOf, createSeededRandom } from '@shoal/protocol';
import { centralEvaluator, loadDataset, partitionIid, subset } from '@shoal/sim';
import { fedAvg } from '@shoal/strategy';

const TOKEN = 'digits-token';
const NUM_CLIENTS = 5;
const ROUNDS = 5;

describe('FedAvg on scikit-learn digits with five real Node clients', () => {
  let coordinator: CoordinatorHandle | undefined;
  const cleanups: (() => void)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) cleanup();
    await coordinator?.close();
    coordinator = undefined;
  });

  it(`passes 85% test accuracy within ${ROUNDS} rounds without leaking tensors`, async () => {
    // The clients would pick the backend themselves (ShoalClient's default `prepare`); pick it
    // first so the evaluator's tensors live on the same backend.
    await initBackend();
    const { train, test } = loadDataset('digits', { seed: 0 });
    const model = builtinInitialModel('mlp', train.featureShape, train.numClasses, 0);
    const evaluator = await centralEvaluator(model.descriptor, test);
    cleanups.push(() => evaluator.dispose());

    // tf.memory() after each committed round, when no client is training (onRound runs before the
    // next round's `train` goes out). The evaluator's model and test tensors are alive the whole
    // time, so they add the same count to every sample.
    const tensorsAfterRound = new Map<number, number>();
    coordinator = await startCoordinator({
      model,
      tokens: [TOKEN],
      rounds: ROUNDS,
      minClients: NUM_CLIENTS,
      roundTimeoutMs: 30_000,
      train: { epochs: 2, batchSize: 16, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
      evaluate: (weights) => evaluator.evaluate(weights),
      onRound: (metrics) => tensorsAfterRound.set(metrics.round, tf.memory().numTensors),
    });
    let trainingFinished = false;
    void coordinator.finished.then(() => (trainingFinished = true));

    const stop = new AbortController();
    cleanups.push(() => stop.abort());
    const partitions = partitionIid(train.length, NUM_CLIENTS, createSeededRandom(1));
    const clients = partitions.map((indices) => {
      const data = subset(train, indices);
      const client = new ShoalClient({
        url: coordinator!.url,
        token: TOKEN,
        data: { x: data.x, y: data.y, featureShape: data.featureShape },
        reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      });
      const events = { roundStart: [] as ClientEvents['roundStart'][], roundEnd: [] as ClientEvents['roundEnd'][], disconnected: [] as ClientEvents['disconnected'][], errors: [] as Error[] };
      client.on('roundStart', (event) => events.roundStart.push(event));
      client.on('roundEnd', (event) => events.roundEnd.push(event));
      client.on('disconnected', (event) => events.disconnected.push(event));
      client.on('error', ({ error }) => events.errors.push(error));
      // run() must resolve only once the coordinator has finished (TRAINING_COMPLETE).
      const finishedWhenRunResolved = client.run({ signal: stop.signal }).then(() => trainingFinished);
      return { client, events, finishedWhenRunResolved };
    });

    const summary = await coordinator.finished;
    expect(await Promise.all(clients.map((c) => c.finishedWhenRunResolved))).toEqual(clients.map(() => true));

    expect(summary.rounds.map((r) => [r.status, r.participants])).toEqual(Array.from({ length: ROUNDS }, () => ['committed', NUM_CLIENTS]));
    const accuracies = summary.rounds.map((r) => r.accuracy!);
    expect(accuracies.at(-1)).toBeGreaterThan(0.85);
    // Training helped: the last round beats the first.
    expect(accuracies.at(-1)).toBeGreaterThan(accuracies[0]!);

    // No tensors leak from one round to the next in five clients sharing the engine.
    expect(tensorsAfterRound.get(2)).toBeDefined();
    expect(tensorsAfterRound.get(4)).toBe(tensorsAfterRound.get(2));

    const rounds = Array.from({ length: ROUNDS }, (_, i) => i + 1);
    for (const { client, events } of clients) {
      expect(client.clientId).toBeDefined();
      expect(events.errors).toEqual([]);
      expect(events.roundStart.map((e) => e.round)).toEqual(rounds);
      // Each round: 'sent' when the update leaves, then the coordinator's verdict.
      expect(events.roundEnd.map((e) => `${e.round}:${e.status}`)).toEqual(rounds.flatMap((r) => [`${r}:sent`, `${r}:committed`]));
      expect(events.disconnected.map((e) => e.code)).toEqual([closeCodeOf('TRAINING_COMPLETE')]);
    }
  });
});
