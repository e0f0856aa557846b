import * as tf from '@tensorflow/tfjs';
import { ShoalError, shuffled, splitWeights, type ModelDescriptor, type SeededRandom, type TrainConfig, type TrainMetrics } from '@shoal/protocol';
import { scoreModel, type Evaluation } from './evaluation.js';
import { buildModel, checkManifest, readWeights, writeWeights } from './model.js';

/** A client's local examples: row-major features and integer class labels. */
export interface ClientDataset {
  readonly x: Float32Array;
  readonly y: Int32Array;
  /** Shape of one example, e.g. [28, 28, 1] or [64]. */
  readonly featureShape: readonly number[];
}

export interface TrainProgress {
  readonly epoch: number;
  readonly batch: number;
  readonly batchesPerEpoch: number;
}

/** Everything one local training run works with, shared by the fit and the FedProx loops. */
interface LocalRun {
  readonly xs: tf.Tensor;
  readonly ys: tf.Tensor;
  readonly global: Float32Array;
  readonly config: TrainConfig;
  readonly optimizer: tf.Optimizer;
  readonly batchesPerEpoch: number;
  readonly onProgress: ((progress: TrainProgress) => void) | undefined;
  readonly shuffle: SeededRandom | undefined;
  readonly signal: AbortSignal | undefined;
}

/** Loss and accuracy of the last epoch. */
interface EpochMetrics {
  readonly loss: number;
  readonly accuracy: number;
}

/** The result of local training, before the update pipeline. */
export interface LocalTrainingResult {
  readonly delta: Float32Array;
  readonly metrics: TrainMetrics;
}

/**
 * Owns the client's tfjs model. Each round sets the global weights, trains on the local data and
 * returns `trained − global`. Every tensor it creates during a round is disposed by the end of the
 * round (the model's own variables live until `dispose`).
 */
export class LocalTrainer {
  private constructor(
    private readonly model: tf.LayersModel,
    private readonly descriptor: ModelDescriptor,
    private readonly data: ClientDataset,
    /** False for an app's own model, which the app disposes, not us. */
    private readonly ownsModel: boolean,
  ) {}

  /**
   * Builds the coordinator's model, or checks that the app's own model matches its manifest.
   * `evaluationData`, when given, is checked against the model the same way as `data`.
   */
  static async create(descriptor: ModelDescriptor, data: ClientDataset, appModel?: tf.LayersModel, evaluationData?: ClientDataset): Promise<LocalTrainer> {
    LocalTrainer.check(descriptor, data, appModel, evaluationData);
    const model = appModel ?? (await buildModel(descriptor.topology));
    checkManifest(model, descriptor.manifest);
    return new LocalTrainer(model, descriptor, data, appModel === undefined);
  }

  /**
   * What `create` checks before building anything: `data` and `evaluationData` fit the model's
   * input, and the app's own model (when given) matches the manifest.
   * @throws ShoalError INVALID_DATA or the manifest check's error, as `create` would.
   */
  static check(descriptor: ModelDescriptor, data: ClientDataset, appModel?: tf.LayersModel, evaluationData?: ClientDataset): void {
    validateDataset(data, descriptor);
    if (evaluationData !== undefined) validateDataset(evaluationData, descriptor, 'evaluation data');
    if (appModel !== undefined) checkManifest(appModel, descriptor.manifest);
  }

  get numExamples(): number {
    return this.data.y.length;
  }

  /**
   * Trains from `global` and returns `trained − global`. `shuffle` orders the examples of each epoch
   * (simulations pass a seeded generator so runs are reproducible); default: unseeded.
   */
  async train(
    global: Float32Array,
    config: TrainConfig,
    onProgress?: (progress: TrainProgress) => void,
    shuffle?: SeededRandom,
    signal?: AbortSignal,
  ): Promise<LocalTrainingResult> {
    const started = performance.now();
    writeWeights(this.model, this.descriptor.manifest, global);
    const optimizer = config.optimizer === 'adam' ? tf.train.adam(config.learningRate) : tf.train.sgd(config.learningRate);
    const xs = tf.tensor(this.data.x, [this.numExamples, ...this.data.featureShape]);
    const ys = tf.tensor1d(this.data.y, 'float32');
    const batchesPerEpoch = Math.ceil(this.numExamples / config.batchSize);
    try {
      const run: LocalRun = { xs, ys, global, config, optimizer, batchesPerEpoch, onProgress, shuffle, signal };
      const lastEpoch = config.proximalMu > 0 ? await this.trainProximal(run) : await this.trainWithFit(run);
      if (signal?.aborted) throw new ShoalError('ABORTED', 'local training stopped: the client is stopping');
      const trained = readWeights(this.model);
      const delta = new Float32Array(trained.length);
      for (let i = 0; i < delta.length; i++) delta[i] = trained[i]! - global[i]!;
      return { delta, metrics: { ...lastEpoch, trainMs: performance.now() - started } };
    } finally {
      xs.dispose();
      ys.dispose();
      optimizer.dispose();
    }
  }

