/**
 * Federated evaluation and q-FedAvg over real WebSockets on 127.0.0.1: after a round commits, the
 * clients that announced 'evaluate' score the committed model on their own held-out data, and the
 * round records the distribution; a client without held-out data is never asked; a client that
 * answers with an absurd accuracy is disconnected and the committed round is unaffected. q-FedAvg
 * rounds select only clients that report their initial loss, and step as the paper's Algorithm 2.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ShoalClient, initBackend, type ClientEvents } from '@shoal/client';
import { builtinInitialModel, startCoordinator, type CoordinatorHandle } from '@shoal/coordinator';
import { closeCodeOf } from '@shoal/protocol';
import { fedAvg, qFedAvg, wrapStrategy } from '@shoal/strategy';
import { WsPeer, updateFor } from '@shoal/testkit';

const TOKEN = 'federated-evaluation-token';
/** logreg on 4 features and 3 classes: 15 parameters. */
const MODEL = builtinInitialModel('logreg', [4], 3, 0);
const D = MODEL.weights.length;
const TRAIN = { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;

/**
 * A strategy whose step commits the all-zero model, so what the clients evaluate is known: every
 * class gets probability 1/3 (loss ln 3 on every example) and the predicted class is the first, 0.
 */
const ZEROING = wrapStrategy(fedAvg(), { name: 'zeroing', step: (global, _aggregate, state) => ({ weights: new Float32Array(global.length), state }) });

/** `labels.length` examples of 4 features with those labels. */
function examples(labels: readonly number[]): { x: Float32Array; y: Int32Array; featureShape: number[] } {
  return { x: Float32Array.from({ length: labels.length * 4 }, (_, i) => ((i * 7) % 5) / 5), y: Int32Array.from(labels), featureShape: [4] };
}

describe('federated evaluation over real WebSockets', () => {
  let coordinator: CoordinatorHandle | undefined;
  const stop = new AbortController();
  const peers: WsPeer[] = [];
  afterEach(async () => {
    stop.abort();
    for (const peer of peers.splice(0)) peer.terminate();
    await coordinator?.close();
    coordinator = undefined;
  });

  it('records the distribution of the clients\' held-out scores; asks only capable clients; disconnects an absurd answer', async () => {
    await initBackend();
    coordinator = await startCoordinator({
      model: MODEL,
      tokens: [TOKEN],
      rounds: 1,
      minClients: 2,
      minAvailable: 5,
      train: TRAIN,
      strategy: ZEROING,
      heartbeatIntervalMs: 60_000,
      federatedEvaluation: { every: 1 },
    });
    // Held-out labels → accuracy of the zero model (the share of label 0): 2/4, 1/5, 3/3.
    const heldOut = [[0, 0, 1, 2], [0, 1, 1, 1, 2], [0, 0, 0]];
    const evaluated: ClientEvents['evaluated'][] = [];
    const clients = heldOut.map((labels, i) => {
      const client = new ShoalClient({ url: coordinator!.url, token: TOKEN, data: examples([0, 1, 2, i % 3]), evaluationData: examples(labels), shuffleSeed: i });
      client.on('evaluated', (event) => evaluated.push(event));
      return client.run({ signal: stop.signal });
    });
    // A client without the 'evaluate' capability, and one that claims it and then answers with accuracy 1.5.
    const plain = await WsPeer.connect(coordinator.url, { token: TOKEN });
    const rogue = await WsPeer.connect(coordinator.url, { token: TOKEN });
    peers.push(plain, rogue);
    await plain.hello({ capabilities: ['fedavg'] });
    await rogue.hello({ capabilities: ['fedavg', 'evaluate'] });
    for (const peer of [plain, rogue]) {
      void peer.next('train', Infinity).then((train) => peer.send(updateFor(train, new Float32Array(D).fill(0.01), 4)), () => {});
    }
    void rogue.next('evaluate', Infinity).then((evaluate) => rogue.send({ type: 'evaluation', round: evaluate.round, modelVersion: evaluate.modelVersion, loss: 0.1, accuracy: 1.5, numExamples: 10 }), () => {});

    const summary = await coordinator.finished;
    await Promise.all(clients);
    const [round] = summary.rounds;
    // The round committed with all five updates; the evaluation changed nothing about it.
    expect(round).toMatchObject({ status: 'committed', participants: 5, dropouts: 0 });
    expect(Array.from(summary.weights)).toEqual(new Array(D).fill(0));

    // Three clients counted, 12 held-out examples. Accuracies 0.5, 0.2, 1: mean 17/30,
    // population variance ((−1/15)² + (−11/30)² + (13/30)²) / 3 = 0.10888…, tails of one client.
    const federated = round!.federatedEvaluation!;
    expect(federated).toMatchObject({ clients: 3, examples: 12 });
    expect(federated.accuracy.mean).toBeCloseTo(17 / 30, 6);
    expect(federated.accuracy.std).toBeCloseTo(Math.sqrt((1 / 225 + 121 / 900 + 169 / 900) / 3), 6);
    expect(federated.accuracy).toMatchObject({ min: 0.2, max: 1, worst10: 0.2, best10: 1 });
    // Weighted by examples (4, 5, 3): (2 + 1 + 3) / 12.
    expect(federated.weightedAccuracy).toBeCloseTo(0.5, 6);
    for (const value of [federated.loss.mean, federated.loss.min, federated.loss.max, federated.loss.worst10, federated.loss.best10]) expect(value).toBeCloseTo(Math.log(3), 5);
    expect(federated.loss.std).toBeCloseTo(0, 6);
    expect(evaluated.map((event) => event.accuracy).sort()).toEqual([0.2, 0.5, 1]);

    // The rogue answer closed its connection with INVALID_MESSAGE; the plain client was never asked
    // (the TRAINING_COMPLETE close follows every frame sent before it, so its inbox is complete).
    expect((await rogue.closed).code).toBe(closeCodeOf('INVALID_MESSAGE'));
    expect((await plain.closed).code).toBe(closeCodeOf('TRAINING_COMPLETE'));
    await expect(plain.next('evaluate', 0)).rejects.toThrow(/no evaluate queued/);
  });

  it('q-FedAvg: selects only clients reporting initialLoss, refuses an update without it, and steps as Algorithm 2', async () => {
    const model = { descriptor: builtinInitialModel('logreg', [1], 2, 0).descriptor, weights: Float32Array.from([1, -1, 0, 0]) };
    coordinator = await startCoordinator({
      model,
      tokens: [TOKEN],
      rounds: 1,
      minClients: 2,
      minAvailable: 3, // the three able clients: the unable one does not count
      maxUpdateNorm: 1e6,
      train: TRAIN,
      strategy: qFedAvg({ q: 1, lipschitz: 10 }),
      heartbeatIntervalMs: 60_000,
    });
    // Not selectable: it does not announce 'initial-loss'. Connected first, so it would otherwise be picked.
    const unable = await WsPeer.connect(coordinator.url, { token: TOKEN });
    peers.push(unable);
    await unable.hello({ capabilities: ['fedavg'] });
    const a = await WsPeer.connect(coordinator.url, { token: TOKEN });
    const b = await WsPeer.connect(coordinator.url, { token: TOKEN });
    const forgetful = await WsPeer.connect(coordinator.url, { token: TOKEN });
    peers.push(a, b, forgetful);
    for (const peer of [a, b, forgetful]) await peer.hello({ capabilities: ['fedavg', 'initial-loss'] });
    // The same two clients as the strategy's unit test: losses 2 and 0.5, deltas (0.1, 0, 0, 0) and (0, 0.2, 0, 0).
    const answers = [
      { peer: a, delta: Float32Array.from([0.1, 0, 0, 0]), initialLoss: 2 },
      { peer: b, delta: Float32Array.from([0, 0.2, 0, 0]), initialLoss: 0.5 },
    ];
    for (const { peer, delta, initialLoss } of answers) {
      const train = await peer.next('train');
      expect(train.config.reportInitialLoss).toBe(true);
      peer.send({ ...updateFor(train, delta, 7), initialLoss });
    }
    const train = await forgetful.next('train');
    forgetful.send(updateFor(train, Float32Array.from([5, 5, 5, 5]), 7));

    const summary = await coordinator.finished;
    expect(summary.rounds[0]).toMatchObject({ status: 'committed', selected: 3, participants: 2 });
    expect((await forgetful.closed).code).toBe(closeCodeOf('INVALID_MESSAGE'));
    // w + (L·F_A·δ_A + L·F_B·δ_B) / (h_A + h_B) = w + ((2, 0) + (0, 1)) / (21 + 9).
    const weights = Array.from(summary.weights);
    expect(weights[0]).toBeCloseTo(1 + 2 / 30, 6);
    expect(weights[1]).toBeCloseTo(-1 + 1 / 30, 6);
    expect(weights.slice(2)).toEqual([0, 0]);
    expect((await unable.closed).code).toBe(closeCodeOf('TRAINING_COMPLETE'));
    await expect(unable.next('train', 0)).rejects.toThrow(/no train queued/);
  });
});
