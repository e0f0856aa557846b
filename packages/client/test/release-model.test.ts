/**
 * `releaseModelBetweenRounds`: the client builds its tfjs model for each round and disposes it when
 * the round ends, so between rounds it holds no tensors at all; it trains exactly as a client that
 * keeps its model does, and still refuses data that does not fit the model at `welcome`. Over real
 * WebSockets against a scripted coordinator.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { PROTOCOL_VERSION, builtinTopology, createSeededRandom, manifestOfSequential, numParams, type ModelDescriptor, type TrainConfig } from '@shoal/protocol';
import { ShoalClient, initBackend, wsTransport, type ClientDataset } from '../src/index.js';
import { startScriptedCoordinator } from './scripted-coordinator.js';

const topology = builtinTopology('logreg', [4], 3);
if (topology.format !== 'shoal-sequential') throw new Error('unreachable');
const MODEL: ModelDescriptor = { topology, manifest: manifestOfSequential(topology) };
const D = numParams(MODEL.manifest);
const CONFIG: TrainConfig = { epochs: 2, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 };

function dataset(features = 4): ClientDataset {
  const random = createSeededRandom(5);
  return { x: Float32Array.from({ length: 12 * features }, () => random.next()), y: Int32Array.from({ length: 12 }, (_, i) => i % 3), featureShape: [features] };
}

/** Seeded starting weights, so the two rounds train from a non-trivial model. */
function initialWeights(): Float32Array {
  const random = createSeededRandom(9);
  return Float32Array.from({ length: D }, () => random.next() - 0.5);
}

describe('ShoalClient releaseModelBetweenRounds', () => {
  const cleanups: (() => unknown)[] = [];
  beforeAll(async () => {
    await initBackend();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  /**
   * Runs a client through two committed rounds (round 2 from round 1's result), recording
   * `tf.memory().numTensors` after `welcome` and after each round's `result`, then stops it.
   */
  async function twoRounds(releaseModelBetweenRounds: boolean) {
    const coordinator = await startScriptedCoordinator(D);
    cleanups.push(() => coordinator.close());
    const client = new ShoalClient({ url: coordinator.url, token: 'any', data: dataset(), transport: wsTransport, shuffleSeed: 17, releaseModelBetweenRounds });
    const tensors: Record<string, number> = { before: tf.memory().numTensors };
    const errors: string[] = [];
    client.on('error', ({ error }) => errors.push(error.message));
    const welcomed = new Promise<void>((resolve) => client.on('connected', () => resolve()));
    const roundEnded = (round: number) =>
      new Promise<void>((resolve) => {
        const stop = client.on('roundEnd', (event) => {
          if (event.round === round && event.status === 'committed') (stop(), resolve());
        });
      });
    const stop = new AbortController();
    const run = client.run({ signal: stop.signal });
    cleanups.push(() => (stop.abort(), run.catch(() => {})));
    const connection = await coordinator.connection(1);
    await connection.next('hello');
    connection.send({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, clientId: 'c1', resumeToken: 'r1', model: MODEL, heartbeatIntervalMs: 60_000 });
    await welcomed;
    tensors['welcomed'] = tf.memory().numTensors;

    const deltas: Float32Array[] = [];
    let weights = initialWeights();
    for (const round of [1, 2]) {
      connection.send({ type: 'train', round, modelVersion: `run:${round - 1}`, config: CONFIG, deadlineMs: 60_000, weights });
      const update = await connection.next('update');
      deltas.push(update.delta);
      weights = weights.map((w, i) => w + update.delta[i]!);
      const ended = roundEnded(round);
      connection.send({ type: 'result', round, status: 'committed', modelVersion: `run:${round}` });
      await ended;
      // roundEnd is emitted inside the round; the round's model is disposed in the microtasks that
      // follow its return. setImmediate runs after every pending microtask, with no I/O in between.
      await new Promise((resolve) => setImmediate(resolve));
      tensors[`after round ${round}`] = tf.memory().numTensors;
    }
    stop.abort();
    await run;
    tensors['stopped'] = tf.memory().numTensors;
    return { deltas, tensors, errors };
  }

  it('holds no tensors between rounds and trains exactly as a client that keeps its model', async () => {
    const released = await twoRounds(true);
    const kept = await twoRounds(false);
    const before = released.tensors['before']!;
    expect(released.tensors).toEqual({ before, welcomed: before, 'after round 1': before, 'after round 2': before, stopped: before });
    // The contrast the option exists for: a kept model holds its variables (kernel and bias) between rounds.
    expect(kept.tensors['after round 1']).toBe(kept.tensors['before']! + 2);
    expect(kept.tensors['stopped']).toBe(kept.tensors['before']);
    expect(released.errors).toEqual([]);
    expect(released.deltas).toHaveLength(2);
    expect(released.deltas[0]!.some((value) => value !== 0)).toBe(true);
    // Same seed, same weights sent: the rebuilt model trains to the same update, round after round.
    expect(released.deltas).toEqual(kept.deltas);
  });

  it('refuses data that does not fit the model when welcomed, before any round', async () => {
    const coordinator = await startScriptedCoordinator(D);
    cleanups.push(() => coordinator.close());
    const client = new ShoalClient({ url: coordinator.url, token: 'any', data: dataset(5), transport: wsTransport, releaseModelBetweenRounds: true, reconnect: { maxAttempts: 0 } });
    const errors: string[] = [];
    client.on('error', ({ error }) => errors.push(error.message));
    const run = client.run();
    const connection = await coordinator.connection(1);
    await connection.next('hello');
    connection.send({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, clientId: 'c1', resumeToken: 'r1', model: MODEL, heartbeatIntervalMs: 60_000 });
    await expect(run).rejects.toMatchObject({ code: 'INVALID_DATA' });
    expect(errors.join('\n')).toContain('do not fit the model input [4]');
  });
});
