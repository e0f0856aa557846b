import { beforeAll, describe, expect, it } from 'vitest';
import { expectShoalError } from '@shoal/testkit';
import * as tf from '@tensorflow/tfjs';
import { BUILTIN_MODELS, builtinTopology, createSeededRandom, manifestOfSequential, numParams } from '@shoal/protocol';
import type { ModelTopology, WeightManifest } from '@shoal/protocol';
import { buildModel, checkManifest, manifestOf, readWeights, writeWeights } from '../src/common/model.js';

type SequentialTopology = Extract<ModelTopology, { format: 'shoal-sequential' }>;

function seededVector(length: number, seed: number): Float32Array {
  const random = createSeededRandom(seed);
  return Float32Array.from({ length }, () => random.nextGaussian());
}


/** Runs `body` on a freshly built model and disposes it afterwards. */
async function withModel<T>(topology: ModelTopology, body: (model: tf.LayersModel) => T | Promise<T>): Promise<T> {
  const model = await buildModel(topology);
  try {
    return await body(model);
  } finally {
    model.dispose();
  }
}

const small: SequentialTopology = {
  format: 'shoal-sequential',
  inputShape: [6, 6, 2],
  layers: [
    { type: 'conv2d', filters: 3, kernelSize: 3, activation: 'relu', padding: 'valid' },
    { type: 'maxPool2d', poolSize: 2 },
    { type: 'flatten' },
    { type: 'dense', units: 4, activation: 'softmax' },
  ],
};

describe('buildModel for shoal-sequential topologies', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  const shapes: Record<(typeof BUILTIN_MODELS)[number], number[]> = { logreg: [784], mlp: [784], '2nn': [784], cnn: [28, 28, 1], 'char-gru': [40] };
  it.each(BUILTIN_MODELS.map((name) => [name]))('builds %s with exactly the manifest the protocol promises', async (name) => {
    const topology = builtinTopology(name, shapes[name], 10) as SequentialTopology;
    await withModel(topology, (model) => {
      expect(manifestOf(model)).toEqual(manifestOfSequential(topology));
      expect(model.countParams()).toBe(numParams(manifestOfSequential(topology)));
      expect(model.inputs[0]!.shape).toEqual([null, ...shapes[name]]);
      expect(model.outputs[0]!.shape).toEqual([null, 10]);
    });
  });

  it('keeps the manifest names when the same model is built twice (tfjs would add _1 to variable names)', async () => {
    await withModel(small, async (first) => {
      await withModel(small, (second) => {
        expect(second.weights[0]!.name).not.toBe(first.weights[0]!.name);
        expect(manifestOf(second)).toEqual(manifestOf(first));
        expect(manifestOf(second)[0]!.name).toBe('l0_conv2d/kernel');
      });
    });
  });

  it('applies the layer settings: activations, padding and pooling show in the outputs', async () => {
    await withModel(small, (model) => {
      const output = tf.tidy(() => (model.predict(tf.ones([2, 6, 6, 2])) as tf.Tensor).arraySync() as number[][]);
      expect(output).toHaveLength(2);
      for (const row of output) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5); // softmax
      expect(model.layers.map((layer) => layer.outputShape)).toEqual([
        [null, 4, 4, 3], // valid 3×3
        [null, 2, 2, 3],
        [null, 12],
        [null, 4],
      ]);
    });
  });

  it('rejects a topology the protocol would not accept', async () => {
    const denseOnImage: ModelTopology = { format: 'shoal-sequential', inputShape: [4, 4, 1], layers: [{ type: 'dense', units: 3, activation: 'relu' }] };
    await expect(buildModel(denseOnImage)).rejects.toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringMatching(/flatten/) });
    await expect(buildModel({ format: 'shoal-sequential', inputShape: [3], layers: [] })).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
  });
});

describe('char-gru', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  const topology = builtinTopology('char-gru', [5], 7) as SequentialTopology;

  it('its embedding gives what tfjs\'s gather-based embedding gives, and a gradient for every weight', async () => {
    await withModel(topology, (model) => {
      writeWeights(model, manifestOfSequential(topology), seededVector(numParams(manifestOfSequential(topology)), 4));
      const embeddings = model.weights[0]!.read();
      const reference = tf.sequential({ layers: [tf.layers.embedding({ inputShape: [5], inputDim: 7, outputDim: 8, weights: [embeddings] })] });
      try {
        const ids = tf.tensor2d([[0, 6, 3, 3, 1], [2, 5, 4, 0, 6]]);
        const [ours, theirs] = tf.tidy(() => [(model.layers[0]!.apply(ids) as tf.Tensor).arraySync(), (reference.predict(ids) as tf.Tensor).arraySync()]);
        expect(ours).toEqual(theirs);
        // Every weight, the embeddings included, gets a gradient from the loss (none is cut off).
        const { grads } = tf.variableGrads(() => tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot([1, 2], 7), model.predict(ids) as tf.Tensor) as tf.Scalar));
        const sums = model.trainableWeights.map((weight) => tf.tidy(() => grads[weight.name]!.abs().sum().dataSync()[0]!));
        expect(sums.every((sum) => sum > 0), JSON.stringify(sums)).toBe(true);
        tf.dispose([ids, ...Object.values(grads)]);
      } finally {
        reference.dispose();
      }
    });
  });

  it('round-trips its weights through the flat vector', async () => {
    const manifest = manifestOfSequential(topology);
    const vector = seededVector(numParams(manifest), 5);
    await withModel(topology, (model) => {
      writeWeights(model, manifest, vector);
      expect(readWeights(model)).toEqual(vector);
    });
  });
});

