import { beforeAll, describe, expect, it } from 'vitest';
import { relativeError } from './numeric.js';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { builtinTopology, createSeededRandom } from '@shoal/protocol';
import { registerWasmConvGradients } from '../src/common/conv-kernels.js';
import { buildModel } from '../src/common/model.js';

type Shape4D = [number, number, number, number];
type Pad = 'same' | 'valid' | number;

interface ConvCase {
  batch: number;
  size: [number, number];
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  pad: Pad;
}

function randomValues(count: number, seed: number): Float32Array {
  const random = createSeededRandom(seed);
  return Float32Array.from({ length: count }, () => random.nextGaussian());
}

interface Gradients {
  dx: Float32Array;
  dFilter: Float32Array;
}

/** dx and dFilter of conv2d for a fixed upstream gradient dy, on the active backend. */
function convGradients(c: ConvCase, seed: number): Gradients {
  const xShape: Shape4D = [c.batch, c.size[0], c.size[1], c.inChannels];
  const filterShape: Shape4D = [c.kernel, c.kernel, c.inChannels, c.outChannels];
  return tf.tidy(() => {
    const x = tf.tensor4d(randomValues(xShape.reduce((a, b) => a * b), seed), xShape);
    const filter = tf.tensor4d(randomValues(filterShape.reduce((a, b) => a * b), seed + 1), filterShape);
    const forward = (input: tf.Tensor4D, weights: tf.Tensor4D) => tf.conv2d(input, weights, c.stride, c.pad);
    const outShape = forward(x, filter).shape;
    const dy = tf.tensor(randomValues(outShape.reduce((a, b) => a * b), seed + 2), outShape);
    const [dx, dFilter] = tf.grads((a: tf.Tensor, b: tf.Tensor) => forward(a as tf.Tensor4D, b as tf.Tensor4D))([x, filter], dy);
    return { dx: dx!.dataSync() as Float32Array, dFilter: dFilter!.dataSync() as Float32Array };
  });
}


const CASES: ConvCase[] = [
  { batch: 1, size: [8, 8], inChannels: 1, outChannels: 3, kernel: 3, stride: 1, pad: 'same' },
  { batch: 3, size: [9, 7], inChannels: 3, outChannels: 8, kernel: 3, stride: 1, pad: 'valid' },
  { batch: 3, size: [10, 10], inChannels: 8, outChannels: 3, kernel: 5, stride: 1, pad: 'same' },
  { batch: 1, size: [11, 9], inChannels: 3, outChannels: 1, kernel: 5, stride: 1, pad: 'valid' },
  { batch: 3, size: [9, 9], inChannels: 1, outChannels: 8, kernel: 3, stride: 2, pad: 'same' },
  { batch: 1, size: [10, 8], inChannels: 8, outChannels: 8, kernel: 3, stride: 2, pad: 'valid' },
  { batch: 3, size: [12, 11], inChannels: 3, outChannels: 3, kernel: 5, stride: 2, pad: 'same' },
  { batch: 1, size: [13, 12], inChannels: 1, outChannels: 1, kernel: 5, stride: 2, pad: 'valid' },
  // A kernel smaller than the stride leaves input rows no output sees; 'same' pads nothing then.
  { batch: 3, size: [7, 8], inChannels: 3, outChannels: 8, kernel: 1, stride: 2, pad: 'same' },
  // Numeric padding: the filter gradient handles it; the input gradient's fast path covers pad ≤ k − 1…
  { batch: 1, size: [6, 6], inChannels: 3, outChannels: 3, kernel: 3, stride: 1, pad: 1 },
  // …and falls back to the stock kernel past it.
  { batch: 3, size: [6, 7], inChannels: 3, outChannels: 8, kernel: 3, stride: 2, pad: 3 },
];

function describeCase(c: ConvCase): string {
  return `batch ${c.batch}, ${c.size.join('×')}×${c.inChannels} → ${c.outChannels}, kernel ${c.kernel}, stride ${c.stride}, pad ${c.pad}`;
}

