// What Shoal adds to local training: a full federated round (the real ShoalClient and the real
// Coordinator over the in-memory transport: encode/validate/decode the weights both ways, set and
// read the weights, the delta, FedAvg) against a bare `model.fit` on the same data, model, epochs
// and batch size, on the WASM backend. Target: round / bare fit ≤ 1.15×.
//
// Interleaving: the bare fit runs inside the coordinator's `evaluate` callback, which the
// coordinator awaits between aggregating a round and starting the next, while the client sits
// idle. So rounds and baseline samples alternate and never overlap. Each round is compared with
// the mean of the bare fits just before and just after it, which cancels drift that is linear over
// the pair; the target is checked on the median of those per-round ratios, because on a shared
// machine load swings between pairs far more than within one. The baseline's own time is
// subtracted from the coordinator's round duration, leaving what the round itself cost.
// Correctness (exit 1 on failure): every round commits, the client sends every round's update, the
// bare fits' losses are finite, and the rounds leave tf.memory().numTensors unchanged.
import * as tf from '@tensorflow/tfjs';
import { Coordinator, builtinInitialModel } from '@shoal/coordinator';
import { ShoalClient, buildModel, initBackend, readWeights, writeWeights } from '@shoal/client';
import { loadDataset, memoryTransport, take } from '@shoal/sim';
import { WeightedSum, fedAvg } from '@shoal/strategy';
import { decodeClientMessage, decodeCoordinatorMessage, encodeFrame, type TrainConfig } from '@shoal/protocol';
import { check, report, sized, time } from './lib.js';

const MODEL = '2nn'; // McMahan et al.'s 784-200-200-10 (199,210 parameters)
const EXAMPLES = sized(600, 100); // one client's share in McMahan et al.'s IID MNIST split
const ROUNDS = sized(30, 4);
const WARMUP_ROUNDS = sized(3, 1); // JIT, WASM kernel set-up and tfjs's first-call caches
const TOKEN = 'bench';
const train: TrainConfig = { epochs: 1, batchSize: 10, learningRate: 0.05, optimizer: 'sgd', proximalMu: 0 };

const backend = await initBackend({ prefer: 'wasm' });
const data = take(loadDataset('mnist').train, EXAMPLES);
const initial = builtinInitialModel(MODEL, data.featureShape, data.numClasses, 0);

