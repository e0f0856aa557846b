/**
 * A real coordinator aborts a round while a real ShoalClient is training it, over WebSockets on
 * 127.0.0.1: the round needs two clients (minClients 2) and the other one vanishes on `train`. The
 * client stops training within one batch of hearing `result` aborted (counted with its progress
 * events), leaks no tensor, and sends nothing for the round.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { ShoalClient, initBackend, wsTransport, type ClientDataset, type ClientTransport } from '@shoal/client';
import { builtinInitialModel, startCoordinator, type CoordinatorHandle } from '@shoal/coordinator';
import { createSeededRandom, decodeClientMessage, decodeCoordinatorMessage, type ClientMessage } from '@shoal/protocol';
import { fedAvg } from '@shoal/strategy';
import { WsPeer } from '@shoal/testkit';

const TOKEN = 'round-abort-token';
const MODEL = builtinInitialModel('logreg', [4], 3);
const D = MODEL.weights.length;

function dataset(): ClientDataset {
  const random = createSeededRandom(11);
  return { x: Float32Array.from({ length: 12 * 4 }, () => random.next()), y: Int32Array.from({ length: 12 }, (_, i) => i % 3), featureShape: [4] };
}

describe('a round the coordinator aborts while the client trains it', () => {
  let coordinator: CoordinatorHandle | undefined;
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
    await coordinator?.close();
    coordinator = undefined;
  });

  it('stops local training within one batch of the result, leaks no tensor and sends nothing for the round', async () => {
    await initBackend();
    const tensors = tf.memory().numTensors;
    // 12 examples in batches of 4 for 10,000 epochs: 30,000 batches, far longer than the test.
    coordinator = await startCoordinator({
      model: MODEL,
      tokens: [TOKEN],
      rounds: 1,
      minClients: 2,
      train: { epochs: 10_000, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
    });

    let batches = 0;
    let batchesAtResult: number | undefined;
    const sent: ClientMessage[] = [];
    // wsTransport, watched: what the client sends, and how far it had trained when `result` arrived.
    const transport: ClientTransport = {
      async connect(url, token, signal) {
        const connection = await wsTransport.connect(url, token, signal);
        return {
          send: (frame) => {
            const decoded = decodeClientMessage(frame, { numParams: D });
            if (decoded.ok) sent.push(decoded.message);
            connection.send(frame);
          },
          close: (code, reason) => connection.close(code, reason),
          onClose: (handler) => connection.onClose(handler),
          onFrame: (handler) =>
            connection.onFrame((frame) => {
              const decoded = decodeCoordinatorMessage(frame, { numParams: D });
              if (decoded.ok && decoded.message.type === 'result') batchesAtResult = batches;
              handler(frame);
            }),
        };
      },
    };
    const client = new ShoalClient({ url: coordinator.url, token: TOKEN, data: dataset(), transport });
    const roundEnds: string[] = [];
    let trainingGoesOn: (error: Error) => void = () => {};
    const overrun = new Promise<never>((_, reject) => (trainingGoesOn = reject));
    client.on('roundEnd', ({ round, status }) => roundEnds.push(`${round}:${status}`));
    client.on('progress', () => {
      batches++;
      if (batchesAtResult !== undefined && batches > batchesAtResult + 1) trainingGoesOn(new Error(`trained ${batches - batchesAtResult} batches after the round aborted`));
    });
    const stop = new AbortController();
    cleanups.push(() => stop.abort());
    const run = client.run({ signal: stop.signal });

    // The second client the round needs joins, is selected, and vanishes once training has begun.
    const peer = await WsPeer.connect(coordinator.url, { token: TOKEN });
    await peer.hello({ numExamples: 12 });
    await peer.next('train');
    while (batches < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    peer.ws.terminate();

    await Promise.race([run, overrun]); // resolves on TRAINING_COMPLETE: the aborted round was the only one
    const summary = await coordinator.finished;
    expect(summary.rounds[0]).toMatchObject({ status: 'aborted' });
    expect(batchesAtResult).toBeDefined();
    expect(batches - batchesAtResult!).toBeLessThanOrEqual(1);
    expect(sent.map((message) => message.type)).toEqual(['hello']);
    expect(roundEnds).toEqual(['1:aborted']);
    expect(tf.memory().numTensors).toBe(tensors); // the client disposed the model it built, and nothing else is left
  });
});
