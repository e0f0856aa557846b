/**
 * A faster `BatchMatMul` for tfjs 4.22's WASM backend when an operand is transposed.
 *
 * The stock kernel sends a single matrix product (batch 1) to XNNPACK only when neither
 * `transposeA` nor `transposeB` is set; otherwise it runs a plain C++ triple loop, 2–40× slower
 * on dense-layer shapes.
 * A dense layer's backward pass is exactly that case: dW = matMul(x, dy, transposeA) and
 * dX = matMul(dy, W, transposeB). So we reorder the product, with the backend's own `Transpose`
 * kernel, into one XNNPACK can take, and call the stock kernel with both transposes off.
 *
 * XNNPACK repacks its right operand (K × N) on every call with a new tensor, which costs several
 * times a transpose per element, so the packed operand should be the small one. Two forms exist:
 * - direct: op(A) · op(B), transposing whichever input is flagged; packs op(B), K × N;
 * - swapped: C = (op(B)ᵀ · op(A)ᵀ)ᵀ; a flagged input is used as it is stored, the other is
 *   transposed, and so is the N × M product; packs op(A)ᵀ, K × M.
 * For dX = dy · Wᵀ (M = batch, N = fan-in) the swapped form packs dyᵀ instead of all of W.
 * A small cost model picks the stock loop, the direct or the swapped form per call. Our own
 * intermediates are released at once, and with them XNNPACK's packed copies; an input used as
 * XNNPACK's right operand keeps its packed copy until it is disposed, as with the stock kernel.
 *
 * Left to the stock kernel: products with more than one matrix (batch > 1), which never reach
 * XNNPACK and gain nothing from a transpose, non-float32 inputs, and tiny products where the
 * extra kernel calls cost more than the loop.
 *
 * Not wrapped: `_FusedMatMul`. It has the same slow loop for transposed operands, but tfjs-layers'
 * dense layer calls it only forward, without transposes; its gradients go through `BatchMatMul`.
 */
import { BatchMatMul, getKernel, registerKernel, Transpose, unregisterKernel } from '@tensorflow/tfjs';
import type { BatchMatMulAttrs, KernelBackend, KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';

const BACKEND = 'wasm';

/**
 * Marks the kernel config Shoal registered. `Symbol.for` (not a module-local symbol) so a second
 * copy of this module, e.g. after a test runner resets modules, still recognises it.
 */
const SHOAL_KERNEL = Symbol.for('shoal.wasm-matmul-fast-path');

type MarkedConfig = KernelConfig & { [SHOAL_KERNEL]?: true };

interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}

/**
 * Replaces the `wasm` backend's `BatchMatMul` with one that routes transposed products through
 * XNNPACK (see the module comment), falling back to the stock kernel, which it keeps, for
 * everything else. Results equal the stock kernel's up to float rounding.
 * Idempotent. Call it after `@tensorflow/tfjs-backend-wasm` has been imported (that import
 * registers the stock kernel, and importing it again puts the stock kernel back; calling this
 * again then re-installs the fast path).
 * @throws Error when the WASM backend's `BatchMatMul` or `Transpose` kernel is not registered yet.
 */
export function registerWasmMatMulFastPath(): void {
  const current = getKernel(BatchMatMul, BACKEND) as MarkedConfig | undefined;
  if (current?.[SHOAL_KERNEL] === true) return;
  for (const needed of [BatchMatMul, Transpose]) {
    if (getKernel(needed, BACKEND) === undefined) {
      throw new Error(
        `the wasm backend has no ${needed} kernel registered; import '@tensorflow/tfjs-backend-wasm' before registerWasmMatMulFastPath()`,
      );
    }
  }
  const stock = current!;
  const config: MarkedConfig = {
    kernelName: BatchMatMul,
    backendName: BACKEND,
    // The stock kernel binds its WASM function in its setupFunc, which tfjs runs when the backend
    // initialises; it must still run once our config has replaced the stock one.
    setupFunc: (backend) => stock.setupFunc?.(backend),
    kernelFunc: ((args: KernelArgs) => batchMatMul(args, stock)) as unknown as KernelFunc,
    [SHOAL_KERNEL]: true,
  };
  unregisterKernel(BatchMatMul, BACKEND);
  registerKernel(config);
}

type Plan = 'stock' | 'direct' | 'swapped';

/**
 * Rough costs in nanoseconds, fitted on tfjs 4.22 WASM (SIMD, one thread, 2-core x86) over
 * products from 4×4×4 to 3136×32×512 with fresh operands each call, as in training where every
 * operand is a new tensor each step; only their ratios matter. On that grid the plan never
 * picked a form slower than the stock kernel, and at worst one 1.5× slower than the best form.
 * The stock loop costs ~1.6 ns per multiply-add at best (transposeB: both operands read
 * contiguously) and up to ~2.7 (transposeA); taking the best case keeps the stock kernel
 * whenever the reordered product is not clearly cheaper, which for cubes is up to ~16×16×16.
 */
