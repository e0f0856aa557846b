import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ShoalError, builtinTopology, createSeededRandom, manifestOfSequential, type ModelDescriptor, type TrainConfig } from '@shoal/protocol';
import { LocalTrainer, type ClientDataset } from '../src/common/trainer.js';

// Three well-separated Gaussian blobs in 4-D: a model that learns anything separates them.
function blobs(n: number, seed: number): ClientDataset {
  const random = createSeededRandom(seed);
  const x = new Float32Array(n * 4);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 3;
    for (let j = 0; j < 4; j++) x[i * 4 + j] = (j === y[i]! ? 3 : 0) + 0.5 * random.nextGaussian();
  }
  return { x, y, featureShape: [4] };
}

const topology = builtinTopology('logreg', [4], 3);
if (topology.format !== 'shoal-sequential') throw new Error('unreachable');
const descriptor: ModelDescriptor = { topology, manifest: manifestOfSequential(topology) };
const config: TrainConfig = { epochs: 2, batchSize: 16, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 };
const zeros = () => new Float32Array(4 * 3 + 3);

function norm(v: Float32Array): number {
  return Math.sqrt(v.reduce((total, x) => total + x * x, 0));
}

describe('LocalTrainer', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('returns trained − global, and training from the result lowers the loss', async () => {
    const trainer = await LocalTrainer.create(descriptor, blobs(96, 1));
    const first = await trainer.train(zeros(), config);
    expect(first.delta).toHaveLength(15);
    expect(norm(first.delta)).toBeGreaterThan(0);
    const next = first.delta.slice(); // global after one FedAvg step with a single client
    const second = await trainer.train(next, config);
    expect(second.metrics.loss).toBeLessThan(first.metrics.loss);
    expect(second.metrics.accuracy).toBeGreaterThan(0.9);
    trainer.dispose();
  });

  it('leaves tf.memory().numTensors unchanged by a round', async () => {
    const trainer = await LocalTrainer.create(descriptor, blobs(64, 2));
    await trainer.train(zeros(), config);
    const before = tf.memory().numTensors;
    await trainer.train(zeros(), config);
    await trainer.train(zeros(), { ...config, optimizer: 'adam' });
    await trainer.train(zeros(), { ...config, proximalMu: 0.5 });
    expect(tf.memory().numTensors).toBe(before);
    trainer.dispose();
  });

  it('keeps the update near the global model under a strong proximal term (FedProx)', async () => {
    const trainer = await LocalTrainer.create(descriptor, blobs(96, 3));
    const free = await trainer.train(zeros(), { ...config, epochs: 3 });
    const tethered = await trainer.train(zeros(), { ...config, epochs: 3, proximalMu: 5 });
    expect(norm(tethered.delta)).toBeLessThan(0.6 * norm(free.delta));
    expect(Number.isFinite(tethered.metrics.loss)).toBe(true);
    trainer.dispose();
  });

  it('rejects data that does not fit the model, naming the shapes', async () => {
    const bad: ClientDataset = { x: new Float32Array(10), y: new Int32Array(2), featureShape: [5] };
    await expect(LocalTrainer.create(descriptor, bad)).rejects.toThrow(/\[5\].*\[4\]/);
    const ragged: ClientDataset = { x: new Float32Array(7), y: new Int32Array(2), featureShape: [4] };
    await expect(LocalTrainer.create(descriptor, ragged)).rejects.toMatchObject({ code: 'INVALID_DATA' });
  });

  it('rejects an app model that does not match the manifest', async () => {
    const appModel = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 5, activation: 'softmax' })] });
    const error = await LocalTrainer.create(descriptor, blobs(8, 4), appModel).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ShoalError);
    expect((error as ShoalError).code).toBe('MODEL_MISMATCH');
    expect((error as ShoalError).message).toContain('l0_dense/kernel');
    appModel.dispose();
  });

  it('trains an app model that matches, without disposing it', async () => {
    const appModel = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3, activation: 'softmax' })] });
    const trainer = await LocalTrainer.create(descriptor, blobs(32, 5), appModel);
    await trainer.train(zeros(), config);
    trainer.dispose();
    expect(appModel.getWeights()[0]!.isDisposed).toBe(false);
    appModel.dispose();
  });
});