  private async trainWithFit({ xs, config, optimizer, batchesPerEpoch, onProgress, shuffle, signal }: LocalRun): Promise<EpochMetrics> {
    this.model.compile({ optimizer, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    let last = { loss: Number.NaN, accuracy: Number.NaN };
    // One fit per epoch over our own permutation (fit's shuffle draws from Math.random, which a
    // simulation cannot seed).
    for (let epoch = 0; epoch < config.epochs && !signal?.aborted; epoch++) {
      // The epoch's examples are copied in order on the JS side: tf.gather of the whole set on
      // WASM cost ~9 % of a 2NN epoch at B = 10, the copy far less (docs/benchmarks.md).
      const epochData = inOrder(this.data, permutation(this.numExamples, shuffle));
      const ex = tf.tensor(epochData.x, xs.shape);
      const ey = tf.tensor1d(epochData.y, 'float32');
      try {
        const history = await this.model.fit(ex, ey, {
          epochs: 1,
          batchSize: config.batchSize,
          shuffle: false,
          verbose: 0,
          // We yield ourselves (onBatchEnd): tfjs's own yield waits for an animation frame in
          // browsers, capping training at ~60 batches/s and stalling in hidden tabs.
          yieldEvery: 'never',
          callbacks: {
            onBatchEnd: async (batch) => {
              // stopTraining ends fit after this batch and lets it release its own tensors.
              if (signal?.aborted) this.model.stopTraining = true;
              else onProgress?.({ epoch, batch, batchesPerEpoch });
              await yieldToEventLoop(); // so heartbeats and messages are handled while training
            },
          },
        });
        last = { loss: lastOf(history.history['loss']), accuracy: lastOf(history.history['acc'] ?? history.history['accuracy']) };
      } finally {
        tf.dispose([ex, ey]);
      }
    }
    return last;
  }

  /**
   * FedProx's local objective: loss + µ/2·‖w − w_global‖², minimised batch by batch with the same
   * optimiser. `fit` cannot add a term that depends on the global weights, hence this loop.
   */
  private async trainProximal({ xs, ys, global, config, optimizer, batchesPerEpoch, onProgress, shuffle, signal }: LocalRun): Promise<EpochMetrics> {
    const variables = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { manifest } = this.descriptor;
    const globalTensors = splitWeights(manifest, global).map((part, i) => tf.tensor(part, [...manifest[i]!.shape]));
    const mu = config.proximalMu;
    let loss = 0;
    let correct = 0;
    let seen = 0;
    try {
      for (let epoch = 0; epoch < config.epochs; epoch++) {
        loss = 0;
        correct = 0;
        seen = 0;
        const order = permutation(this.numExamples, shuffle);
        for (let batch = 0; batch < batchesPerEpoch; batch++) {
          const indices = Array.from(order.slice(batch * config.batchSize, (batch + 1) * config.batchSize));
          const batchLoss = tf.tidy(() => {
            const idx = tf.tensor1d(indices, 'int32');
            const bx = tf.gather(xs, idx);
            const by = tf.gather(ys, idx);
            const cost = optimizer.minimize(() => {
              const predictions = this.model.apply(bx, { training: true }) as tf.Tensor;
              const logProbabilities = tf.log(tf.clipByValue(predictions, 1e-7, 1));
              const dataLoss = tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(by.toInt(), predictions.shape[1]!), logProbabilities), -1)));
              const proximal = tf.addN(variables.map((v, i) => tf.sum(tf.square(tf.sub(v, globalTensors[i]!)))));
              return tf.add(dataLoss, tf.mul(mu / 2, proximal)) as tf.Scalar;
            }, true, variables);
            const predicted = tf.argMax(this.model.predict(bx) as tf.Tensor, -1);
            const hits = tf.sum(tf.equal(predicted, by.toInt()));
            return [cost!, hits] as const;
          });
          loss += (await batchLoss[0].data())[0]! * indices.length;
          correct += (await batchLoss[1].data())[0]!;
          seen += indices.length;
          batchLoss[0].dispose();
          batchLoss[1].dispose();
          if (signal?.aborted) return { loss: Number.NaN, accuracy: Number.NaN };
          onProgress?.({ epoch, batch, batchesPerEpoch });
          await yieldToEventLoop(); // so heartbeats and messages are handled while training
        }
      }
    } finally {
      tf.dispose(globalTensors);
    }
    return { loss: loss / Math.max(seen, 1), accuracy: correct / Math.max(seen, 1) };
  }

  /**
   * The loss and accuracy of `weights` on `data` (default: the training examples), on the same tfjs
   * model training uses. Leaves the model holding `weights`; releases every tensor it creates.
   */
  async evaluate(weights: Float32Array, data: ClientDataset = this.data): Promise<Evaluation> {
    writeWeights(this.model, this.descriptor.manifest, weights);
    return scoreModel(this.model, data);
  }

  /** Releases the model's variables (unless the app owns the model). The trainer is unusable afterwards. */
  dispose(): void {
    if (this.ownsModel) this.model.dispose();
  }
}

