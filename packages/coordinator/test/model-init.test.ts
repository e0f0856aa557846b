import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createSeededRandom, splitWeights } from '@shoal/protocol';
import { builtinInitialModel, loadSavedModel, orthogonal } from '../src/model-init.js';

describe('builtinInitialModel', () => {
  it('is reproducible per seed and differs across seeds', () => {
    const a = builtinInitialModel('2nn', [784], 10, 7);
    const b = builtinInitialModel('2nn', [784], 10, 7);
    const c = builtinInitialModel('2nn', [784], 10, 8);
    expect(a.weights).toEqual(b.weights);
    expect(a.weights).not.toEqual(c.weights);
    expect(a.weights).toHaveLength(199_210);
  });

  it('draws kernels from Glorot-uniform bounds and zeroes biases', () => {
    const model = builtinInitialModel('mlp', [64], 10, 1);
    const [kernel, bias, outKernel] = splitWeights(model.descriptor.manifest, model.weights);
    const limit = Math.sqrt(6 / (64 + 128));
    expect(Math.max(...kernel!.map(Math.abs))).toBeLessThanOrEqual(limit);
    expect(Math.max(...kernel!.map(Math.abs))).toBeGreaterThan(0.9 * limit);
    expect(bias!.every((x) => x === 0)).toBe(true);
    expect(Math.max(...outKernel!.map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(6 / (128 + 10)));
  });

  it('uses the receptive field in conv fans', () => {
    const model = builtinInitialModel('cnn', [28, 28, 1], 10, 1);
    const [conv1] = splitWeights(model.descriptor.manifest, model.weights);
    const limit = Math.sqrt(6 / (25 * 1 + 25 * 32));
    expect(Math.max(...conv1!.map(Math.abs))).toBeLessThanOrEqual(limit);
  });
});

describe('orthogonal', () => {
  /** The largest |⟨u_i, u_j⟩ − δ_ij| over the rows (rows ≤ cols) or columns of a row-major matrix. */
  function orthonormalityError(matrix: Float32Array, rows: number, cols: number): number {
    const [count, length] = rows <= cols ? [rows, cols] : [cols, rows];
    const at = (k: number, i: number): number => (rows <= cols ? matrix[k * cols + i]! : matrix[i * cols + k]!);
    let worst = 0;
    for (let a = 0; a < count; a++) {
      for (let b = a; b < count; b++) {
        let dot = 0;
        for (let i = 0; i < length; i++) dot += at(a, i) * at(b, i);
        worst = Math.max(worst, Math.abs(dot - (a === b ? 1 : 0)));
      }
    }
    return worst;
  }

  it('(property) has orthonormal rows when wide and orthonormal columns when tall', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }), fc.integer(), (rows, cols, seed) => {
        const random = createSeededRandom(seed);
        expect(orthonormalityError(orthogonal(rows, cols, () => random.nextGaussian()), rows, cols)).toBeLessThan(1e-5);
      }),
    );
  });

  it('is Gram–Schmidt of the Gaussian draws in order: the first row is the first draw, normalised', () => {
    const draws = [3, 4, 0, 1, 2, 2];
    const matrix = orthogonal(2, 3, () => draws.shift()!);
    expect(Array.from(matrix.subarray(0, 3))).toEqual([0.6, 0.8, 0].map(Math.fround));
  });
});

describe('builtinInitialModel: char-gru', () => {
  const model = builtinInitialModel('char-gru', [40], 65, 3);
  const [embeddings, kernel, recurrent, gruBias, dense, denseBias] = splitWeights(model.descriptor.manifest, model.weights);

  it('initialises as Keras does: uniform ±0.05 embeddings, Glorot-uniform kernels, an orthogonal recurrent kernel, zero biases', () => {
    expect(model.weights).toHaveLength(18_761);
    expect(Math.max(...embeddings!.map(Math.abs))).toBeLessThanOrEqual(0.05);
    expect(Math.max(...embeddings!.map(Math.abs))).toBeGreaterThan(0.04);
    expect(Math.max(...kernel!.map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(6 / (8 + 192)));
    expect(Math.max(...dense!.map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(6 / (64 + 65)));
    // [64, 192]: 64 orthonormal rows.
    for (const [a, b] of [[0, 0], [0, 1], [17, 63], [63, 63]] as const) {
      let dot = 0;
      for (let i = 0; i < 192; i++) dot += recurrent![a * 192 + i]! * recurrent![b * 192 + i]!;
      expect(dot, `rows ${a}, ${b}`).toBeCloseTo(a === b ? 1 : 0, 5);
    }
    expect(gruBias!.every((x) => x === 0) && denseBias!.every((x) => x === 0)).toBe(true);
  });

  it('is reproducible per seed and differs across seeds', () => {
    expect(builtinInitialModel('char-gru', [40], 65, 3).weights).toEqual(model.weights);
    expect(builtinInitialModel('char-gru', [40], 65, 4).weights).not.toEqual(model.weights);
  });
});

describe('loadSavedModel', () => {
  async function saved(files: Record<string, string | Uint8Array>): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-model-'));
    for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
    return join(dir, 'model.json');
  }

  it('reads the topology and weights of a tfjs Layers model', async () => {
    const weights = new Float32Array([1, 2, 3, 4, 5, 6, 0.5, -0.5]);
    const path = await saved({
      'model.json': JSON.stringify({
        modelTopology: { class_name: 'Sequential' },
        weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'd/kernel', shape: [3, 2], dtype: 'float32' }, { name: 'd/bias', shape: [2], dtype: 'float32' }] }],
      }),
      'w.bin': new Uint8Array(weights.buffer),
    });
    const model = await loadSavedModel(path);
    expect(model.descriptor.manifest).toEqual([{ name: 'd/kernel', shape: [3, 2] }, { name: 'd/bias', shape: [2] }]);
    expect(model.weights).toEqual(weights);
    expect(model.descriptor.topology).toEqual({ format: 'tfjs-layers', modelTopology: { class_name: 'Sequential' } });
  });

  it('names what is wrong with a bad model file', async () => {
    await expect(loadSavedModel('/nonexistent/model.json')).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
    await expect(loadSavedModel(await saved({ 'model.json': '{"format":"graph-model"}' }))).rejects.toThrow(/not a tfjs Layers model/);
    const short = await saved({
      'model.json': JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'k', shape: [4], dtype: 'float32' }] }] }),
      'w.bin': new Uint8Array(8),
    });
    await expect(loadSavedModel(short)).rejects.toThrow(/hold 8 bytes; the manifest needs 16/);
    const ints = await saved({
      'model.json': JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'k', shape: [1], dtype: 'int32' }] }] }),
      'w.bin': new Uint8Array(4),
    });
    await expect(loadSavedModel(ints)).rejects.toThrow(/float32 weights only/);
  });
});
