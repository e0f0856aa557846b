/**
 * A client stops a round it can no longer finish, over real WebSockets: when the coordinator's
 * `result` says the round aborted, when the round's `train.deadlineMs` passes, or when the app
 * calls `leave()`. Local training then stops within one batch (counted with the client's own
 * progress events, not with wall-clock thresholds), no tensor is leaked, and the client sends
 * nothing more for that round. Every wait is for an event: a counted batch, the client's
 * `roundStopped` (training has settled), a message on the socket; the deadline runs on a fake
 * clock except in the one test whose subject is the real clock. The coordinator is a scripted
 * `ws` server on 127.0.0.1.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  PROTOCOL_VERSION,
  builtinTopology,
  createSeededRandom,
  decodeCoordinatorMessage,
  manifestOfSequential,
  numParams,
  type ModelDescriptor,
  type SecAggRoundConfig,
  type TrainConfig,
  type TrainMessage,
} from '@shoal/protocol';
import { ShoalClient, initBackend, wsTransport, type ClientDataset, type ClientTransport, type Clock, type RoundStop } from '../src/index.js';
import { startScriptedCoordinator, type ScriptedConnection, type ScriptedCoordinator } from './scripted-coordinator.js';
import { ScriptedPeers } from './secagg-peers.js';
import { FakeClock } from '@shoal/testkit';

const topology = builtinTopology('logreg', [4], 3);
if (topology.format !== 'shoal-sequential') throw new Error('unreachable');
const MODEL: ModelDescriptor = { topology, manifest: manifestOfSequential(topology) };
const D = numParams(MODEL.manifest);
const WEIGHTS = new Float32Array(D).fill(0.1);
const SHORT: TrainConfig = { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 };
/** 12 examples in batches of 4 for 10,000 epochs: 30,000 batches, far more than any test waits for. */
const ENDLESS: TrainConfig = { ...SHORT, epochs: 10_000 };
const ENDLESS_BATCHES = ENDLESS.epochs * 3;
/** Batches the client trains of the long round before the test stops it. */
const STOP_AT = 5;

function dataset(): ClientDataset {
  const random = createSeededRandom(7);
  return { x: Float32Array.from({ length: 12 * 4 }, () => random.next()), y: Int32Array.from({ length: 12 }, (_, i) => i % 3), featureShape: [4] };
}

function train(round: number, modelVersion: string, config: TrainConfig, extra: Partial<TrainMessage> = {}): TrainMessage {
  return { type: 'train', round, modelVersion, config, deadlineMs: 60_000, ...extra };
}

/**
 * One client on one scripted connection, with what the test counts: the progress events of each
 * round, and how many of them had been emitted when each coordinator frame reached the client.
 */
class Scene {
  readonly progress = new Map<number, number>();
  readonly roundsStarted: number[] = [];
  /** `round:status` of every roundEnd event. */
  readonly roundEnds: string[] = [];
  /** `round:by` of every roundStopped event. */
  readonly roundStops: string[] = [];
  /** Per round: the progress count at the moment the client received that round's `result`. */
  readonly progressAtResult = new Map<number, number>();
  private readonly progressListeners = new Set<(round: number, count: number) => void>();
  readonly stop = new AbortController();
  readonly errors: unknown[] = [];
  client!: ShoalClient;
  connection!: ScriptedConnection;
  run!: Promise<unknown>;

  static async start(coordinator: ScriptedCoordinator, clock?: Clock): Promise<Scene> {
    const scene = new Scene();
    // wsTransport, watched: the test notes how far training had got when each frame arrived.
    const transport: ClientTransport = {
      async connect(url, token, signal) {
        const connection = await wsTransport.connect(url, token, signal);
        return {
          send: (frame) => connection.send(frame),
          close: (code, reason) => connection.close(code, reason),
          onClose: (handler) => connection.onClose(handler),
          onFrame: (handler) =>
            connection.onFrame((frame) => {
              const decoded = decodeCoordinatorMessage(frame, { numParams: D });
              if (decoded.ok && decoded.message.type === 'result') scene.progressAtResult.set(decoded.message.round, scene.progressOf(decoded.message.round));
              handler(frame);
            }),
        };
      },
    };
    scene.client = new ShoalClient({ url: coordinator.url, token: 'any', data: dataset(), transport, reconnect: { initialDelayMs: 20, maxDelayMs: 100 }, ...(clock ? { clock } : {}) });
    scene.client.on('progress', ({ round }) => {
      const count = scene.progressOf(round) + 1;
      scene.progress.set(round, count);
      for (const listener of scene.progressListeners) listener(round, count);
    });
    scene.client.on('roundStart', ({ round }) => scene.roundsStarted.push(round));
    scene.client.on('roundEnd', ({ round, status }) => scene.roundEnds.push(`${round}:${status}`));
    scene.client.on('roundStopped', ({ round, by }) => scene.roundStops.push(`${round}:${by}`));
    scene.client.on('error', ({ error }) => scene.errors.push(error));
    scene.run = scene.client.run({ signal: scene.stop.signal }).then(
      () => 'resolved',
      (error: unknown) => error,
    );
    scene.connection = await coordinator.connection(1);
    await scene.connection.next('hello');
    scene.connection.send({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, clientId: 'c1', resumeToken: 'resume-c1', model: MODEL, heartbeatIntervalMs: 60_000 });
    return scene;
  }

