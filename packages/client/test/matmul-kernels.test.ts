import { beforeAll, describe, expect, it } from 'vitest';
import { relativeError } from './numeric.js';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { createSeededRandom } from '@shoal/protocol';
import { registerWasmMatMulFastPath } from '../src/common/matmul-kernels.js';
import { initBackend } from '../src/node/backend.js';

interface MatMulCase {
  a: number[];
  b: number[];
  transposeA: boolean;
  transposeB: boolean;
}

function randomValues(count: number, seed: number): Float32Array {
  const random = createSeededRandom(seed);
  return Float32Array.from({ length: count }, () => random.nextGaussian());
}

function randomTensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(randomValues(shape.reduce((x, y) => x * y, 1), seed), shape);
}

/** tf.matMul on the active backend, read back, with its shape. */
function matMul(c: MatMulCase, seed: number): { values: Float32Array; shape: number[] } {
  return tf.tidy(() => {
    const product = tf.matMul(randomTensor(c.a, seed), randomTensor(c.b, seed + 1), c.transposeA, c.transposeB);
    return { values: product.dataSync() as Float32Array, shape: product.shape };
  });
}


/** The four transpose combinations of op(A) [m, k] · op(B) [k, n], with `batchA`/`batchB` leading dims. */
function allTransposes(m: number, k: number, n: number, batchA: number[] = [], batchB: number[] = []): MatMulCase[] {
  return [false, true].flatMap((transposeA) =>
    [false, true].map((transposeB) => ({
      a: [...batchA, ...(transposeA ? [k, m] : [m, k])],
      b: [...batchB, ...(transposeB ? [n, k] : [k, n])],
      transposeA,
      transposeB,
    })),
  );
}

const CASES: MatMulCase[] = [
  ...allTransposes(3, 4, 5), // tiny: the stock loop is cheaper
  ...allTransposes(17, 9, 23),
  ...allTransposes(24, 24, 24),
  ...allTransposes(20, 784, 200), // 2NN layer 1, batch 20
  ...allTransposes(32, 512, 10), // CNN output layer
  ...allTransposes(1, 784, 128), // one example
  ...allTransposes(784, 32, 128), // MLP layer 1, batch 32: the weight gradient's shape…
  ...allTransposes(32, 128, 784), // …and the input gradient's
  // One matrix in a rank-3 or rank-4 tensor (batch dims of 1, broadcast against none).
  ...allTransposes(20, 30, 40, [1], []),
  ...allTransposes(20, 30, 40, [], [1, 1]),
  // Real batches never reach XNNPACK; they go to the stock kernel, broadcasting included.
  ...allTransposes(20, 30, 40, [3], [3]),
  ...allTransposes(20, 30, 40, [3], []),
  ...allTransposes(20, 30, 40, [1], [2]),
];

function describeCase(c: MatMulCase): string {
  return `[${c.a.join(',')}]${c.transposeA ? 'ᵀ' : ''} · [${c.b.join(',')}]${c.transposeB ? 'ᵀ' : ''}`;
}

/** Runs `body` with the wasm Transpose kernel wrapped to count its calls. */
function countingTransposes<T>(body: () => T): { result: T; transposes: number } {
  const stockTranspose = tf.getKernel('Transpose', 'wasm')!;
  let transposes = 0;
  tf.unregisterKernel('Transpose', 'wasm');
  tf.registerKernel({
    ...stockTranspose,
    kernelFunc: (args) => {
      transposes += 1;
      return stockTranspose.kernelFunc(args);
    },
  });
  try {
    return { result: body(), transposes };
  } finally {
    tf.unregisterKernel('Transpose', 'wasm');
    tf.registerKernel(stockTranspose);
  }
}

interface DenseGradients {
  dx: Float32Array;
  dKernel: Float32Array;
  dBias: Float32Array;
}

/** Gradients of Σ(dense(x) ⊙ dy) for a tfjs-layers Dense layer with relu, on the active backend. */
function denseLayerGradients(batch: number, inputs: number, units: number, seed: number): DenseGradients {
  const initialWeights = [randomTensor([inputs, units], seed + 1), tf.tensor1d(randomValues(units, seed + 2))];
  const layer = tf.layers.dense({ units, activation: 'relu', weights: initialWeights });
  const gradients = tf.tidy(() => {
    const x = randomTensor([batch, inputs], seed);
    const dy = randomTensor([batch, units], seed + 3);
    const loss = (input: tf.Tensor) => tf.sum(tf.mul(layer.apply(input) as tf.Tensor, dy));
    const dx = tf.grad(loss)(x);
    const { value, grads } = tf.variableGrads(() => loss(x) as tf.Scalar);
    value.dispose();
    const [kernel, bias] = layer.trainableWeights;
    return {
      dx: dx.dataSync() as Float32Array,
      dKernel: grads[kernel!.name]!.dataSync() as Float32Array,
      dBias: grads[bias!.name]!.dataSync() as Float32Array,
    };
  });
  layer.dispose(); // its variables hold copies of the initial weights
  tf.dispose(initialWeights);
  return gradients;
}

