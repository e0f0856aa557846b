/**
 * `leave()` while FedProx's proximal loop trains (LocalTrainer.trainProximal, the path a round with
 * proximalMu > 0 takes; test/integration/consent.test.ts covers the `fit` path). A real ShoalClient
 * and a real in-process Coordinator over the in-memory transport. "While training runs" is made
 * exact by calling leave() from the client's own `progress` event at the fifth batch, and every
 * check counts events, never time. leave() promises (packages/client/src/common/client.ts): the
 * connection closes (the round counts this client as a dropout), run() resolves, no reconnect,
 * the model it built is disposed, the cached global model and the resume token are forgotten,
 * `storage` is cleared, and a later run() needs consent again; training stops within one batch.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ShoalClient, initBackend, type ClientTransport } from '@shoal/client';
import { Coordinator, builtinInitialModel, type RoundMetrics } from '@shoal/coordinator';
import { createSeededRandom, decodeFrame } from '@shoal/protocol';
import { memoryTransport } from '@shoal/sim';
import { fedProx } from '@shoal/strategy';

const TOKEN = 'leave-token';
const FEATURES = 4;
const CLASSES = 3;
const MODEL = builtinInitialModel('logreg', [FEATURES], CLASSES, 5);
const EXAMPLES = 32;
/** Single-example batches for 50 epochs: 1,600 batches, so a client that ignored leave() would show it. */
const TRAIN = { epochs: 50, batchSize: 1, learningRate: 0.05, optimizer: 'sgd', proximalMu: 0 } as const;
const LEAVE_AT_BATCH = 5;

function dataset(seed: number) {
  const random = createSeededRandom(seed);
  const x = Float32Array.from({ length: EXAMPLES * FEATURES }, () => random.next() * 2 - 1);
  const y = Int32Array.from({ length: EXAMPLES }, (_, i) => i % CLASSES);
  return { x, y, featureShape: [FEATURES] };
}

type Frame = Record<string, unknown> & { type: string };

/** Every frame the client sent and received, the closes it saw, and a hook called on each sent frame. */
function recordingTransport(inner: ClientTransport) {
  const record = { connects: 0, sent: [] as Frame[], received: [] as Frame[], closes: [] as { code: number; reason: string }[], onSend: (_frame: Frame) => {} };
  const transport: ClientTransport = {
    async connect(url, token, signal) {
      record.connects++;
      const connection = await inner.connect(url, token, signal);
      return {
        send(frame) {
          const message = decodeFrame(frame) as Frame;
          record.sent.push(message);
          connection.send(frame);
          record.onSend(message);
        },
        close: (code, reason) => connection.close(code, reason),
        onFrame: (handler) =>
          connection.onFrame((frame) => {
            record.received.push(decodeFrame(frame) as Frame);
            handler(frame);
          }),
        onClose: (handler) =>
          connection.onClose((code, reason) => {
            record.closes.push({ code, reason });
            handler(code, reason);
          }),
      };
    },
  };
  return { transport, record };
}

describe('leave() during FedProx training', () => {
  let coordinator: Coordinator | undefined;
  let finished: Promise<unknown> | undefined;
  const rounds: RoundMetrics[] = [];

  beforeAll(async () => {
    await initBackend();
  });

  afterEach(async () => {
    coordinator?.stop();
    await finished?.catch(() => {});
    coordinator = undefined;
    finished = undefined;
    rounds.length = 0;
  });

  it('stops the proximal loop within one batch, closes, forgets the resume token and model, clears storage and releases every tensor', async () => {
    let roundEnded: () => void = () => {};
    const firstRoundEnded = new Promise<void>((resolve) => (roundEnded = resolve));
    coordinator = new Coordinator({
      model: MODEL,
      tokens: [TOKEN],
      rounds: 2,
      clientsPerRound: 1,
      minClients: 1,
      minAvailable: 1,
      roundTimeoutMs: 600_000, // the round ends because the client left, never by its deadline
      heartbeatIntervalMs: 600_000,
      train: TRAIN,
      strategy: fedProx({ proximalMu: 0.1 }),
      onRound: (metrics) => {
        rounds.push(metrics);
        roundEnded();
      },
    });
    await coordinator.restore();
    finished = coordinator.run();
    const { transport, record } = recordingTransport(memoryTransport(coordinator, [TOKEN]));

    let cleared = 0;
    let consentAsked = 0;
    const shoal = new ShoalClient({
      url: 'memory://coordinator',
      token: TOKEN,
      data: dataset(1),
      transport,
      shuffleSeed: 1,
      consent: () => (++consentAsked, true),
      storage: { clear: async () => void cleared++ },
    });
    const errors: Error[] = [];
    shoal.on('error', ({ error }) => errors.push(error));
    let progress = 0;
    let progressAtLeave: number | undefined;
    let left: Promise<void> | undefined;
    shoal.on('progress', () => {
      progress++;
      if (progress === LEAVE_AT_BATCH) {
        progressAtLeave = progress;
        left = shoal.leave();
      }
    });
    const tensorsBefore = tf.memory().numTensors;

    await shoal.run(); // resolves only because leave() was called: the round would run 1,600 batches
    await left;

    // The round really was a FedProx round, so the proximal loop is what leave() stopped.
    const train = record.received.find((frame) => frame.type === 'train');
    expect(train).toMatchObject({ round: 1, config: expect.objectContaining({ proximalMu: 0.1 }) });
    expect(progressAtLeave).toBe(LEAVE_AT_BATCH);
    expect(progress - progressAtLeave!).toBeLessThanOrEqual(1); // training stops within one batch
    expect(record.closes).toEqual([{ code: 1000, reason: 'client left' }]);
    expect(record.sent.map((frame) => frame.type)).toEqual(['hello']); // no update, no decline
    expect(record.connects).toBe(1); // no reconnect
    expect(errors).toEqual([]);
    expect(cleared).toBe(1);
    expect(tf.memory().numTensors).toBe(tensorsBefore); // the model it built and every batch's tensors
    await firstRoundEnded;
    expect(rounds[0]).toMatchObject({ round: 1, status: 'aborted', participants: 0, dropouts: 1 });
    const welcome = record.received.find((frame) => frame.type === 'welcome');
    expect(welcome?.['resumeToken']).toEqual(expect.any(String)); // there was a token to forget

    // A later run() asks for consent again and joins as a new client: no resume token, no held model.
    const progressAfterLeave = progress;
    const secondHello = new Promise<Frame>((resolve) => (record.onSend = (frame) => frame.type === 'hello' && resolve(frame)));
    const again = shoal.run();
    const hello = await secondHello;
    await shoal.leave();
    await again;
    expect(consentAsked).toBe(2);
    expect(hello).not.toHaveProperty('resumeToken');
    expect(hello).not.toHaveProperty('modelVersion');
    expect(progress).toBe(progressAfterLeave); // nothing trained on after the first leave()
    expect(cleared).toBe(2);
  });
});