describe('WASM conv2d gradient kernels', () => {
  beforeAll(async () => {
    expect(await tf.setBackend('wasm')).toBe(true);
  });

  it('are needed: stock tfjs 4.22 WASM has no Conv2DBackpropFilter', async () => {
    await tf.setBackend('wasm');
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    expect(() => convGradients(CASES[0]!, 1)).toThrow(/Conv2DBackpropFilter/);
  });

  it('registers idempotently, replacing only the two gradient kernels', () => {
    const conv2d = tf.getKernel('Conv2D', 'wasm');
    const stockInput = tf.getKernel('Conv2DBackpropInput', 'wasm');
    registerWasmConvGradients();
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')).not.toBe(stockInput);
    const filter = tf.getKernel('Conv2DBackpropFilter', 'wasm');
    const input = tf.getKernel('Conv2DBackpropInput', 'wasm');
    expect(filter).toBeDefined();
    registerWasmConvGradients();
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBe(filter);
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')).toBe(input);
    expect(tf.getKernel('Conv2D', 'wasm')).toBe(conv2d);

    // Importing the WASM backend again re-registers its stock input kernel; registering again fixes that.
    tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
    tf.registerKernel(stockInput);
    registerWasmConvGradients();
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')).not.toBe(stockInput);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).not.toBe(filter);
  });

  it.each(CASES.map((c) => [describeCase(c), c] as const))('match tf.grad on the CPU backend: %s', async (_name, c) => {
    registerWasmConvGradients();
    await tf.setBackend('cpu');
    const expected = convGradients(c, 7);
    await tf.setBackend('wasm');
    const backend = tf.engine().backend;
    const tensorsBefore = tf.memory().numTensors;
    const buffersBefore = backend.numDataIds();
    const actual = convGradients(c, 7);
    expect(relativeError(actual.dFilter, expected.dFilter)).toBeLessThan(1e-4);
    expect(relativeError(actual.dx, expected.dx)).toBeLessThan(1e-4);
    // The kernels release every intermediate buffer they create inside the backend.
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(backend.numDataIds()).toBe(buffersBefore);
  });

  it('rejects attributes they do not implement with a clear error', async () => {
    registerWasmConvGradients();
    await tf.setBackend('wasm');
    const x = tf.ones([1, 5, 5, 2]);
    const dy = tf.ones([1, 5, 5, 3]);
    const run = (attrs: Record<string, unknown>) => () =>
      tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 2, 3], ...attrs } as never);
    expect(run({ dataFormat: 'NCHW' })).toThrow(/NHWC/);
    expect(run({ pad: 1, dimRoundingMode: 'ceil' })).toThrow(/dimRoundingMode/);
    expect(run({ dilations: [2, 2] })).toThrow(/dilations/);
    tf.dispose([x, dy]);
  });

  it('the input gradient falls back to the stock kernel for dimRoundingMode', async () => {
    registerWasmConvGradients();
    const compute = () =>
      tf.tidy(() => {
        const dy = tf.tensor4d(randomValues(2 * 3 * 3 * 4, 3), [2, 3, 3, 4]);
        const filter = tf.tensor4d(randomValues(3 * 3 * 2 * 4, 4), [3, 3, 2, 4]);
        const attrs = { strides: 2, pad: 1, dataFormat: 'NHWC', dimRoundingMode: 'floor', inputShape: [2, 6, 6, 2] };
        return (tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, attrs as never) as tf.Tensor).dataSync() as Float32Array;
      });
    await tf.setBackend('cpu');
    const expected = compute();
    await tf.setBackend('wasm');
    expect(relativeError(compute(), expected)).toBeLessThan(1e-4);
  });

  it('let the McMahan CNN fit on WASM, with the loss falling on a fixed batch', async () => {
    registerWasmConvGradients();
    await tf.setBackend('wasm');
    const tensorsBefore = tf.memory().numTensors;
    const model = await buildModel(builtinTopology('cnn', [28, 28, 1], 10));
    model.compile({ optimizer: tf.train.sgd(0.2), loss: 'sparseCategoricalCrossentropy' });
    const images = tf.tensor4d(randomValues(8 * 28 * 28, 11).map((v) => Math.abs(v) / 3), [8, 28, 28, 1]);
    const labels = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'float32');

    const history = await model.fit(images, labels, { batchSize: 8, epochs: 1, verbose: 0 });
    const losses = [history.history.loss![0] as number];
    for (let step = 0; step < 4; step++) {
      losses.push((await model.trainOnBatch(images, labels)) as number);
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    // Full-batch gradient descent with a modest step: every step lowers the loss.
    losses.slice(1).forEach((loss, step) => expect(loss).toBeLessThan(losses[step]!));
    expect(losses.at(-1)!).toBeLessThan(losses[0]! - 0.05);

    tf.dispose([images, labels]);
    model.optimizer.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });
});