describe('WASM BatchMatMul fast path', () => {
  let stock: tf.KernelConfig;

  beforeAll(async () => {
    expect(await tf.setBackend('wasm')).toBe(true);
    stock = tf.getKernel('BatchMatMul', 'wasm')!;
    expect(stock).toBeDefined();
  });

  it('registers idempotently, replacing only BatchMatMul, and again after the stock kernel is restored', () => {
    const others = ['_FusedMatMul', 'Transpose'].map((name) => tf.getKernel(name, 'wasm'));
    registerWasmMatMulFastPath();
    const ours = tf.getKernel('BatchMatMul', 'wasm');
    expect(ours).toBeDefined();
    expect(ours).not.toBe(stock);
    registerWasmMatMulFastPath();
    expect(tf.getKernel('BatchMatMul', 'wasm')).toBe(ours);
    expect(['_FusedMatMul', 'Transpose'].map((name) => tf.getKernel(name, 'wasm'))).toEqual(others);

    // Importing the WASM backend again re-registers its stock kernel; registering again fixes that.
    tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel(stock);
    registerWasmMatMulFastPath();
    expect(tf.getKernel('BatchMatMul', 'wasm')).not.toBe(stock);
    expect(tf.getKernel('BatchMatMul', 'wasm')).not.toBe(ours);
  });

  it('refuses to register before the WASM backend has registered its kernels', () => {
    const registered = tf.getKernel('BatchMatMul', 'wasm')!;
    tf.unregisterKernel('BatchMatMul', 'wasm');
    try {
      expect(() => registerWasmMatMulFastPath()).toThrow(/no BatchMatMul kernel.*import '@tensorflow\/tfjs-backend-wasm'/);
    } finally {
      tf.registerKernel(registered);
    }
  });

  it.each(CASES.map((c) => [describeCase(c), c] as const))('matches tf.matMul on the CPU backend: %s', async (_name, c) => {
    registerWasmMatMulFastPath();
    await tf.setBackend('cpu');
    const expected = matMul(c, 5);
    await tf.setBackend('wasm');
    const backend = tf.engine().backend;
    const { numTensors, numBytes } = tf.memory();
    const buffersBefore = backend.numDataIds();
    const actual = matMul(c, 5);
    expect(actual.shape).toEqual(expected.shape);
    expect(relativeError(actual.values, expected.values)).toBeLessThan(1e-4);
    // Every intermediate buffer the kernel made inside the backend is released.
    expect(tf.memory().numTensors).toBe(numTensors);
    expect(tf.memory().numBytes).toBe(numBytes);
    expect(backend.numDataIds()).toBe(buffersBefore);
  });

  it('reorders the dense-layer gradient products and leaves the rest to the stock kernel', async () => {
    registerWasmMatMulFastPath();
    await tf.setBackend('wasm');
    const transposesFor = (c: MatMulCase) => countingTransposes(() => matMul(c, 9)).transposes;
    // A dense layer 784 → 200 on a batch of 20 (x [20, 784], W [784, 200], dy [20, 200]).
    // dW = xᵀ · dy: transpose x, then XNNPACK packs dy.
    expect(transposesFor({ a: [20, 784], b: [20, 200], transposeA: true, transposeB: false })).toBe(1);
    // dX = dy · Wᵀ = (W · dyᵀ)ᵀ, which packs dyᵀ rather than all of W: two small transposes.
    expect(transposesFor({ a: [20, 200], b: [784, 200], transposeA: false, transposeB: true })).toBe(2);
    // Aᵀ · Bᵀ = (B · A)ᵀ: only the result is transposed.
    expect(transposesFor({ a: [784, 20], b: [200, 784], transposeA: true, transposeB: true })).toBe(1);
    // Stock kernel: no transpose flag, a tiny product, a real batch.
    expect(transposesFor({ a: [20, 784], b: [784, 200], transposeA: false, transposeB: false })).toBe(0);
    expect(transposesFor({ a: [4, 3], b: [5, 3], transposeA: false, transposeB: true })).toBe(0);
    expect(transposesFor({ a: [3, 30, 20], b: [3, 30, 40], transposeA: true, transposeB: false })).toBe(0);
  });

  it('leaves non-float32 inputs to the stock kernel and its error', async () => {
    registerWasmMatMulFastPath();
    await tf.setBackend('wasm');
    const a = tf.ones([64, 64], 'int32');
    expect(() => tf.matMul(a, a, true, false)).toThrow(/float32/);
    a.dispose();
  });

  it.each([
    [20, 784, 200],
    [32, 3136, 512],
  ])('gives a dense layer (batch %i, %i → %i) the gradients tf.grad gives on the CPU backend', async (batch, inputs, units) => {
    registerWasmMatMulFastPath();
    await tf.setBackend('cpu');
    const expected = denseLayerGradients(batch, inputs, units, 21);
    await tf.setBackend('wasm');
    const backend = tf.engine().backend;
    const { numTensors, numBytes } = tf.memory();
    const buffersBefore = backend.numDataIds();
    const { result: actual, transposes } = countingTransposes(() => denseLayerGradients(batch, inputs, units, 21));
    expect(transposes).toBeGreaterThan(0); // the fast path ran
    expect(relativeError(actual.dx, expected.dx)).toBeLessThan(1e-4);
    expect(relativeError(actual.dKernel, expected.dKernel)).toBeLessThan(1e-4);
    expect(relativeError(actual.dBias, expected.dBias)).toBeLessThan(1e-4);
    expect(tf.memory().numTensors).toBe(numTensors);
    expect(tf.memory().numBytes).toBe(numBytes);
    expect(backend.numDataIds()).toBe(buffersBefore);
  });

  it('is installed by initBackend when it picks WASM', async () => {
    tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel(stock);
    const choice = await initBackend({ prefer: 'wasm' });
    expect(choice.name).toBe('wasm');
    const installed = tf.getKernel('BatchMatMul', 'wasm');
    expect(installed).not.toBe(stock);
    registerWasmMatMulFastPath();
    expect(tf.getKernel('BatchMatMul', 'wasm')).toBe(installed);
  });
});
