import type { Message } from '../src/index.js';
import { PROTOCOL_VERSION, manifestOfSequential } from '../src/index.js';

/** A tiny model size, so vectors in examples stay readable. */
export const NUM_PARAMS = 6;

// logreg on 2 inputs and 2 classes: a 2×2 kernel and 2 biases, 6 parameters.
const topology = { format: 'shoal-sequential', inputShape: [2], layers: [{ type: 'dense', units: 2, activation: 'softmax' }] } as const;

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
    result: { type: 'result', round: 4, status: 'committed', modelVersion: 'v5' },
    resultAborted: { type: 'result', round: 5, status: 'aborted', modelVersion: 'v5', reason: 'only 2 of 3 clients left' },
  } satisfies Record<string, Message>;
}
