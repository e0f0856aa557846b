/**
 * Convolution gradient kernels for tfjs 4.22's WASM backend.
 *
 * The WASM backend ships `Conv2D` (XNNPACK, fast) but no `Conv2DBackpropFilter`, so a CNN cannot
 * `fit` there, and its `Conv2DBackpropInput` is a plain C++ loop. Both gradients are convolutions
 * themselves, so we express them with the backend's own `Conv2D`, `Transpose`, `Reverse`, `PadV2`,
 * `Reshape` and `Slice` kernels, called straight from the kernel registry (no engine round trip,
 * so no tensors are tracked; every intermediate is released with `backend.disposeData`).
 *
 * Shapes below are NHWC: x [N, H, W, Cin], filter [kh, kw, Cin, Cout], dy [N, Ho, Wo, Cout].
 */
import {
  backend_util,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  getKernel,
  PadV2,
  registerKernel,
  Reshape,
  Reverse,
  Slice,
  Transpose,
  unregisterKernel,
} from '@tensorflow/tfjs';
import type {
  Conv2DBackpropFilterAttrs,
  Conv2DBackpropInputAttrs,
  KernelBackend,
  KernelConfig,
  KernelFunc,
  NamedAttrMap,
  NamedTensorInfoMap,
  TensorInfo,
} from '@tensorflow/tfjs';

const BACKEND = 'wasm';

/**
 * Marks the kernel configs Shoal registered. `Symbol.for` (not a module-local symbol) so a second
 * copy of this module, e.g. after a test runner resets modules, still recognises them.
 */
const SHOAL_KERNEL = Symbol.for('shoal.wasm-conv-gradient');

type Shape4D = [number, number, number, number];
type ExplicitPadding = [[number, number], [number, number], [number, number], [number, number]];
type MarkedConfig = KernelConfig & { [SHOAL_KERNEL]?: true };

/**
 * Registers Shoal's `Conv2DBackpropFilter` and `Conv2DBackpropInput` kernels for the `wasm` backend.
 * Idempotent. Call it after `@tensorflow/tfjs-backend-wasm` has been imported (that import registers
 * the kernels these are built from, and would overwrite an earlier `Conv2DBackpropInput`).
 * The stock `Conv2DBackpropInput` stays as the fallback for attributes the fast path does not cover.
 * @throws Error when the WASM backend's kernels are not registered yet.
 */
export function registerWasmConvGradients(): void {
  const isShoals = (kernelName: string) => (getKernel(kernelName, BACKEND) as MarkedConfig | undefined)?.[SHOAL_KERNEL] === true;
  // Both, not just one: importing the WASM backend again would put its stock Conv2DBackpropInput back.
  if (isShoals(Conv2DBackpropFilter) && isShoals(Conv2DBackpropInput)) return;
  for (const needed of [Conv2D, Transpose, Reverse, PadV2, Reshape, Slice]) {
    if (getKernel(needed, BACKEND) === undefined) {
      throw new Error(
        `the wasm backend has no ${needed} kernel registered; import '@tensorflow/tfjs-backend-wasm' before registerWasmConvGradients()`,
      );
    }
  }
  const stockInput = getKernel(Conv2DBackpropInput, BACKEND) as MarkedConfig | undefined;
  const fallback = stockInput?.[SHOAL_KERNEL] ? undefined : stockInput;

  const filterConfig: MarkedConfig = {
    kernelName: Conv2DBackpropFilter,
    backendName: BACKEND,
    kernelFunc: conv2DBackpropFilter as unknown as KernelFunc,
    [SHOAL_KERNEL]: true,
  };
  const inputConfig: MarkedConfig = {
    kernelName: Conv2DBackpropInput,
    backendName: BACKEND,
    // The stock kernel binds its WASM function in its setupFunc, which tfjs runs when the backend
    // initialises; it must still run for the fallback once our config replaces the stock one.
    setupFunc: (backend) => fallback?.setupFunc?.(backend),
    kernelFunc: ((args: KernelArgs) => conv2DBackpropInput(args, fallback)) as unknown as KernelFunc,
    [SHOAL_KERNEL]: true,
  };
  if (getKernel(Conv2DBackpropFilter, BACKEND) !== undefined) unregisterKernel(Conv2DBackpropFilter, BACKEND);
  if (stockInput !== undefined) unregisterKernel(Conv2DBackpropInput, BACKEND);
  registerKernel(filterConfig);
  registerKernel(inputConfig);
}

interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}

/** Runs one of the backend's own kernels; every output it returns is owned by `scratch`. */
class Scratch {
  private readonly owned: TensorInfo[] = [];
  constructor(private readonly backend: KernelBackend) {}

  run(kernelName: string, inputs: NamedTensorInfoMap, attrs: object): TensorInfo {
    const kernel = getKernel(kernelName, BACKEND);
    if (kernel === undefined) throw new Error(`the wasm backend has no ${kernelName} kernel registered`);
    const output = kernel.kernelFunc({ inputs, backend: this.backend, attrs: attrs as NamedAttrMap });
    if (Array.isArray(output)) throw new Error(`wasm ${kernelName} returned ${output.length} outputs; expected one`);
    this.owned.push(output);
    return output;
  }

  /** Hands `result` to the caller (it is not disposed) and releases every other intermediate. */
  release(result: TensorInfo): TensorInfo {
    for (const info of this.owned) {
      if (info !== result) this.backend.disposeData(info.dataId);
    }
    this.owned.length = 0;
    return result;
  }

  /** Releases every intermediate (on error). */
  releaseAll(): void {
    for (const info of this.owned) this.backend.disposeData(info.dataId);
    this.owned.length = 0;
  }
}

function withScratch(backend: KernelBackend, body: (scratch: Scratch) => TensorInfo): TensorInfo {
  const scratch = new Scratch(backend);
  let result: TensorInfo;
  try {
    result = body(scratch);
  } catch (error) {
    scratch.releaseAll();
    throw error;
  }
  return scratch.release(result);
}

function conv2d(scratch: Scratch, x: TensorInfo, filter: TensorInfo, dilations: [number, number], pad: ExplicitPadding): TensorInfo {
  return scratch.run(Conv2D, { x, filter }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations, dimRoundingMode: undefined });
}

function unsupported(kernel: string, attrs: { dataFormat: string; dimRoundingMode?: string }): string | undefined {
  if (attrs.dataFormat !== 'NHWC') return `${kernel} on wasm supports dataFormat 'NHWC' only, got '${attrs.dataFormat}'`;
  if (attrs.dimRoundingMode !== undefined) return `${kernel} on wasm does not support dimRoundingMode ('${attrs.dimRoundingMode}')`;
  const dilations = (attrs as { dilations?: number | [number, number] }).dilations;
  if (dilations !== undefined && [dilations].flat().some((d) => d !== 1)) {
    return `${kernel} on wasm does not support dilations > 1 (got ${String(dilations)}); tfjs has no gradient for dilated conv2d either`;
  }
  return undefined;
}

/**
 * dW[a, b, ci, co] = Σ_{n, i, j} xpad[n, i·sh + a, j·sw + b, ci] · dy[n, i, j, co].
 * Read with Cin as the batch and N as the channels, that is a stride-1 conv2d of
 * transpose(x) [Cin, H, W, N] with transpose(dy) [Ho, Wo, N, Cout] dilated by the stride:
 * the result is [Cin, kh, kw, Cout] (possibly a few extra rows/columns to drop), transposed back.
 */
