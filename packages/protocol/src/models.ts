import type { WeightManifest, WeightSpec } from './weights.js';

export type Activation = 'relu' | 'softmax' | 'linear' | 'sigmoid' | 'tanh';

/** A layer of a sequential model, described without tfjs so the coordinator can reason about it. */
export type LayerSpec =
  | { readonly type: 'dense'; readonly units: number; readonly activation: Activation }
  | {
      readonly type: 'conv2d';
      readonly filters: number;
      readonly kernelSize: number;
      readonly activation: Activation;
      readonly padding: 'same' | 'valid';
    }
  | { readonly type: 'maxPool2d'; readonly poolSize: number }
  | { readonly type: 'flatten' }
  /** Integer ids (given as floats) in 0..inputDim−1 → one learned vector of outputDim each. */
  | { readonly type: 'embedding'; readonly inputDim: number; readonly outputDim: number }
  /** A GRU over a sequence [steps, features] (tfjs's: reset gate before the recurrent product, sigmoid gates, tanh), returning its last state. */
  | { readonly type: 'gru'; readonly units: number };

/**
 * How a client builds the model. `shoal-sequential` is Shoal's own small description (used by the
 * built-in models); `tfjs-layers` carries the Keras-style `modelTopology` of a saved tfjs model.
 * Every model is a classifier trained with sparse categorical cross-entropy on integer labels.
 */
export type ModelTopology =
  | {
      readonly format: 'shoal-sequential';
      readonly inputShape: readonly number[];
      readonly layers: readonly LayerSpec[];
    }
  | { readonly format: 'tfjs-layers'; readonly modelTopology: unknown };

/** What a client needs to build the global model: the topology and the weight layout. */
export interface ModelDescriptor {
  readonly topology: ModelTopology;
  readonly manifest: WeightManifest;
}

export const BUILTIN_MODELS = ['logreg', 'mlp', '2nn', 'cnn', 'char-gru'] as const;
export type BuiltinModelName = (typeof BUILTIN_MODELS)[number];

/** `char-gru`'s sizes: each character id becomes a vector of 8, read by a GRU of 64 units (128 trains 2–3× slower on the WASM backend). */
export const CHAR_GRU = { embeddingDim: 8, units: 64 } as const;

/**
 * Whether built-in model `name` reads its input as integer ids (of characters) rather than as
 * feature values: such a model and a dataset of feature values are no use to each other.
 */
export function readsIds(name: BuiltinModelName): boolean {
  return name === 'char-gru';
}

/** The layer name Shoal gives layer `index`; tfjs names its weights `<layer>/kernel`, `<layer>/bias`. */
export function layerName(index: number, layer: LayerSpec): string {
  return `l${index}_${layer.type.toLowerCase()}`;
}

/** The smallest image side `cnn` takes: it max-pools by 2 twice, so a side below 4 would pool away. */
const CNN_MIN_SIDE = 4;

/**
 * Why built-in model `name` cannot take examples of `inputShape`, as the end of a sentence about
 * the model ("needs …"), or undefined when it can. Every model but `cnn` flattens its input.
 */
export function builtinModelProblem(name: BuiltinModelName, inputShape: readonly number[]): string | undefined {
  if (name === 'char-gru') return inputShape.length === 1 ? undefined : 'needs a flat input shape [sequenceLength] of character ids';
  if (name !== 'cnn') return undefined;
  const [height = 0, width = 0] = inputShape;
  if (inputShape.length !== 3 || height < CNN_MIN_SIDE || width < CNN_MIN_SIDE) {
    return `needs an image input shape [height, width, channels] of at least ${CNN_MIN_SIDE}×${CNN_MIN_SIDE} (it max-pools by 2 twice)`;
  }
  return undefined;
}

/**
 * A built-in model for inputs of `inputShape` and `numClasses` classes.
 * - `logreg`: one softmax layer.
 * - `mlp`: one hidden layer of 128 ReLU units.
 * - `2nn`: McMahan et al. 2017's 2NN, two hidden layers of 200 ReLU units (199,210 params on MNIST).
 * - `cnn`: McMahan et al. 2017's CNN, conv5×5×32, pool, conv5×5×64, pool, dense 512 (1,663,370 on MNIST);
 *   it needs an image input shape [height, width, channels] of at least 4×4 (`builtinModelProblem`).
 * - `char-gru`: next-character model over windows of character ids (inputShape [sequenceLength],
 *   numClasses the vocabulary size): embedding of 8, one GRU of 64 units, softmax over the
 *   vocabulary (18,761 params for tiny Shakespeare's 65 characters).
 * Throws RangeError for an input shape the model cannot take.
 */
