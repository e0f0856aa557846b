import { afterEach, describe, expect, it, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type * as BackendModule from '../src/node/backend.js';

/**
 * Each test loads a fresh copy of backend.ts, so the idempotency memo of one test does not answer
 * the next. tfjs itself (engine, backend and kernel registries) is shared by the whole file.
 */
async function freshBackendModule(): Promise<typeof BackendModule> {
  vi.resetModules();
  return import('../src/node/backend.js');
}

function moduleNotFound(): Promise<never> {
  const error = Object.assign(new Error("Cannot find package '@tensorflow/tfjs-node' imported from /app/index.js"), {
    code: 'ERR_MODULE_NOT_FOUND',
  });
  return Promise.reject(error);
}

/** Stands in for tfjs-node: registers a 'tensorflow' backend that is really the CPU backend. */
async function fakeTfjsNode(): Promise<unknown> {
  const cpu = tf.findBackend('cpu');
  const CpuBackend = cpu.constructor as new () => tf.KernelBackend;
  tf.registerBackend('tensorflow', () => new CpuBackend());
  for (const kernel of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...kernel, backendName: 'tensorflow' });
  return {};
}

function removeFakeTfjsNode(): void {
  if (tf.findBackendFactory('tensorflow') == null) return;
  for (const kernel of tf.getKernelsForBackend('tensorflow')) tf.unregisterKernel(kernel.kernelName, 'tensorflow');
  tf.removeBackend('tensorflow');
}

describe('importing the backend module', () => {
  it('selects no backend as a side effect', async () => {
    vi.resetModules();
    const before = tf.engine().backendName;
    await import('../src/node/backend.js');
    expect(tf.engine().backendName).toBe(before);
    // Not even the WASM backend is registered until initBackend() runs (registering it would
    // change which backend tfjs picks by default).
    expect(tf.engine().registryFactory).not.toHaveProperty('wasm');
  });
});

describe('initBackend', () => {
  afterEach(() => {
    removeFakeTfjsNode();
  });

  it('with the real importer here picks WASM, because tfjs-node is not installed', async () => {
    const { initBackend } = await freshBackendModule();
    const choice = await initBackend();
    expect(choice.name).toBe('wasm');
    expect(choice.reason).toMatch(/@tensorflow\/tfjs-node is not installed/);
    expect(tf.getBackend()).toBe('wasm');
    // The WASM backend found its .wasm binary by itself and runs ops.
    const sum = tf.tidy(() => tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).arraySync());
    expect(sum).toEqual([4, 6]);
    // …and CNNs can train there: the filter-gradient kernel tfjs 4.22 lacks is registered.
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  });

  it('falls back to WASM when the tfjs-node import throws module-not-found', async () => {
    const { initBackend } = await freshBackendModule();
    await tf.setBackend('cpu');
    const choice = await initBackend({ importNative: moduleNotFound });
    expect(choice).toEqual({ name: 'wasm', reason: expect.stringMatching(/tfjs-node is not installed/) });
    expect(tf.getBackend()).toBe('wasm');
  });

  it('reports a tfjs-node that is installed but broken differently from a missing one', async () => {
    const { initBackend } = await freshBackendModule();
    const choice = await initBackend({ importNative: () => Promise.reject(new Error('libtensorflow.so: cannot open shared object file')) });
    expect(choice.name).toBe('wasm');
    expect(choice.reason).toMatch(/failed to load \(libtensorflow\.so/);
  });

  it("picks 'tensorflow' when tfjs-node loads and registers its backend", async () => {
    const { initBackend } = await freshBackendModule();
    const choice = await initBackend({ importNative: fakeTfjsNode });
    expect(choice.name).toBe('tensorflow');
    expect(tf.getBackend()).toBe('tensorflow');
    const product = tf.tidy(() => tf.mul(tf.tensor1d([2, 3]), tf.tensor1d([4, 5])).arraySync());
    expect(product).toEqual([8, 15]);
  });

  it('does not pick a tfjs-node that loads without registering a backend', async () => {
    const { initBackend } = await freshBackendModule();
    const choice = await initBackend({ importNative: () => Promise.resolve({}) });
    expect(choice.name).toBe('wasm');
    expect(choice.reason).toMatch(/registered no 'tensorflow' backend/);
  });

  it('falls back to CPU when WASM cannot load', async () => {
    const { initBackend } = await freshBackendModule();
    const choice = await initBackend({
      importNative: moduleNotFound,
      importWasm: () => Promise.reject(new Error('WebAssembly is disabled')),
    });
    expect(choice.name).toBe('cpu');
    expect(choice.reason).toMatch(/tfjs-node is not installed; the WASM backend failed to load \(WebAssembly is disabled\)/);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('is idempotent: a second call returns the active choice without loading anything', async () => {
    const { initBackend } = await freshBackendModule();
    const first = await initBackend({ importNative: moduleNotFound });
    const importNative = vi.fn(fakeTfjsNode);
    const second = await initBackend({ importNative });
    expect(second).toBe(first);
    expect(importNative).not.toHaveBeenCalled();
    expect(tf.getBackend()).toBe('wasm');
  });

  it('selects again when the app switched backends since', async () => {
    const { initBackend } = await freshBackendModule();
    await initBackend({ importNative: moduleNotFound });
    await tf.setBackend('cpu');
    const again = await initBackend({ importNative: moduleNotFound });
    expect(again.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it('honours prefer, even over a faster backend', async () => {
    const { initBackend } = await freshBackendModule();
    const choice = await initBackend({ prefer: 'cpu', importNative: fakeTfjsNode });
    expect(choice).toEqual({ name: 'cpu', reason: expect.stringMatching(/requested/) });
    expect(tf.getBackend()).toBe('cpu');
    expect(await initBackend({ prefer: 'wasm' })).toMatchObject({ name: 'wasm' });
    expect(tf.getBackend()).toBe('wasm');
  });

  it('throws INVALID_CONFIG when the preferred backend is unavailable', async () => {
    const { initBackend } = await freshBackendModule();
    await expect(initBackend({ prefer: 'tensorflow', importNative: moduleNotFound })).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
      message: expect.stringMatching(/'tensorflow' was requested but @tensorflow\/tfjs-node is not installed/),
    });
    await expect(initBackend({ prefer: 'wasm', importWasm: () => Promise.reject(new Error('no wasm')) })).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
    });
  });
});
