/**
 * A client that receives a coordinator frame it cannot use (here: a `train` whose weights hold a
 * NaN) must not quit: it closes that connection with the code naming the problem, forgets its
 * cached global model, reconnects with its normal backoff, and trains on the fresh weights it is
 * sent next. The coordinator is a scripted `ws` server on 127.0.0.1, so the test controls every byte.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  PROTOCOL_VERSION,
  builtinTopology,
  closeCodeOf,
  createSeededRandom,
  encodeFrame,
  manifestOfSequential,
  numParams,
  type CoordinatorMessage,
  type HelloMessage,
  type ModelDescriptor,
} from '@shoal/protocol';
import { ShoalClient, wsTransport, type ClientDataset } from '../src/index.js';
import { startScriptedCoordinator } from './scripted-coordinator.js';

const topology = builtinTopology('logreg', [4], 3);
if (topology.format !== 'shoal-sequential') throw new Error('unreachable');
const MODEL: ModelDescriptor = { topology, manifest: manifestOfSequential(topology) };
const D = numParams(MODEL.manifest);
const CONFIG = { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;
/** A value whose Float32 bytes the test finds in an encoded frame and overwrites with a NaN. */
const MARKER = 1234.5;

function dataset(): ClientDataset {
  const random = createSeededRandom(5);
  return { x: Float32Array.from({ length: 12 * 4 }, () => random.next()), y: Int32Array.from({ length: 12 }, (_, i) => i % 3), featureShape: [4] };
}

/**
 * A `train` frame whose first weight is NaN. Built by patching bytes, because a correct encoder may
 * refuse to encode a NaN weight; the client's decoder must catch it either way.
 */
function trainWithNaN(round: number, modelVersion: string): Uint8Array {
  const weights = new Float32Array(D).fill(0.1);
  weights[0] = MARKER;
  const frame = encodeFrame({ type: 'train', round, modelVersion, weights, config: CONFIG, deadlineMs: 60_000 });
  const marker = new Uint8Array(Float32Array.of(MARKER).buffer);
  const at = frame.findIndex((_, i) => marker.every((byte, j) => frame[i + j] === byte));
  if (at < 0) throw new Error('the weights are not stored as little-endian Float32 bytes in the frame');
  frame.set(new Uint8Array(Float32Array.of(Number.NaN).buffer), at);
  return frame;
}

describe('ShoalClient and a coordinator frame it rejects', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it('reconnects without its cached model after a train with a NaN weight, then trains normally', async () => {
    const coordinator = await startScriptedCoordinator(D);
    cleanups.push(() => coordinator.close());
    const nextConnection = (n: number) => coordinator.connection(n);
    const welcome = (clientId: string): CoordinatorMessage => ({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, clientId, resumeToken: `resume-${clientId}`, model: MODEL, heartbeatIntervalMs: 60_000 });
    const weights = new Float32Array(D).fill(0.1);

    const client = new ShoalClient({
      url: coordinator.url,
      token: 'any',
      data: dataset(),
      transport: wsTransport,
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
    });
    const errors: string[] = [];
    const closes: number[] = [];
    client.on('error', ({ error }) => errors.push((error as { code?: string }).code ?? error.message));
    client.on('disconnected', ({ code }) => closes.push(code));
    const stop = new AbortController();
    cleanups.push(() => stop.abort());
    // Settled at once, so a run() that gives up fails the test with its error instead of hanging it.
    const run = client.run({ signal: stop.signal }).then(() => 'resolved', (error: unknown) => error);

    // Connection 1: a normal round, so the client holds model run:0; then a train for run:1 with a NaN weight.
    const first = await nextConnection(1);
    const hellos: HelloMessage[] = [await first.next('hello')];
    first.send(welcome('c1'));
    first.send({ type: 'train', round: 1, modelVersion: 'run:0', weights, config: CONFIG, deadlineMs: 60_000 });
    expect((await first.next('update')).round).toBe(1);
    first.send({ type: 'result', round: 1, status: 'aborted', modelVersion: 'run:0', reason: 'scripted' });
    first.send(trainWithNaN(2, 'run:1'));
    expect(await first.closed).toBe(closeCodeOf('NON_FINITE'));

    // Connection 2: the client came back on its own, holding no model (so it is sent fresh weights).
    const second = await Promise.race([
      nextConnection(2),
      run.then((result) => {
        throw new Error(`run() ended instead of reconnecting: ${String(result)}`);
      }),
    ]);
    hellos.push(await second.next('hello'));
    second.send(welcome('c1'));
    second.send({ type: 'train', round: 3, modelVersion: 'run:1', weights, config: CONFIG, deadlineMs: 60_000 });
    const update = await second.next('update');
    expect(update).toMatchObject({ round: 3, modelVersion: 'run:1' });
    expect(update.delta.every(Number.isFinite)).toBe(true);
    second.ws.close(closeCodeOf('TRAINING_COMPLETE'), 'training complete');

    expect(await run).toBe('resolved'); // neither the bad frame nor its close code ended the run
    expect(hellos[1]).toMatchObject({ resumeToken: 'resume-c1' });
    expect(hellos[1]).not.toHaveProperty('modelVersion');
    expect(errors).toEqual(['NON_FINITE']); // reported, but not fatal
    expect(closes).toEqual([closeCodeOf('NON_FINITE'), closeCodeOf('TRAINING_COMPLETE')]);
  });
});
