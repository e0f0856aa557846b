// Central evaluation for the example's coordinator. The coordinator never loads tfjs (weights are a
// flat Float32Array plus a manifest), so this runs the dense built-in models in plain JavaScript.
import type { EvaluationResult } from '@shoal/coordinator';
import type { Activation, ModelDescriptor } from '@shoal/protocol';
import type { LocalDataset } from './data.js';

/**
 * Returns a function computing loss (mean cross-entropy) and accuracy of global weights on `test`.
 * Supports `shoal-sequential` models made of dense (and flatten) layers: `logreg`, `mlp`, `2nn`.
 */
export function denseEvaluator(descriptor: ModelDescriptor, test: LocalDataset): (weights: Float32Array) => Promise<EvaluationResult> {
  const { topology, manifest } = descriptor;
  if (topology.format !== 'shoal-sequential') throw new Error('denseEvaluator needs a built-in (shoal-sequential) model');
  // Dense layers in order, with where their kernel [in, out] and bias [out] sit in the flat vector.
  const layers: { inputs: number; units: number; activation: Activation; kernelAt: number; biasAt: number }[] = [];
  let offset = 0;
  let weightIndex = 0;
  for (const layer of topology.layers) {
    if (layer.type === 'flatten') continue;
    if (layer.type !== 'dense') throw new Error(`denseEvaluator cannot run a ${layer.type} layer`);
    const kernel = manifest[weightIndex++];
    const bias = manifest[weightIndex++];
    if (!kernel || !bias || kernel.shape.length !== 2) throw new Error('manifest does not match the dense layers');
    const [inputs, units] = kernel.shape as [number, number];
    layers.push({ inputs, units, activation: layer.activation, kernelAt: offset, biasAt: offset + inputs * units });
    offset += inputs * units + units;
  }
  const features = test.x.length / test.y.length;

  return async (weights) => {
    let lossSum = 0;
    let correct = 0;
    for (let n = 0; n < test.y.length; n++) {
      let values: Float64Array = Float64Array.from(test.x.subarray(n * features, (n + 1) * features));
      for (const layer of layers) values = denseForward(layer, weights, values);
      const label = test.y[n]!;
      lossSum -= Math.log(Math.max(values[label]!, 1e-7));
      if (argmax(values) === label) correct++;
    }
    return { loss: lossSum / test.y.length, accuracy: correct / test.y.length };
  };
}

function denseForward(
  layer: { inputs: number; units: number; activation: Activation; kernelAt: number; biasAt: number },
  weights: Float32Array,
  input: Float64Array,
): Float64Array {
  const out = new Float64Array(layer.units);
  for (let j = 0; j < layer.units; j++) {
    let sum = weights[layer.biasAt + j]!;
    for (let i = 0; i < layer.inputs; i++) sum += input[i]! * weights[layer.kernelAt + i * layer.units + j]!;
    out[j] = sum;
  }
  switch (layer.activation) {
    case 'relu':
      return out.map((v) => Math.max(v, 0));
    case 'sigmoid':
      return out.map((v) => 1 / (1 + Math.exp(-v)));
    case 'tanh':
      return out.map(Math.tanh);
    case 'linear':
      return out;
    case 'softmax': {
      const max = Math.max(...out);
      const exps = out.map((v) => Math.exp(v - max));
      const total = exps.reduce((a, b) => a + b, 0);
      return exps.map((v) => v / total);
    }
  }
}

function argmax(values: Float64Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
