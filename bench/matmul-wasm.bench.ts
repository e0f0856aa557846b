// Shoal's WASM BatchMatMul fast path (packages/client/src/common/matmul-kernels.ts) against the
// stock tfjs 4.22 WASM kernel, measured in the same run, interleaved:
// - the kernel alone on the products of dense layers' backward passes (x [batch, in], W [in, out],
//   dy [batch, out]: dW = xᵀ · dy, dX = dy · Wᵀ), as speed-ups (stock ms / fast-path ms);
// - training throughput (ex/s) of the MLP, the 2NN and the McMahan CNN, one model each, switching
//   the registered kernel between steps, as ratios (fast path / stock).
// Every product gets fresh copies of its operands, as in training where each one is a new tensor
// every step: XNNPACK caches its packed right operand per tensor, so reusing tensors would flatter
// the fast path.
// Correctness (exit 1 on failure): every product equals the stock kernel's (within 10⁻⁴ of its
// largest value), and training losses stay finite. Quick mode trains on batches of 4.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { builtinTopology, createSeededRandom } from '@shoal/protocol';
import type { ModelTopology } from '@shoal/protocol';
import { registerWasmConvGradients } from '../packages/client/src/common/conv-kernels.js';
import { registerWasmMatMulFastPath } from '../packages/client/src/common/matmul-kernels.js';
import { buildModel } from '../packages/client/src/common/model.js';
import { check, compare, report, sized, worstDifference } from './lib.js';

/** Makes `config` the registered wasm BatchMatMul. */
function useKernel(config: tf.KernelConfig): void {
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel(config);
}

interface Product {
  readonly name: string;
  readonly a: number[];
  readonly b: number[];
  readonly transposeA: boolean;
  readonly transposeB: boolean;
  /** Least acceptable speed-up. Default 1: the fast path must never be slower. */
  readonly minSpeedUp?: number;
}

/** dW and dX of a dense layer `inputs` → `units` on a batch of `batch`. */
function denseBackward(layer: string, batch: number, inputs: number, units: number, minSpeedUp?: number): Product[] {
  return [
    { name: `${layer} dW = xᵀ·dy [${batch},${inputs}]ᵀ·[${batch},${units}]`, a: [batch, inputs], b: [batch, units], transposeA: true, transposeB: false, minSpeedUp },
    { name: `${layer} dX = dy·Wᵀ [${batch},${units}]·[${inputs},${units}]ᵀ`, a: [batch, units], b: [inputs, units], transposeA: false, transposeB: true, minSpeedUp },
  ];
}

const PRODUCTS: Product[] = [
  ...denseBackward('CNN dense 3136→512', 32, 3136, 512),
  ...denseBackward('CNN output 512→10', 32, 512, 10),
  ...denseBackward('2NN layer 1 784→200', 20, 784, 200),
  ...denseBackward('MLP output 128→10', 32, 128, 10),
  // Small enough that the fast path keeps the stock loop: ~1, less only its few checks (~0.1 µs
  // of ~3 µs) and timer noise.
  ...denseBackward('tiny 16→4', 8, 16, 4, 0.9),
];

