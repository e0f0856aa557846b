// Client-side evaluation: the score of given weights on local examples, on the training model,
// with every tensor released; and the answer to `evaluate`.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { builtinTopology, manifestOfSequential, type ClientMessage, type ModelDescriptor } from '@shoal/protocol';
import { answerEvaluate } from '../src/common/evaluation.js';
import { LocalTrainer, type ClientDataset } from '../src/common/trainer.js';

const topology = builtinTopology('logreg', [2], 3);
if (topology.format !== 'shoal-sequential') throw new Error('unreachable');
const descriptor: ModelDescriptor = { topology, manifest: manifestOfSequential(topology) };
/** logreg [2] → 3: kernel 2×3 (row-major), then bias 3. */
const D = 2 * 3 + 3;

function data(labels: number[], features: number[][]): ClientDataset {
  return { x: Float32Array.from(features.flat()), y: Int32Array.from(labels), featureShape: [2] };
}

describe('LocalTrainer.evaluate', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('the zero model: loss ln 3 on every example, and it predicts class 0', async () => {
    const trainer = await LocalTrainer.create(descriptor, data([0, 1], [[1, 0], [0, 1]]));
    const before = tf.memory().numTensors;
    const result = await trainer.evaluate(new Float32Array(D), data([0, 1, 2, 0, 0], [[1, 2], [3, 4], [5, 6], [7, 8], [9, 0]]));
    expect(tf.memory().numTensors).toBe(before);
    expect(result.loss).toBeCloseTo(Math.log(3), 5);
    expect(result.accuracy).toBeCloseTo(3 / 5, 12);
    expect(result.numExamples).toBe(5);
    trainer.dispose();
  });

  it('a model that is right on one example of two: the hand-computed loss and accuracy 0.5', async () => {
    // Bias (0, ln 2, 0) and a zero kernel: probabilities (1/4, 1/2, 1/4) for every input.
    const weights = new Float32Array(D);
    weights[6 + 1] = Math.log(2);
    const trainer = await LocalTrainer.create(descriptor, data([0], [[0, 0]]));
    const result = await trainer.evaluate(weights, data([1, 2], [[0, 0], [1, 1]]));
    expect(result.loss).toBeCloseTo((Math.log(2) + Math.log(4)) / 2, 5);
    expect(result.accuracy).toBe(0.5);
    // Default: the training examples (q-FedAvg's initial loss), label 0 at probability 1/4.
    expect((await trainer.evaluate(weights)).loss).toBeCloseTo(Math.log(4), 5);
    trainer.dispose();
  });
});

describe('answerEvaluate', () => {
  const evaluate = { type: 'evaluate', round: 4, modelVersion: 'run:4', weights: new Float32Array(D), deadlineMs: 1_000 } as const;
  const clock = { now: () => 0, after: () => () => {} };

  it('sends the evaluation and holds the evaluated model; declines without evaluation data', async () => {
    const trainer = await LocalTrainer.create(descriptor, data([0], [[0, 0]]));
    const sent: ClientMessage[] = [];
    const io = { trainer, send: (message: ClientMessage) => sent.push(message), emit: () => {}, clock };
    const held = await answerEvaluate(evaluate, 0, undefined, { ...io, data: data([0, 1], [[0, 0], [1, 1]]) });
    expect(held).toEqual({ version: 'run:4', weights: evaluate.weights });
    expect(sent).toEqual([{ type: 'evaluation', round: 4, modelVersion: 'run:4', loss: expect.closeTo(Math.log(3), 5), accuracy: 0.5, numExamples: 2 }]);
    expect(await answerEvaluate(evaluate, 0, undefined, { ...io, data: undefined })).toBeUndefined();
    expect(sent[1]).toEqual({ type: 'decline', round: 4, reason: 'client has no evaluation data' });
    trainer.dispose();
  });

  it('sends nothing once the deadline has passed', async () => {
    const trainer = await LocalTrainer.create(descriptor, data([0], [[0, 0]]));
    const sent: ClientMessage[] = [];
    await answerEvaluate(evaluate, 0, undefined, { trainer, data: data([0], [[0, 0]]), send: (message) => sent.push(message), emit: () => {}, clock: { ...clock, now: () => 5_000 } });
    expect(sent).toEqual([]);
    trainer.dispose();
  });
});