/**
 * Lets the event loop run (socket messages, heartbeats, UI) and resumes as soon as it is idle.
 * Where the runtime has setImmediate (Node), that: it runs right after pending I/O and costs
 * almost nothing, while a fresh MessageChannel per batch cost Node ~0.2 ms (~5 % of a 2NN epoch at
 * B = 10, docs/benchmarks.md). Elsewhere (browsers) a MessageChannel round trip, which
 * costs microseconds there, unlike a timer (clamped to ≥ 1–4 ms) or an animation frame (≤ 60 per
 * second, none at all in a hidden tab).
 */
function yieldToEventLoop(): Promise<void> {
  // src/common is type-checked without Node or DOM types, hence the structural look-up.
  const { setImmediate } = globalThis as { setImmediate?: (callback: () => void) => unknown };
  if (setImmediate !== undefined) return new Promise((resolve) => void setImmediate(resolve));
  return new Promise((resolve) => {
    // The web API (onmessage) exists in Node's MessagePort too, though @types/node omits it.
    const channel = new MessageChannel() as unknown as {
      port1: { onmessage: (() => void) | null; close(): void };
      port2: { postMessage(message: unknown): void };
    };
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** `data`'s examples (features and labels as float32) in the order `order` lists them. */
function inOrder(data: ClientDataset, order: Int32Array): { x: Float32Array; y: Float32Array } {
  const perExample = data.x.length / data.y.length;
  const x = new Float32Array(data.x.length);
  const y = new Float32Array(order.length);
  for (let i = 0; i < order.length; i++) {
    const from = order[i]!;
    x.set(data.x.subarray(from * perExample, (from + 1) * perExample), i * perExample);
    y[i] = data.y[from]!;
  }
  return { x, y };
}

/** A random order of 0..n−1: seeded when `random` is given, else tfjs's own shuffle. */
function permutation(n: number, random?: SeededRandom): Int32Array {
  if (random === undefined) return Int32Array.from(tf.util.createShuffledIndices(n));
  return Int32Array.from(shuffled([...Array(n).keys()], random));
}


function lastOf(values: readonly (number | tf.Tensor)[] | undefined): number {
  const last = values?.at(-1);
  return typeof last === 'number' ? last : Number.NaN;
}

function validateDataset(data: ClientDataset, descriptor: ModelDescriptor, what = 'client data'): void {
  const perExample = data.featureShape.reduce((a, b) => a * b, 1);
  if (data.y.length === 0) throw new ShoalError('INVALID_DATA', `${what} has no examples`);
  if (data.x.length !== data.y.length * perExample) {
    throw new ShoalError('INVALID_DATA', `${what}: x has ${data.x.length} values; ${data.y.length} examples of shape [${data.featureShape.join(', ')}] need ${data.y.length * perExample}`);
  }
  const topology = descriptor.topology;
  if (topology.format === 'shoal-sequential' && topology.inputShape.reduce((a, b) => a * b, 1) !== perExample) {
    throw new ShoalError('INVALID_DATA', `${what}: examples of shape [${data.featureShape.join(', ')}] do not fit the model input [${topology.inputShape.join(', ')}]`);
  }
}
