import * as tf from '@tensorflow/tfjs';
import { buildModel, writeWeights } from '@shoal/client';
import type { EvaluationResult } from '@shoal/coordinator';
import type { ModelDescriptor } from '@shoal/protocol';
import type { Dataset } from './datasets.js';

/**
 * Central evaluation: scores global weights on a held-out set with one tfjs model it owns (pass
 * `evaluate` to a coordinator); `dispose` releases the model and the test tensors.
 */
export async function centralEvaluator(descriptor: ModelDescriptor, test: Dataset): Promise<{
  evaluate(weights: Float32Array): Promise<EvaluationResult>;
  dispose(): void;
}> {
  const model = await buildModel(descriptor.topology);
  model.compile({ optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  const xs = tf.tensor(test.x, [test.length, ...test.featureShape]);
  const ys = tf.tensor1d(test.y, 'float32');
  return {
    async evaluate(weights: Float32Array): Promise<EvaluationResult> {
      writeWeights(model, descriptor.manifest, weights);
      const [loss, accuracy] = model.evaluate(xs, ys, { batchSize: 1_000 }) as tf.Scalar[];
      const result = { loss: (await loss!.data())[0]!, accuracy: (await accuracy!.data())[0]! };
      tf.dispose([loss!, accuracy!]);
      return result;
    },
    dispose() {
      tf.dispose([xs, ys]);
      model.dispose();
    },
  };
}
