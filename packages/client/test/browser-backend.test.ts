/**
 * initBrowserBackend run under Node: there is no WebGL here, which makes the fallback order
 * observable (WASM → WebGL → CPU). tfjs's engine and registries are shared by the whole file.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { ShoalError } from '@shoal/protocol';
import { initBrowserBackend, type WasmBackendModule } from '../src/browser/backend.js';

async function rejectionOf(promise: Promise<unknown>): Promise<ShoalError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ShoalError);
    return error as ShoalError;
  }
  return expect.fail('expected a rejection');
}

describe('initBrowserBackend', () => {
  it('importing the module selects no backend and loads no WASM backend', async () => {
    const before = tf.engine().backendName;
    await import('../src/browser/backend.js');
    expect(tf.engine().backendName).toBe(before);
    expect(tf.findBackendFactory('wasm')).toBeFalsy();
  });

  it('when WASM is unavailable it tries WebGL, then falls back to CPU, saying why', async () => {
    const wasmPathsSeen: unknown[] = [];
    // Stands in for a WASM backend module whose backend never registers (as when the module fails midway).
    const brokenWasm = async (): Promise<WasmBackendModule> => ({ setWasmPaths: (paths) => wasmPathsSeen.push(paths) });
    const choice = await initBrowserBackend({ importWasm: brokenWasm, wasmPaths: '/static/tfjs-wasm/' });
    expect(choice.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(choice.reason).toMatch(/wasm/i);
    expect(choice.reason).toMatch(/webgl/i);
    expect(wasmPathsSeen).toEqual(['/static/tfjs-wasm/']);
  });

  it('a failed import of the WASM module is a reason, not an error', async () => {
    const choice = await initBrowserBackend({ importWasm: () => Promise.reject(new Error('network down')) });
    expect(choice.name).toBe('cpu');
    expect(choice.reason).toContain('network down');
  });

  it('prefer throws INVALID_CONFIG when the preferred backend is unavailable', async () => {
    const webgl = await rejectionOf(initBrowserBackend({ prefer: 'webgl' }));
    expect(webgl.code).toBe('INVALID_CONFIG');
    expect(webgl.message).toContain("'webgl'");
    const wasm = await rejectionOf(initBrowserBackend({ prefer: 'wasm', importWasm: () => Promise.reject(new Error('blocked')) }));
    expect(wasm.code).toBe('INVALID_CONFIG');
    expect(wasm.message).toContain('blocked');
  });

  it('by default activates the real WASM backend with Shoal kernels, which trains a conv layer', async () => {
    const choice = await initBrowserBackend();
    expect(choice.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    // The stock WASM backend has no Conv2DBackpropFilter; Shoal registers it.
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')).toBeDefined();
    const before = tf.memory().numTensors;
    const gradient = tf.tidy(() => {
      const x = tf.ones([1, 4, 4, 1]) as tf.Tensor4D;
      const filter = tf.variable(tf.ones([2, 2, 1, 1]));
      const grads = tf.variableGrads(() => tf.conv2d(x, filter as tf.Tensor4D, 1, 'valid').sum() as tf.Scalar, [filter]);
      filter.dispose();
      return grads.grads[filter.name]!.dataSync();
    });
    expect([...gradient]).toEqual([9, 9, 9, 9]);
    expect(tf.memory().numTensors).toBe(before);
    expect((await initBrowserBackend({ prefer: 'cpu' })).name).toBe('cpu');
  });
});
