// Training throughput on the WASM backend (with Shoal's conv gradient kernels) against the stock
// pure-JS CPU backend, same model and same random data, in examples per second:
// - the McMahan et al. 2017 CNN on [28, 28, 1] (DESIGN §7: ~160 ex/s on WASM vs ~1 ex/s on CPU);
// - an MLP 784-128-10 (REFERENCES: ~6,300 vs ~1,600 ex/s);
// - Shoal's Conv2DBackpropInput against the stock WASM one on the CNN's second conv layer.
// The CPU backend trains the CNN at about one example per second, so it gets one warm-up example
// and one timed batch of 8; the WASM side times batches of 32.
// Correctness (exit 1 on failure): from the same weights on the same batch, WASM and CPU compute the
// same loss (within 10⁻³ relative) and every loss is finite; Shoal's Conv2DBackpropInput gives the
// stock kernel's result (within 10⁻⁴ of its largest value).
// Quick mode: a batch of 4 on WASM, one example on CPU (its first, warm-up included), a batch of 4 for the kernel.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { builtinTopology, createSeededRandom } from '@shoal/protocol';
import type { ModelTopology } from '@shoal/protocol';
import { registerWasmConvGradients } from '../packages/client/src/common/conv-kernels.js';
import { buildModel, readWeights, writeWeights, manifestOf } from '../packages/client/src/common/model.js';
import { QUICK, check, compare, report, sized, time, worstDifference } from './lib.js';

type Backend = 'wasm' | 'cpu';

interface Trainer {
  readonly model: tf.LayersModel;
  /** One optimizer step on `batch` examples; resolves with the loss (computed before the step). */
  step(batch: number): Promise<number>;
  dispose(): void;
}

function randomData(inputShape: readonly number[], count: number, numClasses: number, seed: number): { xs: tf.Tensor; ys: tf.Tensor } {
  const random = createSeededRandom(seed);
  const size = inputShape.reduce((a, b) => a * b, 1);
  const xs = tf.tensor(Float32Array.from({ length: count * size }, () => random.next()), [count, ...inputShape]);
  const ys = tf.tensor1d(Float32Array.from({ length: count }, () => random.nextInt(numClasses)));
  return { xs, ys };
}

/** A compiled model with its data on `backend`, starting from `initial` weights when given. */
async function makeTrainer(backend: Backend, topology: ModelTopology, inputShape: number[], maxBatch: number, initial?: Float32Array): Promise<Trainer> {
  await tf.setBackend(backend);
  const model = await buildModel(topology);
  if (initial) writeWeights(model, manifestOf(model), initial);
  model.compile({ optimizer: tf.train.sgd(0.01), loss: 'sparseCategoricalCrossentropy' });
  const { xs, ys } = randomData(inputShape, maxBatch, 10, 42);
  return {
    model,
    async step(batch) {
      // Each trainer's variables live on its own backend; switching is cheap once both are initialised.
      await tf.setBackend(backend);
      const [bx, by] = tf.tidy(() => [xs.slice(0, batch), ys.slice(0, batch)]);
      const loss = await model.trainOnBatch(bx!, by!);
      tf.dispose([bx!, by!]);
      return Array.isArray(loss) ? loss[0]! : loss;
    },
    dispose() {
      tf.dispose([xs, ys]);
      model.optimizer.dispose();
      model.dispose();
    },
  };
}

/** WASM and CPU from the same weights on the same batch: the same loss up to float32 summation order. */
function checkSameLoss(model: string, wasmLoss: number, cpuLoss: number): void {
  check(Number.isFinite(wasmLoss) && Math.abs(wasmLoss - cpuLoss) <= 1e-3 * Math.abs(cpuLoss), `${model}: WASM and CPU compute the same first loss (${wasmLoss} vs ${cpuLoss})`);
}

function exPerSecond(examples: number, ms: number): number {
  return (examples * 1000) / ms;
}