function conv2DBackpropFilter({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  const problem = unsupported(Conv2DBackpropFilter, { ...(attrs as object), dataFormat, dimRoundingMode });
  if (problem !== undefined) throw new Error(problem);

  const info = backend_util.computeConv2DInfo(x.shape as Shape4D, filterShape, strides, 1, pad, dimRoundingMode);
  const { inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth, inChannels, outChannels } = info;
  const { top, left } = info.padInfo;
  // Extra padding past the input only ever meets zeros, so pad just enough for a kh × kw result.
  const bottom = Math.max(0, filterHeight + (outHeight - 1) * strideHeight - inHeight - top);
  const right = Math.max(0, filterWidth + (outWidth - 1) * strideWidth - inWidth - left);

  return withScratch(backend, (scratch) => {
    const xT = scratch.run(Transpose, { x }, { perm: [3, 1, 2, 0] });
    const dyT = scratch.run(Transpose, { x: dy }, { perm: [1, 2, 0, 3] });
    let grad = conv2d(scratch, xT, dyT, [strideHeight, strideWidth], [[0, 0], [top, bottom], [left, right], [0, 0]]);
    const [, gotHeight, gotWidth] = grad.shape;
    if (gotHeight !== filterHeight || gotWidth !== filterWidth) {
      grad = scratch.run(Slice, { x: grad }, { begin: [0, 0, 0, 0], size: [inChannels, filterHeight, filterWidth, outChannels] });
    }
    return scratch.run(Transpose, { x: grad }, { perm: [1, 2, 0, 3] });
  });
}

/**
 * dx = the transposed convolution of dy: dy dilated by the stride (zeros between rows/columns),
 * padded by kh − 1 − padTop (left: kw − 1 − padLeft), convolved at stride 1 with the filter
 * reversed spatially and with in/out channels swapped. Falls back to the stock kernel for padding
 * this form cannot express.
 */
function conv2DBackpropInput({ inputs, backend, attrs }: KernelArgs, fallback: KernelConfig | undefined): TensorInfo {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as Conv2DBackpropInputAttrs;
  const useFallback = (why: string): TensorInfo => {
    if (fallback === undefined) throw new Error(why);
    const output = fallback.kernelFunc({ inputs, backend, attrs: attrs ?? {} });
    if (Array.isArray(output)) throw new Error(`wasm ${Conv2DBackpropInput} returned ${output.length} outputs; expected one`);
    return output;
  };
  const problem = unsupported(Conv2DBackpropInput, { ...(attrs as object), dataFormat, dimRoundingMode });
  if (problem !== undefined) return useFallback(problem);

  const info = backend_util.computeConv2DInfo(inputShape, filter.shape as Shape4D, strides, 1, pad, dimRoundingMode);
  const { batchSize, inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth, outChannels } = info;
  const { top, left } = info.padInfo;
  const dilatedHeight = (outHeight - 1) * strideHeight + 1;
  const dilatedWidth = (outWidth - 1) * strideWidth + 1;
  const padTop = filterHeight - 1 - top;
  const padLeft = filterWidth - 1 - left;
  const padBottom = inHeight + filterHeight - 1 - padTop - dilatedHeight;
  const padRight = inWidth + filterWidth - 1 - padLeft - dilatedWidth;
  if (Math.min(padTop, padLeft, padBottom, padRight) < 0) {
    return useFallback(`${Conv2DBackpropInput} on wasm: padding ${JSON.stringify(pad)} is larger than the filter`);
  }

  return withScratch(backend, (scratch) => {
    let spread = dy;
    if (strideHeight > 1 || strideWidth > 1) {
      // [N, Ho, Wo, C] → [N, Ho, 1, Wo, 1, C] → zero-pad to [N, Ho, sh, Wo, sw, C] → [N, Ho·sh, Wo·sw, C],
      // then drop the zeros after the last row/column.
      const split = scratch.run(Reshape, { x: dy }, { shape: [batchSize, outHeight, 1, outWidth, 1, outChannels] });
      const padded = scratch.run(PadV2, { x: split }, {
        paddings: [[0, 0], [0, 0], [0, strideHeight - 1], [0, 0], [0, strideWidth - 1], [0, 0]],
        constantValue: 0,
      });
      const merged = scratch.run(Reshape, { x: padded }, { shape: [batchSize, outHeight * strideHeight, outWidth * strideWidth, outChannels] });
      spread = scratch.run(Slice, { x: merged }, { begin: [0, 0, 0, 0], size: [batchSize, dilatedHeight, dilatedWidth, outChannels] });
    }
    const swapped = scratch.run(Transpose, { x: filter }, { perm: [0, 1, 3, 2] });
    const flipped = scratch.run(Reverse, { x: swapped }, { dims: [0, 1] });
    return conv2d(scratch, spread, flipped, [1, 1], [[0, 0], [padTop, padBottom], [padLeft, padRight], [0, 0]]);
  });
}
