import { describe, expect, it } from 'vitest';
import {
  BUILTIN_MODELS,
  builtinModelProblem,
  builtinTopology,
  joinWeights,
  layerName,
  manifestOfSequential,
  numParams,
  readsIds,
  sizeOf,
  splitWeights,
} from '../src/index.js';
import type { ModelTopology, WeightManifest } from '../src/index.js';

const manifest: WeightManifest = [
  { name: 'l0_dense/kernel', shape: [3, 2] },
  { name: 'l0_dense/bias', shape: [2] },
  { name: 'scale', shape: [] },
];

function sequential(topology: ModelTopology) {
  if (topology.format !== 'shoal-sequential') throw new Error('expected a shoal-sequential topology');
  return manifestOfSequential(topology);
}

describe('sizeOf and numParams', () => {
  it('multiplies dimensions, counts a scalar as one value, and sums a manifest', () => {
    expect(sizeOf([3, 2])).toBe(6);
    expect(sizeOf([])).toBe(1);
    expect(numParams(manifest)).toBe(9);
    expect(numParams([])).toBe(0);
  });
});

describe('splitWeights / joinWeights', () => {
  const data = Float32Array.from({ length: 9 }, (_, i) => i + 0.5);

  it('split into per-weight views in manifest order, and join back to the same vector', () => {
    const parts = splitWeights(manifest, data);
    expect(parts.map((part) => Array.from(part))).toEqual([[0.5, 1.5, 2.5, 3.5, 4.5, 5.5], [6.5, 7.5], [8.5]]);
    expect(parts[0]!.buffer).toBe(data.buffer); // views, not copies
    const joined = joinWeights(manifest, parts);
    expect(Array.from(joined)).toEqual(Array.from(data));
    expect(joined.buffer).not.toBe(data.buffer);
  });

  it('join accepts plain number arrays', () => {
    expect(Array.from(joinWeights(manifest, [[1, 2, 3, 4, 5, 6], [7, 8], [9]]))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('split rejects a vector of the wrong length, naming both lengths', () => {
    expect(() => splitWeights(manifest, new Float32Array(8))).toThrow(/8 values; the manifest needs 9/);
    expect(() => splitWeights(manifest, new Float32Array(10))).toThrow(RangeError);
  });

  it('join rejects the wrong number of parts and a part of the wrong size, naming the weight', () => {
    expect(() => joinWeights(manifest, [[1, 2, 3, 4, 5, 6], [7, 8]])).toThrow(/got 2 weight arrays; the manifest lists 3/);
    expect(() => joinWeights(manifest, [[1, 2, 3, 4, 5, 6], [7], [9]])).toThrow(/l0_dense\/bias has 1 values; its shape \[2\] needs 2/);
  });
});

describe('built-in models', () => {
  it('2nn on MNIST has 199,210 parameters (McMahan et al. 2017)', () => {
    expect(numParams(sequential(builtinTopology('2nn', [784], 10)))).toBe(199_210);
  });

  it('cnn on 28×28×1 has 1,663,370 parameters (McMahan et al. 2017)', () => {
    expect(numParams(sequential(builtinTopology('cnn', [28, 28, 1], 10)))).toBe(1_663_370);
  });

  it('logreg and mlp have the textbook sizes, flattening image inputs', () => {
    expect(numParams(sequential(builtinTopology('logreg', [784], 10)))).toBe(784 * 10 + 10);
    expect(numParams(sequential(builtinTopology('mlp', [28, 28], 10)))).toBe(784 * 128 + 128 + 128 * 10 + 10);
  });

  it('names weights <layer>/kernel and <layer>/bias in tfjs getWeights() order', () => {
    const topology = builtinTopology('mlp', [8, 8], 10);
    expect(sequential(topology)).toEqual([
      { name: 'l1_dense/kernel', shape: [64, 128] },
      { name: 'l1_dense/bias', shape: [128] },
      { name: 'l2_dense/kernel', shape: [128, 10] },
      { name: 'l2_dense/bias', shape: [10] },
    ]);
    expect(layerName(3, { type: 'maxPool2d', poolSize: 2 })).toBe('l3_maxpool2d');
  });

  it('cnn needs an image input shape', () => {
    expect(() => builtinTopology('cnn', [784], 10)).toThrow(/\[height, width, channels\]/);
  });

  it('cnn needs at least 4×4 pixels: its two 2×2 max-pools would leave nothing of a smaller image', () => {
    for (const shape of [[3, 8, 1], [8, 3, 1], [2, 2, 1]]) {
      expect(builtinModelProblem('cnn', shape), JSON.stringify(shape)).toContain('at least 4×4');
      expect(() => builtinTopology('cnn', shape, 10)).toThrow(/at least 4×4/);
    }
    expect(builtinModelProblem('cnn', [4, 4, 1])).toBeUndefined();
    const manifest = sequential(builtinTopology('cnn', [4, 4, 1], 3));
    for (const weight of manifest) expect(weight.shape.every((d) => d > 0), weight.name).toBe(true);
    for (const name of BUILTIN_MODELS.filter((n) => n !== 'cnn')) expect(builtinModelProblem(name, [1])).toBeUndefined();
  });

  it('every built-in model but char-gru (which reads a sequence of ids) builds a manifest on an image-shaped input', () => {
    for (const name of BUILTIN_MODELS.filter((n) => n !== 'char-gru')) expect(numParams(sequential(builtinTopology(name, [8, 8, 1], 3)))).toBeGreaterThan(0);
  });

  it('char-gru: embedding, GRU (kernel, recurrent kernel, bias with the 3 gates side by side), softmax over the vocabulary', () => {
    expect(sequential(builtinTopology('char-gru', [40], 65))).toEqual([
      { name: 'l0_embedding/embeddings', shape: [65, 8] },
      { name: 'l1_gru/kernel', shape: [8, 192] },
      { name: 'l1_gru/recurrent_kernel', shape: [64, 192] },
      { name: 'l1_gru/bias', shape: [192] },
      { name: 'l2_dense/kernel', shape: [64, 65] },
      { name: 'l2_dense/bias', shape: [65] },
    ]);
    expect(numParams(sequential(builtinTopology('char-gru', [40], 65)))).toBe(18_761);
    expect(readsIds('char-gru')).toBe(true);
    for (const name of BUILTIN_MODELS.filter((n) => n !== 'char-gru')) expect(readsIds(name)).toBe(false);
  });

  it('char-gru needs a flat sequence of ids; a GRU needs a sequence and an embedding needs ids', () => {
    expect(builtinModelProblem('char-gru', [28, 28, 1])).toMatch(/flat input shape \[sequenceLength\]/);
    expect(() => builtinTopology('char-gru', [8, 8], 65)).toThrow(/char-gru model needs a flat input shape/);
    const gruOnFlat: ModelTopology = { format: 'shoal-sequential', inputShape: [10], layers: [{ type: 'gru', units: 4 }] };
    expect(() => sequential(gruOnFlat)).toThrow(/l0_gru: gru needs a sequence \[steps, features\].*put an embedding first/);
    const embeddingOnImage: ModelTopology = { format: 'shoal-sequential', inputShape: [4, 4], layers: [{ type: 'embedding', inputDim: 5, outputDim: 2 }] };
    expect(() => sequential(embeddingOnImage)).toThrow(/l0_embedding: embedding needs a flat sequence of ids/);
  });

  it('valid padding shrinks the conv output', () => {
    const topology: ModelTopology = {
      format: 'shoal-sequential',
      inputShape: [6, 6, 1],
      layers: [
        { type: 'conv2d', filters: 2, kernelSize: 3, activation: 'relu', padding: 'valid' },
        { type: 'flatten' },
        { type: 'dense', units: 1, activation: 'linear' },
      ],
    };
    expect(sequential(topology).at(-2)).toEqual({ name: 'l2_dense/kernel', shape: [4 * 4 * 2, 1] });
  });

  it('rejects a dense layer on an unflattened input, pointing at the fix', () => {
    const topology: ModelTopology = {
      format: 'shoal-sequential',
      inputShape: [4, 4],
      layers: [{ type: 'dense', units: 2, activation: 'relu' }],
    };
    expect(() => sequential(topology)).toThrow(/l0_dense: dense needs a flat input.*add a flatten layer/);
  });
});
