/**
 * The Node ShoalClient's connection handling against a real coordinator on 127.0.0.1: retrying
 * with backoff until the coordinator exists, resuming its id after the network drops mid-training,
 * and failing at once (no retry) on a wrong token or an app model that does not fit.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import * as tf from '@tensorflow/tfjs';
import { ShoalClient, wsTransport, type ClientDataset, type ClientTransport } from '@shoal/client';
import { builtinInitialModel, startCoordinator, type CoordinatorHandle, type CoordinatorOptions } from '@shoal/coordinator';
import { ShoalError, closeCodeOf, createSeededRandom } from '@shoal/protocol';
import { fedAvg } from '@shoal/strategy';

const TOKEN = 'reconnect-token';
/** logreg on 4 features and 3 classes: manifest l0_dense/kernel [4, 3], l0_dense/bias [3]. */
const MODEL = builtinInitialModel('logreg', [4], 3);
const RECONNECT = { initialDelayMs: 20, maxDelayMs: 100 };

/** Twelve seeded examples of 4 features, labels 0..2. */
function smallDataset(): ClientDataset {
  const random = createSeededRandom(3);
  const x = Float32Array.from({ length: 12 * 4 }, () => random.next());
  const y = Int32Array.from({ length: 12 }, (_, i) => i % 3);
  return { x, y, featureShape: [4] };
}