const COST_NS = {
  stockPerMac: 1.6,
  xnnPerMac: 0.2,
  /** XNNPACK packs (copies, transposed) its right operand for every tensor it has not seen. */
  packPerElement: 7.5,
  transposePerElement: 1.5,
  /** Each extra kernel call (and XNNPACK's operator set-up): JS glue, allocation. */
  perCall: 4_000,
} as const;

function transposeCost(elements: number): number {
  return COST_NS.perCall + COST_NS.transposePerElement * elements;
}

function xnnCost(packed: number, macs: number): number {
  return COST_NS.perCall + COST_NS.packPerElement * packed + COST_NS.xnnPerMac * macs;
}

/** op(A) [m, k] · op(B) [k, n]: which way is cheapest. */
function plan(m: number, k: number, n: number, transposeA: boolean, transposeB: boolean): Plan {
  const macs = m * k * n;
  const direct = (transposeA ? transposeCost(m * k) : 0) + (transposeB ? transposeCost(k * n) : 0) + xnnCost(k * n, macs);
  const swapped = (transposeA ? 0 : transposeCost(m * k)) + (transposeB ? 0 : transposeCost(k * n)) + xnnCost(k * m, macs) + transposeCost(m * n);
  const stock = COST_NS.stockPerMac * macs;
  if (stock <= Math.min(direct, swapped)) return 'stock';
  return direct <= swapped ? 'direct' : 'swapped';
}

/** One matrix: rank ≥ 2 with every leading (batch) dimension 1. */
function isSingleMatrix(shape: readonly number[]): boolean {
  if (shape.length < 2) return false;
  for (let axis = 0; axis < shape.length - 2; axis++) {
    if (shape[axis] !== 1) return false;
  }
  return true;
}

function planFor(a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): Plan {
  if (!(transposeA || transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32') return 'stock';
  if (!isSingleMatrix(a.shape) || !isSingleMatrix(b.shape)) return 'stock';
  const aRows = a.shape[a.shape.length - 2]!;
  const aCols = a.shape[a.shape.length - 1]!;
  const bRows = b.shape[b.shape.length - 2]!;
  const bCols = b.shape[b.shape.length - 1]!;
  const m = transposeA ? aCols : aRows;
  const k = transposeA ? aRows : aCols;
  const n = transposeB ? bRows : bCols;
  if (k !== (transposeB ? bCols : bRows)) return 'stock'; // it reports the mismatch
  return plan(m, k, n, transposeA, transposeB);
}

const UNTRANSPOSED = { transposeA: false, transposeB: false };

// Plain functions, no per-call closures: this runs for every matMul, including tiny ones.
function batchMatMul(args: KernelArgs, stock: KernelConfig): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = attrs as unknown as BatchMatMulAttrs;
  const chosen = planFor(a, b, transposeA, transposeB);
  if (chosen === 'stock') return oneOutput(BatchMatMul, stock.kernelFunc(args as Parameters<KernelFunc>[0]));

  const scratch: TensorInfo[] = [];
  try {
    if (chosen === 'direct') {
      const left = transposeA ? owned(scratch, transposeLastTwo(a, backend)) : a;
      const right = transposeB ? owned(scratch, transposeLastTwo(b, backend)) : b;
      return runStock(stock, left, right, backend);
    }
    // Cᵀ = op(B)ᵀ · op(A)ᵀ, where op(B)ᵀ is B itself when transposeB is set, and likewise for A.
    const left = transposeB ? b : owned(scratch, transposeLastTwo(b, backend));
    const right = transposeA ? a : owned(scratch, transposeLastTwo(a, backend));
    const productTransposed = owned(scratch, runStock(stock, left, right, backend));
    return transposeLastTwo(productTransposed, backend);
  } finally {
    for (const info of scratch) backend.disposeData(info.dataId);
  }
}

function runStock(stock: KernelConfig, a: TensorInfo, b: TensorInfo, backend: KernelBackend): TensorInfo {
  return oneOutput(BatchMatMul, stock.kernelFunc({ inputs: { a, b }, backend, attrs: UNTRANSPOSED }));
}

/** Adds `info` to the intermediates to release, and returns it. */
function owned(scratch: TensorInfo[], info: TensorInfo): TensorInfo {
  scratch.push(info);
  return info;
}

function oneOutput(kernelName: string, output: TensorInfo | TensorInfo[]): TensorInfo {
  if (Array.isArray(output)) throw new Error(`wasm ${kernelName} returned ${output.length} outputs; expected one`);
  return output;
}

function transposeLastTwo(x: TensorInfo, backend: KernelBackend): TensorInfo {
  const rank = x.shape.length;
  const perm = Array.from({ length: rank }, (_, axis) => (axis < rank - 2 ? axis : 2 * rank - 3 - axis));
  const kernel = getKernel(Transpose, BACKEND);
  if (kernel === undefined) throw new Error(`the wasm backend has no ${Transpose} kernel registered`);
  return oneOutput(Transpose, kernel.kernelFunc({ inputs: { x }, backend, attrs: { perm } }));
}
