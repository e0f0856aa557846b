/**
 * The bridge between tfjs models and Shoal's flat weight vectors (isomorphic: tfjs only, no Node or
 * DOM APIs). Weight order is always `model.weights` order, which is what `getWeights()` returns
 * and `setWeights()` expects: layer by layer, trainable before non-trainable.
 */
import * as tf from '@tensorflow/tfjs';
import { joinWeights, layerName, manifestOfSequential, ShoalError, splitWeights } from '@shoal/protocol';
import type { LayerSpec, ModelTopology, WeightManifest } from '@shoal/protocol';

type SequentialTopology = Extract<ModelTopology, { format: 'shoal-sequential' }>;

/**
 * Builds an uncompiled `tf.LayersModel` from a topology.
 * - `shoal-sequential`: layer `i` is named `layerName(i, layer)`, so its weights are
 *   `<layer>/kernel` and `<layer>/bias` exactly as `manifestOfSequential` lists them.
 * - `tfjs-layers`: the Keras-style topology goes through `tf.models.modelFromJSON`.
 * Weights are freshly initialised; the caller owns the model and disposes it.
 * @throws ShoalError('INVALID_CONFIG') when the topology cannot be built.
 */
export async function buildModel(topology: ModelTopology): Promise<tf.LayersModel> {
  switch (topology.format) {
    case 'shoal-sequential':
      return buildSequential(topology);
    case 'tfjs-layers': {
      const json = topology.modelTopology;
      if (typeof json !== 'object' || json === null || Array.isArray(json)) {
        throw new ShoalError('INVALID_CONFIG', 'a tfjs-layers topology needs modelTopology to be the object model.toJSON() returns');
      }
      try {
        return await tf.models.modelFromJSON(json as Parameters<typeof tf.models.modelFromJSON>[0]);
      } catch (error) {
        throw new ShoalError('INVALID_CONFIG', `tfjs could not build the tfjs-layers topology: ${messageOf(error)}`, { cause: error });
      }
    }
  }
}

function buildSequential(topology: SequentialTopology): tf.LayersModel {
  if (topology.layers.length === 0) {
    throw new ShoalError('INVALID_CONFIG', 'a shoal-sequential topology needs at least one layer');
  }
  let manifest: WeightManifest;
  try {
    // Validates the layer stack (e.g. a dense layer on an image needs a flatten first), where
    // tfjs would silently apply the dense layer along the last axis instead.
    manifest = manifestOfSequential(topology);
  } catch (error) {
    throw new ShoalError('INVALID_CONFIG', `invalid shoal-sequential topology: ${messageOf(error)}`, { cause: error });
  }
  const model = tf.sequential();
  topology.layers.forEach((layer, index) => {
    const inputShape = index === 0 ? [...topology.inputShape] : undefined;
    model.add(makeLayer(layer, layerName(index, layer), inputShape));
  });
  // The names and shapes above are a promise to the coordinator; make sure tfjs kept it.
  checkManifest(model, manifest);
  return model;
}

function makeLayer(layer: LayerSpec, name: string, inputShape: number[] | undefined): Parameters<tf.Sequential['add']>[0] {
  switch (layer.type) {
    case 'dense':
      return tf.layers.dense({ name, inputShape, units: layer.units, activation: layer.activation });
    case 'conv2d':
      return tf.layers.conv2d({
        name,
        inputShape,
        filters: layer.filters,
        kernelSize: layer.kernelSize,
        activation: layer.activation,
        padding: layer.padding,
      });
    case 'maxPool2d':
      return tf.layers.maxPooling2d({ name, inputShape, poolSize: layer.poolSize });
    case 'flatten':
      return tf.layers.flatten({ name, inputShape });
    case 'embedding':
      return new OneHotEmbedding({ name, inputShape, inputDim: layer.inputDim, outputDim: layer.outputDim });
    case 'gru':
      return tf.layers.gru({
        name,
        inputShape,
        units: layer.units,
        // Spelled out rather than left to tfjs's defaults (hardSigmoid, glorotNormal), which differ from Keras's.
        recurrentActivation: 'sigmoid',
        kernelInitializer: 'glorotUniform',
        // The coordinator's weights (orthogonal recurrent kernel) replace these at once; tfjs's
        // orthogonal initialiser would run a slow QR on every client for nothing.
        recurrentInitializer: 'glorotUniform',
      });
  }
}