  progressOf(round: number): number {
    return this.progress.get(round) ?? 0;
  }

  /** Runs `action` synchronously inside the progress event of batch number `count` of `round`. */
  atBatch(round: number, count: number, action: () => void): Promise<void> {
    return new Promise((resolve) => {
      const listener = (r: number, c: number) => {
        if (r !== round || c !== count) return;
        this.progressListeners.delete(listener);
        action();
        resolve();
      };
      this.progressListeners.add(listener);
    });
  }

  /**
   * Resolves at `round`'s roundStopped event (its local training has settled) with why it stopped
   * and how many batches it had trained. Call it before the round starts.
   */
  stopped(round: number): Promise<{ by: RoundStop; batches: number }> {
    return new Promise((resolve) => {
      const off = this.client.on('roundStopped', (event) => {
        if (event.round !== round) return;
        off();
        resolve({ by: event.by, batches: this.progressOf(round) });
      });
    });
  }

  /**
   * Rejects as soon as `round` trains more than one batch past `count()` (once that is known):
   * a client that keeps training fails the test at once instead of at the test timeout.
   */
  failIfTrainingGoesOn(round: number, count: () => number | undefined): Promise<never> {
    return new Promise((_, reject) => {
      this.progressListeners.add((r, c) => {
        const stoppedAt = count();
        if (r === round && stoppedAt !== undefined && c > stoppedAt + 1) reject(new Error(`round ${round} trained ${c - stoppedAt} batches after it should have stopped`));
      });
    });
  }

  /** A plain round that trains to the end: the tfjs state a round leaves behind is now in place. */
  async warmUp(): Promise<void> {
    this.connection.send(train(1, 'run:0', SHORT, { weights: WEIGHTS }));
    expect(await this.connection.next('update')).toMatchObject({ round: 1, modelVersion: 'run:0' });
    this.connection.send({ type: 'result', round: 1, status: 'committed', modelVersion: 'run:1' });
  }

  /** Everything the client sent for `round`. */
  sentFor(round: number): string[] {
    return this.connection.log.filter((message) => 'round' in message && message.round === round).map((message) => message.type);
  }
}

