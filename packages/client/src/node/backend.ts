/**
 * Backend selection for Node: native TensorFlow through the optional `@tensorflow/tfjs-node`, else
 * WASM (with Shoal's convolution gradient kernels, without which CNNs cannot train there), else the
 * pure-JS CPU backend. Nothing here runs at import time: a library must not pick the app's backend
 * as a side effect, so even the WASM backend module is loaded only inside `initBackend()`.
 */
import * as tf from '@tensorflow/tfjs';
import { ShoalError } from '@shoal/protocol';
import { registerWasmConvGradients } from '../common/conv-kernels.js';
import { registerWasmMatMulFastPath } from '../common/matmul-kernels.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface BackendChoice {
  readonly name: BackendName;
  /** Why this backend was chosen, including why faster ones were not. */
  readonly reason: string;
}

export interface InitBackendOptions {
  /** Use exactly this backend; `initBackend` throws if it is unavailable. Default: the fastest available. */
  readonly prefer?: BackendName;
  /** Loads tfjs-node, which registers the 'tensorflow' backend. Default: `import('@tensorflow/tfjs-node')`. */
  readonly importNative?: () => Promise<unknown>;
  /** Loads the WASM backend, which registers 'wasm'. Default: `import('@tensorflow/tfjs-backend-wasm')`. */
  readonly importWasm?: () => Promise<unknown>;
}

const TFJS_NODE = '@tensorflow/tfjs-node';

/**
 * tfjs-node is an optional peer that is usually absent. A specifier held in a variable keeps
 * TypeScript and bundlers from trying to resolve it at build time.
 */
function importTfjsNode(): Promise<unknown> {
  const specifier: string = TFJS_NODE;
  return import(/* @vite-ignore */ /* webpackIgnore: true */ specifier);
}

function importWasmBackend(): Promise<unknown> {
  return import('@tensorflow/tfjs-backend-wasm');
}

/**
 * The last selection. tfjs's engine is itself process-global, so the choice made for it is too;
 * kept only to make `initBackend` idempotent and to share one selection between concurrent calls.
 */
let lastSelection: { readonly prefer: BackendName | undefined; readonly choice: Promise<BackendChoice> } | undefined;

/**
 * Picks and activates the fastest available backend: tfjs-node ('tensorflow') when it loads, else
 * WASM (with Shoal's conv gradient kernels registered), else CPU. `prefer` forces one.
 * Idempotent: while the chosen backend is still active, later calls (without a different `prefer`)
 * return the same choice without selecting again.
 * @throws ShoalError('INVALID_CONFIG') when the preferred backend cannot be activated.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendChoice> {
  const previous = lastSelection;
  if (previous !== undefined && (options.prefer === undefined || options.prefer === previous.prefer)) {
    const choice = await previous.choice.catch(() => undefined);
    if (choice !== undefined && tf.engine().backendName === choice.name) return choice;
  }
  const selection = { prefer: options.prefer, choice: selectBackend(options) };
  lastSelection = selection;
  try {
    return await selection.choice;
  } catch (error) {
    if (lastSelection === selection) lastSelection = undefined;
    throw error;
  }
}

async function selectBackend(options: InitBackendOptions): Promise<BackendChoice> {
  const { prefer, importNative = importTfjsNode, importWasm = importWasmBackend } = options;
  const skipped: string[] = [];

  if (prefer === undefined || prefer === 'tensorflow') {
    const failure = await activateNative(importNative);
    if (failure === undefined) {
      return { name: 'tensorflow', reason: prefer ? 'requested; tfjs-node loaded' : 'tfjs-node loaded (native TensorFlow)' };
    }
    if (prefer === 'tensorflow') throw new ShoalError('INVALID_CONFIG', `backend 'tensorflow' was requested but ${failure}`);
    skipped.push(failure);
  }

  if (prefer === undefined || prefer === 'wasm') {
    const failure = await activateWasm(importWasm);
    if (failure === undefined) {
      const why = prefer ? 'requested' : skipped.join('; ');
      return { name: 'wasm', reason: `${why}; using WASM with Shoal's conv-gradient and matmul kernels` };
    }
    if (prefer === 'wasm') throw new ShoalError('INVALID_CONFIG', `backend 'wasm' was requested but ${failure}`);
    skipped.push(failure);
  }

  if (!(await tf.setBackend('cpu'))) {
    throw new ShoalError('INVALID_CONFIG', `no tfjs backend could be initialised (${[...skipped, 'the CPU backend failed'].join('; ')})`);
  }
  const why = prefer ? 'requested' : skipped.join('; ');
  return { name: 'cpu', reason: `${why}; using the pure-JS CPU backend (slow for CNNs)` };
}

/** Loads tfjs-node and switches to it; returns why not, or undefined on success. */
async function activateNative(importNative: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await importNative();
  } catch (error) {
    return isModuleNotFound(error, TFJS_NODE)
      ? `${TFJS_NODE} is not installed`
      : `${TFJS_NODE} failed to load (${messageOf(error)})`;
  }
  if (tf.findBackendFactory('tensorflow') == null) {
    return `${TFJS_NODE} loaded but registered no 'tensorflow' backend (a second copy of @tensorflow/tfjs?)`;
  }
  return (await tf.setBackend('tensorflow')) ? undefined : `the 'tensorflow' backend of ${TFJS_NODE} failed to initialise`;
}

/** Loads the WASM backend, adds the conv gradient kernels and switches to it; returns why not, or undefined. */
async function activateWasm(importWasm: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await importWasm();
    // Before setBackend: the backend runs kernels' setup functions when it first initialises.
    registerWasmConvGradients();
    registerWasmMatMulFastPath();
  } catch (error) {
    return `the WASM backend failed to load (${messageOf(error)})`;
  }
  return (await tf.setBackend('wasm')) ? undefined : 'the WASM backend failed to initialise';
}

function isModuleNotFound(error: unknown, specifier: string): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  const message = messageOf(error);
  // Node sets a code; bundlers and test runners use their own words. Either way the message must
  // name tfjs-node itself, or it is one of tfjs-node's own dependencies that is missing.
  const notFound = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || /cannot find|could not resolve|failed to (resolve|load url)/i.test(message);
  return notFound && message.includes(specifier);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