async function benchCnn(): Promise<void> {
  const inputShape = [28, 28, 1];
  const topology = builtinTopology('cnn', inputShape, 10);
  const [wasmBatch, cpuBatch] = [sized(32, 4), sized(8, 1)];
  // The same data on both (the first rows of one seeded set), so their first losses must agree.
  const wasm = await makeTrainer('wasm', topology, inputShape, wasmBatch);
  const cpu = await makeTrainer('cpu', topology, inputShape, wasmBatch, readWeights(wasm.model));

  const wasmFirstLoss = await wasm.step(1);
  const firstStart = performance.now();
  const cpuFirstLoss = await cpu.step(1); // also the CPU's warm-up
  let cpuMs = performance.now() - firstStart;
  checkSameLoss('CNN', wasmFirstLoss, cpuFirstLoss);
  const wasmTiming = await time(() => wasm.step(wasmBatch), 3_000, 5);
  // Quick mode times the CPU's first example (warm-up included) rather than spend another on it.
  if (!QUICK) {
    const start = performance.now();
    check(Number.isFinite(await cpu.step(cpuBatch)), 'CNN: the CPU loss stays finite while training');
    cpuMs = performance.now() - start;
  }
  check(Number.isFinite(await wasm.step(wasmBatch)), 'CNN: the WASM loss stays finite while training');

  const wasmRate = exPerSecond(wasmBatch, wasmTiming.medianMs);
  const cpuRate = exPerSecond(cpuBatch, cpuMs);
  report('CNN (McMahan) training ex/s, WASM + Shoal kernels vs stock CPU', wasmRate / cpuRate,
    `wasm ${wasmRate.toFixed(1)} ex/s (batch ${wasmBatch}, ${wasmTiming.samples} samples), cpu ${cpuRate.toFixed(2)} ex/s (1 batch of ${cpuBatch})`,
    { op: '>=', value: 20 });
  wasm.dispose();
  cpu.dispose();
}

async function benchMlp(): Promise<void> {
  const topology = builtinTopology('mlp', [784], 10);
  const wasm = await makeTrainer('wasm', topology, [784], 32);
  const cpu = await makeTrainer('cpu', topology, [784], 32, readWeights(wasm.model));
  checkSameLoss('MLP', await wasm.step(32), await cpu.step(32));
  const { candidate, baseline } = await compare(() => wasm.step(32), () => cpu.step(32), 5, 300);
  const wasmRate = exPerSecond(32, candidate.medianMs);
  const cpuRate = exPerSecond(32, baseline.medianMs);
  report('MLP 784-128-10 training ex/s, WASM vs CPU', wasmRate / cpuRate,
    `wasm ${wasmRate.toFixed(0)} ex/s, cpu ${cpuRate.toFixed(0)} ex/s (batch 32)`, { op: '>=', value: 2 });
  wasm.dispose();
  cpu.dispose();
}

/** Shoal's transposed-convolution Conv2DBackpropInput against the stock WASM loop, CNN layer 2 shapes. */
async function benchBackpropInput(stock: tf.KernelConfig): Promise<void> {
  await tf.setBackend('wasm');
  const ours = tf.getKernel('Conv2DBackpropInput', 'wasm');
  const batch = sized(32, 4);
  const dy = tf.randomNormal([batch, 14, 14, 64], 0, 1, 'float32', 1);
  const filter = tf.randomNormal([5, 5, 32, 64], 0, 1, 'float32', 2);
  const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: [batch, 14, 14, 32] };
  const result = (kernel: tf.KernelConfig) => {
    const dx = kernel.kernelFunc({ inputs: { dy, filter }, backend: tf.engine().backend, attrs }) as tf.TensorInfo;
    const values = tf.engine().makeTensorFromTensorInfo(dx);
    const data = values.dataSync().slice();
    values.dispose();
    return data;
  };
  const [mine, theirs] = [result(ours), result(stock)];
  const { worst, largest } = worstDifference(mine, theirs);
  check(worst <= 1e-4 * largest, `Conv2DBackpropInput: Shoal's kernel gives the stock result (worst difference ${worst}, largest value ${largest})`);
  const run = (kernel: tf.KernelConfig) => () => {
    const dx = kernel.kernelFunc({ inputs: { dy, filter }, backend: tf.engine().backend, attrs }) as tf.TensorInfo;
    tf.engine().backend.disposeData(dx.dataId);
  };
  const { candidate, baseline } = await compare(run(ours), run(stock), 5, 300);
  report(`Conv2DBackpropInput on WASM, Shoal vs stock (dy ${batch}×14×14×64, filter 5×5×32×64)`, baseline.medianMs / candidate.medianMs,
    `shoal ${candidate.medianMs.toFixed(1)} ms, stock ${baseline.medianMs.toFixed(1)} ms`, { op: '>=', value: 1 });
  tf.dispose([dy, filter]);
}

await tf.setBackend('wasm');
const stockBackpropInput = tf.getKernel('Conv2DBackpropInput', 'wasm');
registerWasmConvGradients();
await benchCnn();
await benchMlp();
await benchBackpropInput(stockBackpropInput);