async function benchKernel(product: Product, stock: tf.KernelConfig, fast: tf.KernelConfig): Promise<void> {
  const backend = tf.engine().backend;
  const a = tf.randomNormal(product.a);
  const b = tf.randomNormal(product.b);
  const identity = tf.getKernel('Identity', 'wasm')!;
  const copy = (x: tf.TensorInfo) => identity.kernelFunc({ inputs: { x }, backend, attrs: {} }) as tf.TensorInfo;
  const attrs = { transposeA: product.transposeA, transposeB: product.transposeB };
  const valuesOf = (kernel: tf.KernelConfig) => {
    const out = tf.engine().makeTensorFromTensorInfo(kernel.kernelFunc({ inputs: { a, b }, backend, attrs }) as tf.TensorInfo);
    const values = out.dataSync().slice();
    out.dispose();
    return values;
  };
  const [mine, theirs] = [valuesOf(fast), valuesOf(stock)];
  const { worst, largest } = worstDifference(mine, theirs);
  check(worst <= 1e-4 * largest, `BatchMatMul ${product.name}: the fast path gives the stock result (worst difference ${worst}, largest value ${largest})`);
  const once = (kernel: tf.KernelConfig) => {
    const [freshA, freshB] = [copy(a), copy(b)];
    const out = kernel.kernelFunc({ inputs: { a: freshA, b: freshB }, backend, attrs }) as tf.TensorInfo;
    for (const info of [freshA, freshB, out]) backend.disposeData(info.dataId);
  };
  // Products of a few microseconds are repeated within each sample, to about 1 ms, so timer
  // resolution and jitter do not swamp them.
  const start = performance.now();
  for (let i = 0; i < 10; i++) once(stock);
  const repeat = Math.min(1_000, Math.max(1, Math.round(10 / (performance.now() - start))));
  const run = (kernel: tf.KernelConfig) => () => {
    for (let i = 0; i < repeat; i++) once(kernel);
  };
  const { candidate, baseline } = await compare(run(fast), run(stock), 3, 150);
  const [fastMs, stockMs] = [candidate.medianMs / repeat, baseline.medianMs / repeat];
  report(`BatchMatMul ${product.name}, fast path vs stock (speed-up)`, stockMs / fastMs,
    `fast ${fastMs.toFixed(4)} ms, stock ${stockMs.toFixed(4)} ms per product`, { op: '>=', value: product.minSpeedUp ?? 1 });
  tf.dispose([a, b]);
}

async function benchTraining(name: string, topology: ModelTopology, inputShape: number[], batch: number, stock: tf.KernelConfig, fast: tf.KernelConfig): Promise<void> {
  const model = await buildModel(topology);
  model.compile({ optimizer: tf.train.sgd(0.01), loss: 'sparseCategoricalCrossentropy' });
  const random = createSeededRandom(42);
  const size = inputShape.reduce((x, y) => x * y, 1);
  const xs = tf.tensor(Float32Array.from({ length: batch * size }, () => random.next()), [batch, ...inputShape]);
  const ys = tf.tensor1d(Float32Array.from({ length: batch }, () => random.nextInt(10)));
  let lastLoss = 0;
  const step = (kernel: tf.KernelConfig) => async () => {
    useKernel(kernel);
    const loss = await model.trainOnBatch(xs, ys);
    lastLoss = Array.isArray(loss) ? loss[0]! : loss;
  };
  const { candidate, baseline } = await compare(step(fast), step(stock), 5, 300);
  const rate = (ms: number) => (batch * 1000) / ms;
  report(`${name} training ex/s on WASM, fast path vs stock BatchMatMul`, rate(candidate.medianMs) / rate(baseline.medianMs),
    `fast ${rate(candidate.medianMs).toFixed(0)} ex/s, stock ${rate(baseline.medianMs).toFixed(0)} ex/s (batch ${batch})`, { op: '>=', value: 1 });
  check(Number.isFinite(lastLoss), `${name}: the training loss stays finite (${lastLoss})`);
  tf.dispose([xs, ys]);
  model.optimizer.dispose();
  model.dispose();
  useKernel(fast);
}

await tf.setBackend('wasm');
registerWasmConvGradients(); // the CNN cannot train on WASM without them
const stock = tf.getKernel('BatchMatMul', 'wasm')!;
registerWasmMatMulFastPath();
const fast = tf.getKernel('BatchMatMul', 'wasm')!;

for (const product of PRODUCTS) await benchKernel(product, stock, fast);
const batch = sized(32, 4);
await benchTraining('MLP 784-128-10', builtinTopology('mlp', [784], 10), [784], batch, stock, fast);
await benchTraining('2NN 784-200-200-10', builtinTopology('2nn', [784], 10), [784], batch, stock, fast);
await benchTraining('CNN (McMahan)', builtinTopology('cnn', [28, 28, 1], 10), [28, 28, 1], batch, stock, fast);
