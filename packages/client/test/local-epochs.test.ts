/**
 * `localEpochs`: a device that can afford only part of a round's work trains fewer epochs and
 * still sends its update (FedProx's partial work); a choice outside 1..epochs is an app bug, named,
 * and nothing is sent for that round. Over real WebSockets against a scripted coordinator.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, builtinTopology, createSeededRandom, manifestOfSequential, numParams, type ModelDescriptor, type TrainConfig } from '@shoal/protocol';
import { ShoalClient, initBackend, wsTransport, type ClientDataset } from '../src/index.js';
import { startScriptedCoordinator, type ScriptedConnection } from './scripted-coordinator.js';

const topology = builtinTopology('logreg', [4], 3);
if (topology.format !== 'shoal-sequential') throw new Error('unreachable');
const MODEL: ModelDescriptor = { topology, manifest: manifestOfSequential(topology) };
const D = numParams(MODEL.manifest);
/** 12 examples in batches of 4: 3 batches per epoch, 3 epochs asked for. */
const CONFIG: TrainConfig = { epochs: 3, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 };

function dataset(): ClientDataset {
  const random = createSeededRandom(3);
  return { x: Float32Array.from({ length: 12 * 4 }, () => random.next()), y: Int32Array.from({ length: 12 }, (_, i) => i % 3), featureShape: [4] };
}

describe('ShoalClient localEpochs', () => {
  const cleanups: (() => unknown)[] = [];
  beforeAll(async () => {
    await initBackend();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  /** A client with `localEpochs`, welcomed, and what it reports: progress epochs, asks, errors. */
  async function start(localEpochs: (round: number, epochs: number) => number) {
    const coordinator = await startScriptedCoordinator(D);
    cleanups.push(() => coordinator.close());
    const asked: [number, number][] = [];
    const epochsTrained = new Set<number>();
    const errors: string[] = [];
    const client = new ShoalClient({
      url: coordinator.url,
      token: 'any',
      data: dataset(),
      transport: wsTransport,
      localEpochs: (round, epochs) => (asked.push([round, epochs]), localEpochs(round, epochs)),
    });
    client.on('progress', ({ epoch }) => epochsTrained.add(epoch));
    client.on('error', ({ error }) => errors.push((error as Error).message));
    const stop = new AbortController();
    const run = client.run({ signal: stop.signal }).catch(() => {});
    cleanups.push(() => (stop.abort(), run));
    const connection: ScriptedConnection = await coordinator.connection(1);
    await connection.next('hello');
    connection.send({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, clientId: 'c1', resumeToken: 'r1', model: MODEL, heartbeatIntervalMs: 60_000 });
    return { connection, asked, epochsTrained, errors };
  }

  it('trains only the epochs the device chooses, and still sends its update', async () => {
    const { connection, asked, epochsTrained } = await start(() => 1);
    connection.send({ type: 'train', round: 1, modelVersion: 'v0', config: CONFIG, deadlineMs: 60_000, weights: new Float32Array(D) });
    expect(await connection.next('update')).toMatchObject({ round: 1, modelVersion: 'v0', numExamples: 12 });
    expect(asked).toEqual([[1, 3]]);
    expect([...epochsTrained]).toEqual([0]);
  });

  it.each([0, 4, 1.5])('refuses a choice of %s epochs out of 3, naming localEpochs, and sends no update for the round', async (choice) => {
    const { connection, errors } = await start(() => choice);
    connection.send({ type: 'train', round: 1, modelVersion: 'v0', config: CONFIG, deadlineMs: 60_000, weights: new Float32Array(D) });
    const answer = await connection.next('update', 'decline');
    expect(answer.type).toBe('decline');
    expect(errors.join('\n')).toContain(`localEpochs returned ${choice} for round 1: it must be an integer from 1 to the 3 epochs`);
  });
});