describe('ShoalClient stops a round it can no longer finish', () => {
  const cleanups: (() => unknown)[] = [];
  beforeAll(async () => {
    await initBackend();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  async function scene(clock?: Clock): Promise<Scene> {
    const coordinator = await startScriptedCoordinator(D);
    cleanups.push(() => coordinator.close());
    const started = await Scene.start(coordinator, clock);
    cleanups.push(() => started.stop.abort());
    return started;
  }

  it("abandons training within one batch when the coordinator's result says the round aborted", async () => {
    const s = await scene();
    await s.warmUp();
    const tensors = tf.memory().numTensors;

    s.connection.send(train(2, 'run:1', ENDLESS, { weights: WEIGHTS }));
    await s.atBatch(2, STOP_AT, () => s.connection.send({ type: 'result', round: 2, status: 'aborted', modelVersion: 'run:1', reason: 'scripted abort' }));
    // Round 3 can only start once round 2 has stopped training; it needs no weights (run:1 is held).
    s.connection.send(train(3, 'run:1', SHORT));
    const update = await Promise.race([s.connection.next('update'), s.failIfTrainingGoesOn(2, () => s.progressAtResult.get(2))]);

    expect(update).toMatchObject({ round: 3, modelVersion: 'run:1' });
    expect(s.progressOf(2) - s.progressAtResult.get(2)!).toBeLessThanOrEqual(1);
    expect(s.sentFor(2)).toEqual([]);
    expect(s.roundStops).toEqual(['2:result']);
    expect(s.roundEnds.filter((end) => end.startsWith('2:'))).toEqual(['2:aborted']);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(s.errors).toEqual([]);
  });

  it.each([
    ['the fit loop (FedAvg)', 0],
    ['the proximal loop (FedProx)', 0.1],
  ])('abandons training within one batch when train.deadlineMs passes, in %s', async (_, proximalMu) => {
    const clock = new FakeClock();
    const s = await scene(clock);
    await s.warmUp();
    const tensors = tf.memory().numTensors;
    // The deadline counts from the arrival of `train`, not from the connection: round 2's `train`
    // arrives at fake time 5,000, so its 10,000 ms deadline is 15,000.
    clock.tick(5_000);
    const stopped = s.stopped(2);

    s.connection.send(train(2, 'run:1', { ...ENDLESS, proximalMu }, { weights: WEIGHTS, deadlineMs: 10_000 }));
    // 1 ms short of the deadline two batches before STOP_AT, the deadline itself at STOP_AT: a client
    // that stopped early (at most one batch after its deadline) never trains batch STOP_AT.
    void s.atBatch(2, STOP_AT - 2, () => clock.tick(9_999));
    void s.atBatch(2, STOP_AT, () => clock.tick(1));
    // No coordinator message since `train`: the client stops on its own.
    const stop = await Promise.race([stopped, s.failIfTrainingGoesOn(2, () => STOP_AT)]);
    expect(stop.by).toBe('deadline');
    expect(stop.batches).toBeGreaterThanOrEqual(STOP_AT);
    expect(stop.batches).toBeLessThanOrEqual(STOP_AT + 1);
    expect(s.roundEnds.filter((end) => end.startsWith('2:'))).toEqual([]);

    // The coordinator's deadline passed too: it aborts the round and starts the next one.
    s.connection.send({ type: 'result', round: 2, status: 'aborted', modelVersion: 'run:1', reason: 'deadline' });
    s.connection.send(train(3, 'run:1', SHORT));
    const update = await Promise.race([s.connection.next('update'), s.failIfTrainingGoesOn(2, () => STOP_AT)]);

    expect(update).toMatchObject({ round: 3, modelVersion: 'run:1' });
    // Training had settled at roundStopped: not one batch after it.
    expect(s.progressOf(2)).toBe(stop.batches);
    expect(s.sentFor(2)).toEqual([]);
    expect(s.roundStops).toEqual(['2:deadline']);
    // Past its deadline the client still heard the coordinator's verdict.
    expect(s.roundEnds.filter((end) => end.startsWith('2:'))).toEqual(['2:aborted']);
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('measures the deadline from the train message on the real clock', async () => {
    const s = await scene();
    await s.warmUp();
    const stopped = s.stopped(2);
    s.connection.send(train(2, 'run:1', ENDLESS, { weights: WEIGHTS, deadlineMs: 200 }));
    // No coordinator message and no fake clock: only the platform's timer can stop the client, and
    // the test waits for the stop itself, however long a loaded machine makes the 200 ms.
    const stop = await stopped;
    expect(stop.by).toBe('deadline');
    expect(stop.batches).toBeLessThan(ENDLESS_BATCHES);

    s.connection.send({ type: 'result', round: 2, status: 'aborted', modelVersion: 'run:1', reason: 'deadline' });
    s.connection.send(train(3, 'run:1', SHORT));
    expect(await s.connection.next('update')).toMatchObject({ round: 3 });
    expect(s.progressOf(2)).toBe(stop.batches);
    expect(s.sentFor(2)).toEqual([]);
    expect(s.roundEnds.filter((end) => end.startsWith('2:'))).toEqual(['2:aborted']);
  });

  it('sends no further SecAgg message once the deadline passed, even when the next stage arrives', async () => {
    const clock = new FakeClock();
    const s = await scene(clock);
    await s.warmUp();
    const tensors = tf.memory().numTensors;
    const secagg: SecAggRoundConfig = { mode: 'secagg', index: 1, threshold: 3, degree: 3, bound: 1_000, scale: 1_000, maxWeight: 1_000, sessionId: 'session' };

    s.connection.send(train(2, 'run:1', ENDLESS, { weights: WEIGHTS, deadlineMs: 10_000, secagg }));
    expect(await s.connection.next('advertise')).toMatchObject({ round: 2 });
    await s.atBatch(2, STOP_AT, () => clock.tick(10_000));
    // Real, signed advertisements of the two other members, which the client would accept.
    const neighbours = new ScriptedPeers(secagg, 2, D, [2, 3]).advertise();
    s.connection.send({ type: 'keys', round: 2, neighbours });
    s.connection.send({ type: 'result', round: 2, status: 'aborted', modelVersion: 'run:1', reason: 'deadline' });
    s.connection.send(train(3, 'run:1', SHORT));
    const update = await Promise.race([s.connection.next('update'), s.failIfTrainingGoesOn(2, () => STOP_AT)]);

    expect(update).toMatchObject({ round: 3 });
    expect(s.progressOf(2)).toBeLessThanOrEqual(STOP_AT + 1);
    expect(s.sentFor(2)).toEqual(['advertise']);
    expect(s.roundStops).toEqual(['2:deadline']);
    expect(s.roundEnds.filter((end) => end.startsWith('2:'))).toEqual(['2:aborted']);
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('stops training within one batch when the app calls leave(), and sends nothing for the round', async () => {
    const s = await scene();
    await s.warmUp();
    s.connection.send(train(2, 'run:1', ENDLESS, { weights: WEIGHTS }));
    let left: Promise<void> | undefined;
    await s.atBatch(2, STOP_AT, () => (left = s.client.leave()));
    await Promise.race([left, s.failIfTrainingGoesOn(2, () => STOP_AT)]);

    expect(await s.run).toBe('resolved');
    expect(s.progressOf(2)).toBeLessThanOrEqual(STOP_AT + 1);
    expect(s.sentFor(2)).toEqual([]);
    expect(s.roundStops).toEqual(['2:stopped']);
    expect(await s.connection.closed).toBe(1000);
  });
});