export function builtinTopology(
  name: BuiltinModelName,
  inputShape: readonly number[],
  numClasses: number,
): ModelTopology {
  const flatInput = inputShape.length === 1 ? [] : [{ type: 'flatten' } as const];
  const softmax = { type: 'dense', units: numClasses, activation: 'softmax' } as const;
  const hidden = (units: number) => ({ type: 'dense', units, activation: 'relu' }) as const;
  switch (name) {
    case 'logreg':
      return { format: 'shoal-sequential', inputShape, layers: [...flatInput, softmax] };
    case 'mlp':
      return { format: 'shoal-sequential', inputShape, layers: [...flatInput, hidden(128), softmax] };
    case '2nn':
      return { format: 'shoal-sequential', inputShape, layers: [...flatInput, hidden(200), hidden(200), softmax] };
    case 'cnn': {
      const problem = builtinModelProblem(name, inputShape);
      if (problem !== undefined) throw new RangeError(`the cnn model ${problem}, got [${inputShape.join(', ')}]`);
      const conv = (filters: number) =>
        ({ type: 'conv2d', filters, kernelSize: 5, activation: 'relu', padding: 'same' }) as const;
      const pool = { type: 'maxPool2d', poolSize: 2 } as const;
      return {
        format: 'shoal-sequential',
        inputShape,
        layers: [conv(32), pool, conv(64), pool, { type: 'flatten' }, hidden(512), softmax],
      };
    }
    case 'char-gru': {
      const problem = builtinModelProblem(name, inputShape);
      if (problem !== undefined) throw new RangeError(`the char-gru model ${problem}, got [${inputShape.join(', ')}]`);
      return {
        format: 'shoal-sequential',
        inputShape,
        layers: [{ type: 'embedding', inputDim: numClasses, outputDim: CHAR_GRU.embeddingDim }, { type: 'gru', units: CHAR_GRU.units }, softmax],
      };
    }
  }
}

/** The weight manifest a `shoal-sequential` topology produces, in tfjs's `model.getWeights()` order. */
export function manifestOfSequential(topology: Extract<ModelTopology, { format: 'shoal-sequential' }>): WeightManifest {
  let shape = [...topology.inputShape];
  const manifest: WeightSpec[] = [];
  topology.layers.forEach((layer, index) => {
    const name = layerName(index, layer);
    switch (layer.type) {
      case 'dense': {
        if (shape.length !== 1) throw new RangeError(`${name}: dense needs a flat input, got [${shape.join(', ')}]; add a flatten layer`);
        manifest.push({ name: `${name}/kernel`, shape: [shape[0]!, layer.units] }, { name: `${name}/bias`, shape: [layer.units] });
        shape = [layer.units];
        break;
      }
      case 'conv2d': {
        if (shape.length !== 3) throw new RangeError(`${name}: conv2d needs [height, width, channels], got [${shape.join(', ')}]`);
        const [height, width, channels] = shape as [number, number, number];
        manifest.push(
          { name: `${name}/kernel`, shape: [layer.kernelSize, layer.kernelSize, channels, layer.filters] },
          { name: `${name}/bias`, shape: [layer.filters] },
        );
        const shrink = layer.padding === 'same' ? 0 : layer.kernelSize - 1;
        shape = [height - shrink, width - shrink, layer.filters];
        break;
      }
      case 'maxPool2d': {
        if (shape.length !== 3) throw new RangeError(`${name}: maxPool2d needs [height, width, channels], got [${shape.join(', ')}]`);
        const [height, width, channels] = shape as [number, number, number];
        shape = [Math.floor(height / layer.poolSize), Math.floor(width / layer.poolSize), channels];
        break;
      }
      case 'flatten':
        shape = [shape.reduce((a, b) => a * b, 1)];
        break;
      case 'embedding':
        if (shape.length !== 1) throw new RangeError(`${name}: embedding needs a flat sequence of ids [steps], got [${shape.join(', ')}]`);
        manifest.push({ name: `${name}/embeddings`, shape: [layer.inputDim, layer.outputDim] });
        shape = [shape[0]!, layer.outputDim];
        break;
      case 'gru': {
        if (shape.length !== 2) throw new RangeError(`${name}: gru needs a sequence [steps, features], got [${shape.join(', ')}]; put an embedding first`);
        // tfjs's order: input kernel, recurrent kernel, bias; gates z, r, h side by side.
        const gates = 3 * layer.units;
        manifest.push(
          { name: `${name}/kernel`, shape: [shape[1]!, gates] },
          { name: `${name}/recurrent_kernel`, shape: [layer.units, gates] },
          { name: `${name}/bias`, shape: [gates] },
        );
        shape = [layer.units];
        break;
      }
    }
  });
  return manifest;
}
