/**
 * Backend selection for browsers: WASM (with Shoal's convolution-gradient and matmul kernels,
 * without which CNNs cannot train there), else WebGL, else the pure-JS CPU backend. Nothing runs at
 * import time: a library must not pick the app's backend as a side effect, so the WASM backend
 * module is loaded only inside `initBrowserBackend()` (and a bundler splits it out or keeps it as
 * a lazily evaluated module).
 */
import * as tf from '@tensorflow/tfjs';
import { ShoalError } from '@shoal/protocol';
import { registerWasmConvGradients } from '../common/conv-kernels.js';
import { registerWasmMatMulFastPath } from '../common/matmul-kernels.js';

export type BrowserBackendName = 'wasm' | 'webgl' | 'cpu';

export interface BrowserBackendChoice {
  readonly name: BrowserBackendName;
  /** Why this backend was chosen, including why faster ones were not. */
  readonly reason: string;
}

export interface InitBrowserBackendOptions {
  /**
   * Where the WASM backend fetches its `.wasm` binaries, passed to tfjs's `setWasmPaths`: a URL
   * prefix ending in `/` (e.g. `'/tfjs-wasm/'`), or a map from file name
   * (`tfjs-backend-wasm.wasm`, `tfjs-backend-wasm-simd.wasm`, `tfjs-backend-wasm-threaded-simd.wasm`)
   * to URL. The app serves those files, copied from `node_modules/@tensorflow/tfjs-backend-wasm/dist/`
   * (for example with a copy step in its build, or a static route to that folder). Default: tfjs's
   * own lookup, next to the script that loaded the backend, which usually fails for bundled apps;
   * the selection then falls back to WebGL.
   */
  readonly wasmPaths?: string | Record<string, string>;
  /** Use exactly this backend; `initBrowserBackend` throws if it is unavailable. Default: the first available of WASM, WebGL, CPU. */
  readonly prefer?: BrowserBackendName;
  /** Loads the WASM backend module, which registers 'wasm'. Default: `import('@tensorflow/tfjs-backend-wasm')`. */
  readonly importWasm?: () => Promise<WasmBackendModule>;
}

/** The part of `@tensorflow/tfjs-backend-wasm` this module uses. */
export interface WasmBackendModule {
  setWasmPaths(prefixOrFileMap: string | Record<string, string>): void;
}

function importWasmBackend(): Promise<WasmBackendModule> {
  return import('@tensorflow/tfjs-backend-wasm');
}

/**
 * Picks and activates a tfjs backend for training in a browser: WASM with Shoal's conv-gradient and
 * matmul kernels registered, else WebGL (which `@tensorflow/tfjs` registers), else CPU. `prefer`
 * forces one. Calling it again is cheap: tfjs keeps initialised backends.
 * @throws ShoalError('INVALID_CONFIG') when the preferred backend cannot be activated, or none can.
 */
export async function initBrowserBackend(options: InitBrowserBackendOptions = {}): Promise<BrowserBackendChoice> {
  const { prefer } = options;
  const skipped: string[] = [];
  const why = () => (prefer !== undefined ? 'requested' : skipped.join('; '));

  if (prefer === undefined || prefer === 'wasm') {
    const failure = await activateWasm(options);
    if (failure === undefined) return { name: 'wasm', reason: `${why() || 'preferred'}; using WASM with Shoal's conv-gradient and matmul kernels` };
    if (prefer === 'wasm') throw new ShoalError('INVALID_CONFIG', `backend 'wasm' was requested but ${failure}`);
    skipped.push(failure);
  }

  if (prefer === undefined || prefer === 'webgl') {
    const failure = await activate('webgl');
    if (failure === undefined) return { name: 'webgl', reason: `${why()}; using WebGL` };
    if (prefer === 'webgl') throw new ShoalError('INVALID_CONFIG', `backend 'webgl' was requested but ${failure}`);
    skipped.push(failure);
  }

  const failure = await activate('cpu');
  if (failure !== undefined) {
    throw new ShoalError('INVALID_CONFIG', `no tfjs backend could be initialised (${[...skipped, failure].join('; ')})`);
  }
  return { name: 'cpu', reason: `${why()}; using the pure-JS CPU backend (slow for CNNs)` };
}

/** Loads the WASM backend, points it at its binaries, adds Shoal's kernels and switches to it; returns why not, or undefined. */
async function activateWasm(options: InitBrowserBackendOptions): Promise<string | undefined> {
  try {
    const wasm = await (options.importWasm ?? importWasmBackend)();
    // Before setBackend: the binaries are fetched, and kernels' setup functions run, when the backend first initialises.
    if (options.wasmPaths !== undefined) wasm.setWasmPaths(options.wasmPaths);
    registerWasmConvGradients();
    registerWasmMatMulFastPath();
  } catch (error) {
    return `the WASM backend failed to load (${messageOf(error)})`;
  }
  return activate('wasm');
}

/** Switches tfjs to `name`; returns why not, or undefined on success. */
async function activate(name: BrowserBackendName): Promise<string | undefined> {
  if (tf.findBackendFactory(name) == null) return `no '${name}' backend is registered`;
  try {
    // tfjs logs and returns false when a backend fails to initialise, but a few failures
    // (e.g. a .wasm fetch rejected) surface as a rejection instead.
    return (await tf.setBackend(name)) ? undefined : `the '${name}' backend failed to initialise`;
  } catch (error) {
    return `the '${name}' backend failed to initialise (${messageOf(error)})`;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
