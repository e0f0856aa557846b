// Evaluation on the client: the global model's loss and accuracy on local examples, with the same
// tfjs model the client trains. Federated evaluation scores held-out examples (`evaluate`); q-FedAvg
// scores the training examples before local training (`update.initialLoss`).
import * as tf from '@tensorflow/tfjs';
import { ShoalError, type ClientMessage, type Clock, type EvaluateMessage } from '@shoal/protocol';
import type { ClientEvents } from './client.js';
import type { HeldModel } from './round.js';
import type { ClientDataset, LocalTrainer } from './trainer.js';

/** A model's score on a set of examples. */
export interface Evaluation {
  /** Mean sparse categorical cross-entropy (predicted probabilities clipped to [1e-7, 1]). */
  readonly loss: number;
  /** Fraction of the examples whose most probable class is the label. */
  readonly accuracy: number;
  readonly numExamples: number;
}

/** Examples scored per batch: bounds the memory of one forward pass. */
const EVALUATION_BATCH = 256;

/**
 * Scores `model` (already holding the weights to score) on `data`, batch by batch. Every tensor it
 * creates is released before it returns; the model's own variables are untouched.
 */
export async function scoreModel(model: tf.LayersModel, data: ClientDataset): Promise<Evaluation> {
  const numExamples = data.y.length;
  const perExample = data.featureShape.reduce((a, b) => a * b, 1);
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < numExamples; start += EVALUATION_BATCH) {
    const end = Math.min(numExamples, start + EVALUATION_BATCH);
    const [batchLoss, batchHits] = tf.tidy(() => {
      const xs = tf.tensor(data.x.subarray(start * perExample, end * perExample), [end - start, ...data.featureShape]);
      const ys = tf.tensor1d(data.y.subarray(start, end), 'int32');
      const probabilities = model.predict(xs) as tf.Tensor;
      const logProbabilities = tf.log(tf.clipByValue(probabilities, 1e-7, 1));
      const loss = tf.neg(tf.sum(tf.mul(tf.oneHot(ys, probabilities.shape[1]!), logProbabilities)));
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(probabilities, -1), ys), 'float32'));
      return [loss, hits] as const;
    });
    try {
      lossSum += (await batchLoss.data())[0]!;
      correct += (await batchHits.data())[0]!;
    } finally {
      tf.dispose([batchLoss, batchHits]);
    }
  }
  return { loss: lossSum / numExamples, accuracy: correct / numExamples, numExamples };
}

/** What answering an `evaluate` works with. */
export interface EvaluateIo {
  readonly trainer: LocalTrainer;
  /** The app's held-out examples (`evaluationData`); without them the client declines. */
  readonly data: ClientDataset | undefined;
  readonly send: (message: ClientMessage) => void;
  readonly emit: <K extends keyof ClientEvents>(event: K, payload: ClientEvents[K]) => void;
  readonly clock: Clock;
}

/**
 * Answers one `evaluate` (docs/protocol.md, "Federated evaluation"): scores the named model on the
 * held-out examples and sends `evaluation`, or `decline` when it cannot (no held-out data, no such
 * model, a non-finite score). Nothing is sent once `deadlineMs` has passed since the message
 * arrived (`receivedAt`): the coordinator no longer counts it. Returns the model the client holds
 * afterwards (the evaluated one when it came with the message).
 */
export async function answerEvaluate(message: EvaluateMessage, receivedAt: number, held: HeldModel | undefined, io: EvaluateIo): Promise<HeldModel | undefined> {
  const { round, modelVersion } = message;
  const model = message.weights !== undefined ? { version: modelVersion, weights: message.weights } : held?.version === modelVersion ? held : undefined;
  const decline = (reason: string) => io.send({ type: 'decline', round, reason });
  if (io.data === undefined) {
    decline('client has no evaluation data');
    return held;
  }
  if (model === undefined) {
    decline(`client does not hold model ${modelVersion}`);
    return held;
  }
  const result = await io.trainer.evaluate(model.weights, io.data);
  if (io.clock.now() - receivedAt > message.deadlineMs) return model;
  if (!Number.isFinite(result.loss) || !Number.isFinite(result.accuracy)) {
    io.emit('error', { error: new ShoalError('NON_FINITE', `round ${round}: the evaluation of ${modelVersion} is not finite (loss ${result.loss})`) });
    decline('evaluation is not finite');
    return model;
  }
  io.send({ type: 'evaluation', round, modelVersion, loss: result.loss, accuracy: result.accuracy, numExamples: result.numExamples });
  io.emit('evaluated', { round, modelVersion, ...result });
  return model;
}
