/**
 * FedAvg's weighted mean, end to end: three raw peers over real WebSockets send hand-picked deltas
 * with 1, 2 and 5 examples, and the committed global model must be exactly the initial weights
 * plus the mean computed by hand below (uncapped, and with `maxWeight: 2`).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { builtinInitialModel, startCoordinator, type CoordinatorHandle, type InitialModel } from '@shoal/coordinator';
import { closeCodeOf } from '@shoal/protocol';
import { fedAvg, type Strategy } from '@shoal/strategy';
import { startScriptedPeer, type ScriptedPeer } from '@shoal/testkit';

const TOKEN = 'weighted-mean-token';

/**
 * logreg on 2 features and 2 classes: kernel [2, 2] (4 values) then bias [2], 6 parameters. The
 * initial weights are replaced by round numbers so the arithmetic below can be done by hand.
 */
const MODEL: InitialModel = {
  descriptor: builtinInitialModel('logreg', [2], 2).descriptor,
  weights: Float32Array.from([0.5, -1, 2, 0.25, 0, 1]),
};

/** The three clients: example counts 1, 2, 5 and their deltas (all exact in float32). */
const CLIENTS = [
  { numExamples: 1, delta: Float32Array.from([8, 0, 0, 1, 2, -4]) },
  { numExamples: 2, delta: Float32Array.from([0, 4, 0, 1, -1, 2]) },
  { numExamples: 5, delta: Float32Array.from([0, 0, 4, 1, 0.5, 0]) },
];

describe('FedAvg over real WebSockets', () => {
  let coordinator: CoordinatorHandle | undefined;
  const peers: ScriptedPeer[] = [];

  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.peer.terminate();
    await coordinator?.close();
    coordinator = undefined;
  });

  /** One round with the three clients; returns the committed global weights. */
  async function oneRound(strategy: Strategy): Promise<Float32Array> {
    coordinator = await startCoordinator({
      model: MODEL,
      tokens: [TOKEN],
      rounds: 1,
      minClients: 3,
      train: { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy,
      // The hand-picked deltas (norms up to 9.2) are far larger than this tiny model (norm 2.5), so
      // the default `auto` bound would scale them down; this test checks the mean's arithmetic.
      maxUpdateNorm: 100,
    });
    for (const client of CLIENTS) {
      peers.push(await startScriptedPeer(coordinator.url, { token: TOKEN, numExamples: client.numExamples, delta: () => client.delta }));
    }
    const summary = await coordinator.finished;
    expect(summary.rounds).toHaveLength(1);
    expect(summary.rounds[0]).toMatchObject({ status: 'committed', participants: 3, dropouts: 0 });
    for (const peer of peers) expect((await peer.done).code).toBe(closeCodeOf('TRAINING_COMPLETE'));
    expect(coordinator.globalWeights()).toEqual(summary.weights);
    return summary.weights;
  }

  it('adds the example-weighted mean of the deltas to the global model', async () => {
    const weights = await oneRound(fedAvg());
    // Weights 1, 2, 5; total 8. mean = (1·d₁ + 2·d₂ + 5·d₃) / 8 per coordinate:
    //   [0] (8 + 0 + 0) / 8        = 1       0.5  + 1       = 1.5
    //   [1] (0 + 8 + 0) / 8        = 1       -1   + 1       = 0
    //   [2] (0 + 0 + 20) / 8       = 2.5     2    + 2.5     = 4.5
    //   [3] (1 + 2 + 5) / 8        = 1       0.25 + 1       = 1.25
    //   [4] (2 − 2 + 2.5) / 8      = 0.3125  0    + 0.3125  = 0.3125
    //   [5] (−4 + 4 + 0) / 8       = 0       1    + 0       = 1
    // Every value is exact in float32, so the comparison is exact.
    expect(Array.from(weights)).toEqual([1.5, 0, 4.5, 1.25, 0.3125, 1]);
  });

  it('caps each client weight at maxWeight, which shifts the mean towards the small clients', async () => {
    const weights = await oneRound(fedAvg({ maxWeight: 2 }));
    // Weights min(n, 2) = 1, 2, 2; total 5. mean = (1·d₁ + 2·d₂ + 2·d₃) / 5 per coordinate:
    //   [0] (8 + 0 + 0) / 5        = 1.6     0.5  + 1.6     = 2.1
    //   [1] (0 + 8 + 0) / 5        = 1.6     -1   + 1.6     = 0.6
    //   [2] (0 + 0 + 8) / 5        = 1.6     2    + 1.6     = 3.6
    //   [3] (1 + 2 + 2) / 5        = 1       0.25 + 1       = 1.25
    //   [4] (2 − 2 + 1) / 5        = 0.2     0    + 0.2     = 0.2
    //   [5] (−4 + 4 + 0) / 5       = 0       1    + 0       = 1
    // The sum is taken in float64 and rounded to float32 once, as Float32Array.from does here.
    expect(weights).toEqual(Float32Array.from([0.5 + 8 / 5, -1 + 8 / 5, 2 + 8 / 5, 0.25 + 5 / 5, 0 + 1 / 5, 1 + 0 / 5]));
    // Uncapped, coordinate 2 would have been 4.5: the client with 5 examples now counts as 2.
    expect(weights[2]).toBeCloseTo(3.6, 6);
  });
});