function coordinatorOptions(overrides: Partial<CoordinatorOptions> = {}): CoordinatorOptions {
  return {
    model: MODEL,
    tokens: [TOKEN],
    rounds: 1,
    minClients: 1,
    train: { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
    strategy: fedAvg(),
    ...overrides,
  };
}

/** A port that was free a moment ago: listen on port 0, note the port, close. */
async function reservePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A TCP relay in front of the coordinator whose connections the test can cut, like a lost network. */
async function startRelay(targetPort: number): Promise<{ url: string; cutAll(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // a cut connection errors on the other side; nothing to report
  };
  const server: Server = createServer((downstream) => {
    const upstream = tcpConnect(targetPort, '127.0.0.1');
    track(downstream);
    track(upstream);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const cutAll = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    url: `ws://127.0.0.1:${port}`,
    cutAll,
    close: () => {
      cutAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('ShoalClient (Node) connection handling', () => {
  let coordinator: CoordinatorHandle | undefined;
  const cleanups: (() => unknown)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
    await coordinator?.close();
    coordinator = undefined;
  });

  function stopOnCleanup(): AbortSignal {
    const stop = new AbortController();
    cleanups.push(() => stop.abort());
    return stop.signal;
  }

  it('retries with exponential backoff until the coordinator starts, then joins and trains', async () => {
    const port = await reservePort();
    // random() = 1 takes the top of each jitter range, so the delays are exactly 20, 40, 80, 100, 100 ms.
    const client = new ShoalClient({ url: `ws://127.0.0.1:${port}`, token: TOKEN, data: smallDataset(), reconnect: RECONNECT, random: () => 1 });
    // Only the client's timers are faked (setTimeout is what its backoff sleeps on); the refused
    // connections are real. Each gap is measured on the fake clock: the backoff timer is pending,
    // still pending 1 ms before its delay, and gone (the next attempt started) exactly at it.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const errorCodes: string[] = [];
    let nextError: () => void = () => {};
    client.on('error', ({ error }) => {
      errorCodes.push((error as ShoalError).code);
      nextError();
    });
    const refused = () => new Promise<void>((resolve) => (nextError = resolve));
    let refusal = refused();
    const run = client.run({ signal: stopOnCleanup() });
    try {
      for (const delay of [20, 40, 80, 100, 100]) {
        await refusal; // the client has scheduled its backoff timer by now (same tick as the event)
        refusal = refused();
        expect(vi.getTimerCount()).toBe(1);
        vi.advanceTimersByTime(delay - 1);
        expect(vi.getTimerCount()).toBe(1);
        vi.advanceTimersByTime(1); // capped at maxDelayMs: 100, not 160, 320, …
        expect(vi.getTimerCount()).toBe(0);
      }
    } finally {
      vi.useRealTimers(); // the attempt in flight backs off on real timers from here
    }
    await refusal;
    expect(errorCodes).toEqual(Array(6).fill('CONNECTION_FAILED'));

    coordinator = await startCoordinator(coordinatorOptions(), { port });
    expect(coordinator.port).toBe(port);
    await run; // resolves on TRAINING_COMPLETE
    const summary = await coordinator.finished;
    expect(summary.rounds[0]).toMatchObject({ status: 'committed', participants: 1 });
    expect(client.clientId).toBeDefined();
  });

  it('reconnects after the network drops mid-training and keeps its client id via the resume token', async () => {
    coordinator = await startCoordinator(coordinatorOptions({ rounds: 2 }));
    const relay = await startRelay(coordinator.port);
    cleanups.push(() => relay.close());
    const client = new ShoalClient({ url: relay.url, token: TOKEN, data: smallDataset(), reconnect: RECONNECT, random: () => 1 });
    const ids: string[] = [];
    const closes: number[] = [];
    const roundsStarted: number[] = [];
    client.on('connected', ({ clientId }) => ids.push(clientId));
    client.on('disconnected', ({ code }) => closes.push(code));
    client.on('roundStart', ({ round }) => {
      roundsStarted.push(round);
      if (roundsStarted.length === 1) relay.cutAll(); // the network goes away as training begins
    });

    await client.run({ signal: stopOnCleanup() });
    // 1006: the connection vanished without a close frame; then training finished normally.
    expect(closes).toEqual([1006, closeCodeOf('TRAINING_COMPLETE')]);
    expect(ids).toHaveLength(2);
    expect(ids[1]).toBe(ids[0]);
    const summary = await coordinator.finished;
    // Round 1 lost its only client; round 2 ran with the same client after it came back.
    expect(summary.rounds.map((r) => [r.status, r.participants, r.dropouts])).toEqual([
      ['aborted', 0, 1],
      ['committed', 1, 0],
    ]);
    expect(roundsStarted).toEqual([1, 2]);
  });

  it('rejects with UNAUTHORIZED on a wrong token, without retrying', async () => {
    coordinator = await startCoordinator(coordinatorOptions());
    let attempts = 0;
    const countingTransport: ClientTransport = {
      connect: (url, token, signal) => {
        attempts++;
        return wsTransport.connect(url, token, signal);
      },
    };
    const client = new ShoalClient({ url: coordinator.url, token: 'not-the-token', data: smallDataset(), reconnect: RECONNECT, transport: countingTransport });
    const error = await client.run({ signal: stopOnCleanup() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ShoalError);
    expect(error).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(attempts).toBe(1);
  });

  /** Runs a client whose app model has 5 output units where the coordinator's has 3. */
  async function runWithMismatchedModel(url: string): Promise<unknown> {
    // kernel [4, 5] instead of the manifest's l0_dense/kernel [4, 3].
    const appModel = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 5, activation: 'softmax' })] });
    cleanups.push(() => appModel.dispose());
    const client = new ShoalClient({ url, token: TOKEN, data: smallDataset(), model: appModel, reconnect: RECONNECT });
    return client.run({ signal: stopOnCleanup() }).catch((e: unknown) => e);
  }

  it('rejects with MODEL_MISMATCH naming the weight when the app model does not fit the manifest', async () => {
    // minClients 2: the lone client is welcomed and then left idle.
    coordinator = await startCoordinator(coordinatorOptions({ minClients: 2 }));
    const error = await runWithMismatchedModel(coordinator.url);
    expect(error).toBeInstanceOf(ShoalError);
    expect(error).toMatchObject({ code: 'MODEL_MISMATCH' });
    expect((error as Error).message).toContain('l0_dense/kernel');
    expect((error as Error).message).toContain('[4, 5]');
  });

  it('reports MODEL_MISMATCH even when the coordinator sends train right behind welcome', async () => {
    // minClients 1: round 1 selects the client the moment it says hello, so `train` is already on
    // the wire when the client finds that its model does not fit. That first error must be the
    // one run() reports, not a complaint about the `train` that followed.
    coordinator = await startCoordinator(coordinatorOptions({ minClients: 1 }));
    const error = await runWithMismatchedModel(coordinator.url);
    expect(error).toBeInstanceOf(ShoalError);
    expect(error).toMatchObject({ code: 'MODEL_MISMATCH' });
    expect((error as Error).message).toContain('l0_dense/kernel');
  });
});