describe('flat weights', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('write → read round-trips exactly, in manifest order', async () => {
    await withModel(small, (model) => {
      const manifest = manifestOfSequential(small);
      const data = seededVector(numParams(manifest), 1);
      writeWeights(model, manifest, data);
      expect(readWeights(model)).toEqual(data);
      // Manifest order: the first weight is the conv kernel [3, 3, 2, 3], laid out row-major.
      const kernel = model.getWeights()[0]!;
      expect(kernel.shape).toEqual([3, 3, 2, 3]);
      expect(kernel.dataSync()).toEqual(data.subarray(0, 54));
      expect(model.getWeights()[1]!.dataSync()).toEqual(data.subarray(54, 57));
    });
  });

  it('readWeights returns a copy, and writeWeights does not keep a view of the caller’s vector', async () => {
    await withModel(small, (model) => {
      const manifest = manifestOf(model);
      const data = seededVector(numParams(manifest), 2);
      writeWeights(model, manifest, data);
      data[0] = 1234;
      const read = readWeights(model);
      expect(read[0]).not.toBe(1234);
      read[1] = 5678;
      expect(readWeights(model)[1]).not.toBe(5678);
    });
  });

  it('read and write leak no tensors', async () => {
    await withModel(small, (model) => {
      const manifest = manifestOf(model);
      const data = seededVector(numParams(manifest), 3);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) {
        writeWeights(model, manifest, data);
        readWeights(model);
      }
      expect(tf.memory().numTensors).toBe(before);
    });
  });

  it('writeWeights rejects a vector of the wrong length', async () => {
    await withModel(small, (model) => {
      const manifest = manifestOf(model);
      const before = readWeights(model);
      expectShoalError(() => writeWeights(model, manifest, new Float32Array(numParams(manifest) - 1)), 'LENGTH_MISMATCH', /has 108 values; the manifest needs 109/);
      expect(readWeights(model)).toEqual(before);
    });
  });

  it('works the same on the WASM backend', async () => {
    await import('@tensorflow/tfjs-backend-wasm');
    await tf.setBackend('wasm');
    try {
      await withModel(small, (model) => {
        const manifest = manifestOf(model);
        const data = seededVector(numParams(manifest), 4);
        const before = tf.memory().numTensors;
        writeWeights(model, manifest, data);
        expect(readWeights(model)).toEqual(data);
        expect(tf.memory().numTensors).toBe(before);
      });
    } finally {
      await tf.setBackend('cpu');
    }
  });
});

describe('checkManifest', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('accepts a matching manifest whatever its names', async () => {
    await withModel(small, (model) => {
      const renamed: WeightManifest = manifestOf(model).map((weight, index) => ({ ...weight, name: `app_weight_${index}` }));
      expect(() => checkManifest(model, renamed)).not.toThrow();
    });
  });

  it('names the first weight whose shape differs', async () => {
    await withModel(small, (model) => {
      const manifest = manifestOf(model).map((weight) => ({ ...weight }));
      manifest[2] = { name: 'l3_dense/kernel', shape: [12, 5] };
      manifest[3] = { name: 'l3_dense/bias', shape: [5] };
      expectShoalError(() => checkManifest(model, manifest), 'MODEL_MISMATCH', /weight 2 \(manifest 'l3_dense\/kernel'.*\[12, 4\].*expects \[12, 5\]/);
    });
  });

  it('reports a different number of weights', async () => {
    await withModel(small, (model) => {
      expectShoalError(() => checkManifest(model, manifestOf(model).slice(0, 3)), 'MODEL_MISMATCH', /4 weight tensors.*lists 3/);
    });
  });
});

describe('tfjs-layers topologies', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('rebuilds an app model from model.toJSON() with the same weight layout', async () => {
    const original = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, activation: 'relu' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 5, activation: 'softmax' }),
      ],
    });
    try {
      const json = original.toJSON(null, false);
      await withModel({ format: 'tfjs-layers', modelTopology: json }, (rebuilt) => {
        expect(manifestOf(rebuilt)).toEqual(manifestOf(original));
        // Same architecture: the same weights give the same predictions.
        writeWeights(rebuilt, manifestOf(rebuilt), readWeights(original));
        const [a, b] = tf.tidy(() => {
          const input = tf.linspace(0, 1, 64).reshape([1, 8, 8, 1]);
          return [(original.predict(input) as tf.Tensor).dataSync(), (rebuilt.predict(input) as tf.Tensor).dataSync()];
        });
        expect(b).toEqual(a);
      });
    } finally {
      original.dispose();
    }
  });

  it('rejects a topology that is not a model JSON object', async () => {
    await expect(buildModel({ format: 'tfjs-layers', modelTopology: 'not json' })).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
    await expect(buildModel({ format: 'tfjs-layers', modelTopology: { class_name: 'NoSuchModel', config: {} } })).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
      message: expect.stringMatching(/NoSuchModel/),
    });
  });
});