// ---- the baseline: what an app would write without Shoal ----
const bareModel = await buildModel(initial.descriptor.topology);
writeWeights(bareModel, initial.descriptor.manifest, initial.weights);
const bareOptimizer = tf.train.sgd(train.learningRate);
bareModel.compile({ optimizer: bareOptimizer, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
const bareXs = tf.tensor(data.x, [data.length, ...data.featureShape]);
const bareYs = tf.tensor1d(data.y, 'float32');
async function bareFit(): Promise<number> {
  const started = performance.now();
  const history = await bareModel.fit(bareXs, bareYs, { epochs: train.epochs, batchSize: train.batchSize, shuffle: true, verbose: 0 });
  const loss = history.history['loss']?.at(-1);
  check(typeof loss === 'number' && Number.isFinite(loss), `the bare fit's loss is finite (${String(loss)})`);
  return performance.now() - started;
}

// ---- the candidate: a real client and coordinator ----
const bareMs: number[] = [];
const coordinatorRoundMs: number[] = [];
const clientRoundMs: number[] = [];
const coordinator = new Coordinator({
  model: initial,
  tokens: [TOKEN],
  rounds: ROUNDS,
  clientsPerRound: 1,
  minClients: 1,
  train,
  strategy: fedAvg({}),
  evaluate: async () => {
    bareMs.push(await bareFit());
    return { loss: Number.NaN, accuracy: Number.NaN };
  },
  onRound: (metrics) => {
    check(metrics.status === 'committed', `round ${metrics.round} commits (${metrics.status}: ${metrics.reason})`);
    coordinatorRoundMs.push(metrics.durationMs - bareMs.at(-1)!);
  },
});

const client = new ShoalClient({
  url: 'memory://bench',
  token: TOKEN,
  transport: memoryTransport(coordinator, [TOKEN]),
  data: { x: data.x, y: data.y, featureShape: data.featureShape },
  prepare: () => initBackend({ prefer: 'wasm' }),
});
let roundStartedAt = 0;
client.on('roundStart', () => (roundStartedAt = performance.now()));
client.on('roundEnd', (event) => {
  if (event.status === 'sent') clientRoundMs.push(performance.now() - roundStartedAt);
});
client.on('error', ({ error }) => console.error('client error:', error));

const numTensorsBefore = tf.memory().numTensors;
const clientDone = client.run();
const summary = await coordinator.run();
await clientDone;
check(summary.rounds.length === ROUNDS && clientRoundMs.length === ROUNDS, `${ROUNDS} rounds ran (${summary.rounds.length}) and the client sent ${ROUNDS} updates (${clientRoundMs.length})`);
check(tf.memory().numTensors === numTensorsBefore, `the rounds leave numTensors unchanged (${numTensorsBefore} before, ${tf.memory().numTensors} after)`);
tf.dispose([bareXs, bareYs]);
bareOptimizer.dispose();
bareModel.dispose();

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const measured = (xs: readonly number[]) => xs.slice(WARMUP_ROUNDS);
const bare = median(measured(bareMs));
// bareMs[i] ran right after round i (index 0 = round 1), so round i sits between bareMs[i − 1] and bareMs[i].
const pairedRatios = (roundMs: readonly number[]) =>
  roundMs
    .map((ms, i) => (i === 0 ? Number.NaN : ms / ((bareMs[i - 1]! + bareMs[i]!) / 2)))
    .slice(WARMUP_ROUNDS)
    .sort((a, b) => a - b);
const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const spread = (sorted: readonly number[]) => `p25–p75 ${quantile(sorted, 0.25).toFixed(2)}–${quantile(sorted, 0.75).toFixed(2)}`;
const setup = `${MODEL} on ${EXAMPLES} MNIST examples, E=${train.epochs} B=${train.batchSize}, ${backend.name}, ${ROUNDS - WARMUP_ROUNDS} rounds after ${WARMUP_ROUNDS} warm-up`;
report(
  `full round (coordinator durationMs) vs bare model.fit, ${setup}`,
  median(pairedRatios(coordinatorRoundMs)),
  `median of per-round ratios, ${spread(pairedRatios(coordinatorRoundMs))}; medians: round ${median(measured(coordinatorRoundMs)).toFixed(1)} ms, bare fit ${bare.toFixed(1)} ms`,
  { op: '<=', value: 1.15 },
);
report(
  'client round (roundStart → update sent) vs bare model.fit',
  median(pairedRatios(clientRoundMs)),
  `median of per-round ratios, ${spread(pairedRatios(clientRoundMs))}; medians: client ${median(measured(clientRoundMs)).toFixed(1)} ms, bare fit ${bare.toFixed(1)} ms`,
  { op: '<=', value: 1.15 },
);

// ---- where the difference goes: each fixed per-round step timed on its own ----
// These are the steps a round adds around `fit`; their sum over the bare fit is a load-insensitive
// estimate of the overhead (each step is short, so its median is rarely hit by a load spike).
const probeModel = await buildModel(initial.descriptor.topology);
const weights = initial.weights;
const manifest = initial.descriptor.manifest;
const d = weights.length;
const trainFrame = encodeFrame({ type: 'train', round: 1, modelVersion: 'run:0', weights, config: train, deadlineMs: 60_000 });
const updateFrame = encodeFrame({ type: 'update', round: 1, modelVersion: 'run:0', numExamples: EXAMPLES, delta: weights, metrics: { loss: 1, accuracy: 0.5, trainMs: 1 } });
const steps: [string, () => unknown][] = [
  ['coordinator: encode train (with weights)', () => encodeFrame({ type: 'train', round: 1, modelVersion: 'run:0', weights, config: train, deadlineMs: 60_000 })],
  ['client: validate + decode train', () => decodeCoordinatorMessage(trainFrame, { numParams: d })],
  ['client: writeWeights (setWeights)', () => writeWeights(probeModel, manifest, weights)],
  ['client: data → tensors (x, y) + dispose', () => tf.dispose([tf.tensor(data.x, [data.length, ...data.featureShape]), tf.tensor1d(data.y, 'float32')])],
  ['client: compile with a fresh optimizer', () => {
    const optimizer = tf.train.sgd(train.learningRate);
    probeModel.compile({ optimizer, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    optimizer.dispose();
  }],
  ['client: readWeights', () => readWeights(probeModel)],
  ['client: delta = trained − global', () => {
    const delta = new Float32Array(d);
    for (let i = 0; i < d; i++) delta[i] = weights[i]! - weights[i]!;
    return delta;
  }],
  ['client: encode update', () => encodeFrame({ type: 'update', round: 1, modelVersion: 'run:0', numExamples: EXAMPLES, delta: weights, metrics: { loss: 1, accuracy: 0.5, trainMs: 1 } })],
  ['transport: two frame copies (memoryTransport)', () => [trainFrame.slice(), updateFrame.slice()]],
  ['coordinator: validate + decode update', () => decodeClientMessage(updateFrame, { numParams: d })],
  ['coordinator: FedAvg fold + step', () => {
    const strategy = fedAvg({});
    const sum = new WeightedSum(d);
    sum.add(weights, EXAMPLES);
    return strategy.step(weights, sum.result(), strategy.initialState(d), 1);
  }],
];
let totalMs = 0;
const parts: string[] = [];
for (const [name, step] of steps) {
  const { medianMs } = await time(step, 150, 5);
  totalMs += medianMs;
  parts.push(`${name} ${medianMs.toFixed(2)} ms`);
}
probeModel.dispose();
report('fixed per-round steps (sum, timed one by one) / bare model.fit', totalMs / bare, `${totalMs.toFixed(1)} ms of ${bare.toFixed(1)} ms: ${parts.join('; ')}`);