/**
 * tfjs's embedding layer computed as one-hot(ids) · E: the same outputs and the same weight
 * (`embeddings`, [inputDim, outputDim], initialised uniform in ±0.05), but its gradient is a matMul,
 * which every backend has. `tf.layers.embedding`'s gather needs `UnsortedSegmentSum` for its
 * gradient, which tfjs 4.22's WASM backend lacks. Ids are cast to integers; an id outside
 * 0..inputDim−1 embeds to zeros. For small vocabularies (a character model's 65) the one-hot costs
 * little. Built by `buildModel` only, so it is not registered for tfjs serialization.
 */
class OneHotEmbedding extends tf.layers.Layer {
  static readonly className = 'ShoalOneHotEmbedding';
  private readonly inputDim: number;
  private readonly outputDim: number;
  private embeddings: tf.LayerVariable | undefined;

  constructor(args: { name: string; inputShape: number[] | undefined; inputDim: number; outputDim: number }) {
    super({ name: args.name, ...(args.inputShape ? { inputShape: args.inputShape } : {}) });
    this.inputDim = args.inputDim;
    this.outputDim = args.outputDim;
  }

  override build(): void {
    const initializer = tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05 });
    this.embeddings = this.addWeight('embeddings', [this.inputDim, this.outputDim], 'float32', initializer);
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return [...(inputShape as tf.Shape), this.outputDim];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const ids = Array.isArray(inputs) ? inputs[0]! : inputs;
      const oneHot = tf.oneHot(tf.cast(ids.flatten(), 'int32'), this.inputDim).toFloat();
      const embedded = tf.matMul(oneHot, this.embeddings!.read());
      return embedded.reshape([...ids.shape, this.outputDim]);
    });
  }
}

/**
 * Checks that `model` has the weights `manifest` describes, by position and shape (not by name:
 * a model the app brings has its own auto-generated names).
 * @throws ShoalError('MODEL_MISMATCH') naming the first weight that differs, or the counts.
 */
export function checkManifest(model: tf.LayersModel, manifest: WeightManifest): void {
  const weights = model.weights;
  if (weights.length !== manifest.length) {
    throw new ShoalError(
      'MODEL_MISMATCH',
      `the model has ${weights.length} weight tensors; the coordinator's manifest lists ${manifest.length} ` +
        `(${manifest.map((w) => w.name).join(', ')})`,
    );
  }
  manifest.forEach((expected, index) => {
    const actual = weights[index]!;
    if (!sameShape(actual.shape, expected.shape)) {
      throw new ShoalError(
        'MODEL_MISMATCH',
        `weight ${index} (manifest '${expected.name}', model '${actual.originalName}') has shape ` +
          `[${actual.shape.join(', ')}]; the manifest expects [${expected.shape.join(', ')}]`,
      );
    }
  });
}

/** The model's weights as one flat `Float32Array` in `model.weights` order (a copy). Leaks no tensors. */
export function readWeights(model: tf.LayersModel): Float32Array {
  // getWeights() returns the live variables: read them, never dispose them.
  const values = model.getWeights().map((weight) => weight.dataSync());
  return joinWeights(manifestOf(model), values);
}

/**
 * Sets all of the model's weights from a flat vector laid out as `manifest` says.
 * The data is copied; the temporary tensors are disposed (the model's variables keep their own
 * reference to the new values).
 * @throws ShoalError('MODEL_MISMATCH') when the model does not match the manifest, and
 *   ShoalError('LENGTH_MISMATCH') when `data` is not as long as the manifest needs.
 */
export function writeWeights(model: tf.LayersModel, manifest: WeightManifest, data: Float32Array): void {
  checkManifest(model, manifest);
  let parts: Float32Array[];
  try {
    parts = splitWeights(manifest, data);
  } catch (error) {
    throw new ShoalError('LENGTH_MISMATCH', messageOf(error), { cause: error });
  }
  // slice(): tfjs's CPU backend keeps the array it is given, so a view into the caller's vector
  // would make later writes to that vector change the model.
  const tensors = parts.map((part, index) => tf.tensor(part.slice(), [...manifest[index]!.shape], 'float32'));
  try {
    model.setWeights(tensors);
  } finally {
    tf.dispose(tensors);
  }
}

/** The manifest of a model as tfjs reports it: each weight's name (without tfjs's `_1` uniquifier) and shape. */
export function manifestOf(model: tf.LayersModel): WeightManifest {
  return model.weights.map((weight) => ({ name: weight.originalName, shape: [...weight.shape] as number[] }));
}

function sameShape(a: readonly (number | null)[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((dim, index) => dim === b[index]);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
