import { expect } from 'vitest';
import type { Decoded, ErrorCode, Message } from '../src/index.js';
import { PROTOCOL_VERSION, decodeClientMessage, decodeCoordinatorMessage, encodeFrame, manifestOfSequential } from '../src/index.js';

/** A tiny model size, so vectors in examples stay readable. */
export const NUM_PARAMS = 6;

// logreg on 2 inputs and 2 classes: a 2×2 kernel and 2 biases, 6 parameters.
const topology = { format: 'shoal-sequential', inputShape: [2], layers: [{ type: 'dense', units: 2, activation: 'softmax' }] } as const;

/** `length` bytes counting up from `start`, so each fixture's bytes are distinct. */
export function bytes(length: number, start: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (start * 31 + i) & 0xff);
}

/** One valid example of every message type, keyed by type. */
export function validMessages() {
  return {
    hello: { type: 'hello', protocolVersion: PROTOCOL_VERSION, numExamples: 600, capabilities: ['fedprox'] },
    helloResuming: {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      numExamples: 0,
      capabilities: [],
      resumeToken: 'resume-abc',
      modelVersion: 'v3',
    },
    helloIdentity: { type: 'hello', protocolVersion: PROTOCOL_VERSION, capabilities: ['secagg'], identityKey: bytes(32, 20) },
    update: {
      type: 'update',
      round: 3,
      modelVersion: 'v3',
      numExamples: 600,
      delta: new Float32Array([0.5, -1.25, 0, 3e-8, -2, 1e30]),
      metrics: { loss: 0.42, accuracy: 0.9, trainMs: 1234.5 },
    },
    decline: { type: 'decline', round: 3, reason: 'battery low' },
    welcome: {
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      clientId: 'c-17',
      resumeToken: 'resume-abc',
      model: { topology, manifest: manifestOfSequential(topology) },
      heartbeatIntervalMs: 5000,
    },
    welcomeTfjs: {
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      clientId: 'c-18',
      resumeToken: 'resume-def',
      model: {
        topology: { format: 'tfjs-layers', modelTopology: { class_name: 'Sequential', config: { layers: [] } } },
        manifest: [
          { name: 'dense/kernel', shape: [2, 2] },
          { name: 'dense/bias', shape: [2] },
          { name: 'scale', shape: [] },
        ],
      },
      heartbeatIntervalMs: 2500,
    },
    train: {
      type: 'train',
      round: 4,
      modelVersion: 'v4',
      weights: new Float32Array([1, 2, 3, 4, 5, 6]),
      config: { epochs: 1, batchSize: 10, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      deadlineMs: 30_000,
    },
    trainCached: {
      type: 'train',
      round: 5,
      modelVersion: 'v5',
      config: { epochs: 5, batchSize: 50, learningRate: 0.001, optimizer: 'adam', proximalMu: 0.01 },
      deadlineMs: 12.5,
    },
    trainSecAgg: {
      type: 'train',
      round: 6,
      modelVersion: 'v6',
      config: { epochs: 1, batchSize: 10, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      deadlineMs: 60_000,
      secagg: { mode: 'secagg+', index: 3, threshold: 4, degree: 5, bound: 600, scale: 1024.5, maxWeight: 600, sessionId: 'run-7f3a' },
    },
    advertise: { type: 'advertise', round: 6, encryptionKey: bytes(32, 1), maskKey: bytes(32, 2), signingKey: bytes(32, 13), signature: bytes(64, 14) },
    keys: {
      type: 'keys',
      round: 6,
      neighbours: [
        { index: 1, encryptionKey: bytes(32, 3), maskKey: bytes(32, 4), signingKey: bytes(32, 15), signature: bytes(64, 16) },
        { index: 100_000, encryptionKey: bytes(32, 5), maskKey: bytes(32, 6), signingKey: bytes(32, 17), signature: bytes(64, 18) },
      ],
    },
    shares: { type: 'shares', round: 6, ciphertexts: [{ to: 1, box: bytes(139, 7) }, { to: 100_000, box: bytes(139, 8) }] },
    inbox: { type: 'inbox', round: 6, ciphertexts: [{ from: 1, box: bytes(139, 9) }] },
    masked: {
      type: 'masked',
      round: 6,
      modelVersion: 'v6',
      masked: new Uint32Array([0, 1, 2 ** 31, 2 ** 32 - 1, 7, 8, 600]), // NUM_PARAMS words and the weight
      metrics: { loss: 0.42, accuracy: 0.9, trainMs: 1234.5 },
    },
    survivors: { type: 'survivors', round: 6, survivors: [1, 3, 100_000] },
    confirm: { type: 'confirm', round: 6, signature: bytes(64, 19) },
    unmask: { type: 'unmask', round: 6, signatures: [{ index: 3, signature: bytes(64, 21) }, { index: 1, signature: bytes(64, 22) }] },
    unmaskEmpty: { type: 'unmask', round: 6, signatures: [] },
    reveal: {
      type: 'reveal',
      round: 6,
      selfMaskShares: [{ of: 3, share: bytes(33, 10) }, { of: 1, share: bytes(33, 11) }],
      maskKeyShares: [{ of: 2, share: bytes(33, 12) }],
    },
    revealEmpty: { type: 'reveal', round: 6, selfMaskShares: [], maskKeyShares: [] },
    result: { type: 'result', round: 4, status: 'committed', modelVersion: 'v5' },
    resultAborted: { type: 'result', round: 5, status: 'aborted', modelVersion: 'v5', reason: 'only 2 of 3 clients left' },
  } satisfies Record<string, Message>;
}

// ---- helpers shared by the validation tests ----

export function fromClient(value: unknown, numParams = NUM_PARAMS): Decoded<unknown> {
  return decodeClientMessage(encodeFrame(value as object), { numParams });
}

export function fromCoordinator(value: unknown, numParams?: number): Decoded<unknown> {
  return decodeCoordinatorMessage(encodeFrame(value as object), numParams === undefined ? {} : { numParams });
}

export function expectRejected(result: Decoded<unknown>, code: ErrorCode, reasonPart?: string): void {
  expect(result).toMatchObject({ ok: false, code });
  if (reasonPart !== undefined && !result.ok) expect(result.reason).toContain(reasonPart);
}

/** Pass as a value to `withField` to delete the field. */
export const REMOVE = Symbol('remove');

/** A copy of `message` with the value at a dotted path (e.g. `metrics.loss`, `ciphertexts.0.to`) replaced. */
export function withField(message: object, path: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(message) as Record<string, unknown>;
  const keys = path.split('.');
  let target = copy;
  for (const key of keys.slice(0, -1)) target = target[key] as Record<string, unknown>;
  const last = keys.at(-1)!;
  if (value === REMOVE) delete target[last];
  else target[last] = value;
  return copy;
}
