/**
 * Consent, transparency and leaving, with real ShoalClients and a real in-process Coordinator over
 * the in-memory transport:
 * - without consent (absent, false, or a callback resolving false) run() never calls connect;
 * - `roundPlan` announces, before training, how many values and roughly how many bytes the update
 *   will have, under plain FedAvg with central DP and under SecAgg with distributed DP;
 * - `approveRound` returning false declines the round: the coordinator records a dropout, nothing trains;
 * - `leave()` mid-training resolves run() promptly, closes the connection, calls `storage.clear`
 *   and releases every tensor the client created. "Promptly" is counted, never timed: training
 *   stops within one batch of leave(), and run() resolves without the round's deadline passing.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ShoalClient, initBackend, type ClientTransport, type RoundPlan } from '@shoal/client';
import { Coordinator, builtinInitialModel, type CoordinatorOptions, type RoundMetrics } from '@shoal/coordinator';
import { createSeededRandom, decodeFrame, numParams } from '@shoal/protocol';
import { memoryTransport } from '@shoal/sim';
import { fedAvg } from '@shoal/strategy';
import { ShoalClient as CommonShoalClient } from '../../packages/client/src/common/client.js';

const TOKEN = 'consent-token';
const FEATURES = 4;
const CLASSES = 3;
/** logreg: kernel [4, 3] and bias [3]. */
const MODEL = builtinInitialModel('logreg', [FEATURES], CLASSES, 3);
const NUM_PARAMS = numParams(MODEL.descriptor.manifest);
const TRAIN = { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;
/** The `progress` event (one per batch) at which the leave() test calls leave(). */
const LEAVE_AT_BATCH = 5;

function dataset(seed: number, examples = 32) {
  const random = createSeededRandom(seed);
  const x = Float32Array.from({ length: examples * FEATURES }, () => random.next() * 2 - 1);
  const y = Int32Array.from({ length: examples }, (_, i) => i % CLASSES);
  return { x, y, featureShape: [FEATURES] };
}

/** What one client's transport saw: connect calls, frames sent (type and size), and closes. */
interface Recording {
  connects: number;
  sent: { type: string; bytes: number; message: Record<string, unknown> }[];
  closes: { code: number; reason: string }[];
}

function recordingTransport(inner: ClientTransport, recording: Recording): ClientTransport {
  return {
    async connect(url, token, signal) {
      recording.connects++;
      const connection = await inner.connect(url, token, signal);
      return {
        send(frame) {
          const message = decodeFrame(frame) as Record<string, unknown>;
          recording.sent.push({ type: String(message['type']), bytes: frame.byteLength, message });
          connection.send(frame);
        },
        close(code, reason) {
          connection.close(code, reason);
        },
        onFrame: (handler) => connection.onFrame(handler),
        onClose: (handler) =>
          connection.onClose((code, reason) => {
            recording.closes.push({ code, reason });
            handler(code, reason);
          }),
      };
    },
  };
}

function newRecording(): Recording {
  return { connects: 0, sent: [], closes: [] };
}

describe('client consent, round plans and leave()', () => {
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

  async function startCoordinator(overrides: Partial<CoordinatorOptions> = {}): Promise<ClientTransport> {
    coordinator = new Coordinator({
      model: MODEL,
      tokens: [TOKEN],
      rounds: 1,
      clientsPerRound: 1,
      minClients: 1,
      minAvailable: 1,
      roundTimeoutMs: 20_000,
      heartbeatIntervalMs: 60_000,
      train: TRAIN,
      strategy: fedAvg(),
      onRound: (metrics) => rounds.push(metrics),
      ...overrides,
    });
    await coordinator.restore();
    finished = coordinator.run();
    return memoryTransport(coordinator, [TOKEN]);
  }

  function client(transport: ClientTransport, recording: Recording, extra: Partial<ConstructorParameters<typeof ShoalClient>[0]> = {}, seed = 1) {
    return new ShoalClient({
      url: 'memory://coordinator',
      token: TOKEN,
      data: dataset(seed),
      transport: recordingTransport(transport, recording),
      prepare: async () => {},
      shuffleSeed: seed,
      ...extra,
    });
  }

  describe('consent gate', () => {
    const transport: ClientTransport = {
      connect: () => Promise.reject(new Error('connect must not be called without consent')),
    };

    it('the common client without a consent option never connects and run() resolves', async () => {
      const recording = newRecording();
      const shoal = new CommonShoalClient({ url: 'memory://x', token: TOKEN, data: dataset(1), transport: recordingTransport(transport, recording) });
      const answers: boolean[] = [];
      shoal.on('consent', ({ granted }) => answers.push(granted));
      await shoal.run();
      expect(recording.connects).toBe(0);
      expect(answers).toEqual([false]);
    });

    it('consent: false, or a callback resolving false, never connects (even in the Node client)', async () => {
      for (const consent of [false, async () => false, () => false]) {
        const recording = newRecording();
        const shoal = client(transport, recording, { consent });
        const answers: boolean[] = [];
        shoal.on('consent', ({ granted }) => answers.push(granted));
        await shoal.run();
        expect(recording.connects).toBe(0);
        expect(answers).toEqual([false]);
      }
    });

    it('consent granted (callback resolving true, or the Node default) connects and trains', async () => {
      const transport = await startCoordinator();
      const recording = newRecording();
      let asked = 0;
      const shoal = client(transport, recording, {
        consent: async () => {
          asked++;
          return true;
        },
      });
      const answers: boolean[] = [];
      shoal.on('consent', ({ granted }) => answers.push(granted));
      await shoal.run();
      expect(asked).toBe(1);
      expect(answers).toEqual([true]);
      expect(recording.connects).toBe(1);
      expect(recording.sent.map((s) => s.type)).toEqual(['hello', 'update']);
      expect(rounds[0]).toMatchObject({ status: 'committed', participants: 1 });
    });

    it('the Node client consents by default', async () => {
      const transport = await startCoordinator();
      const recording = newRecording();
      await client(transport, recording).run();
      expect(recording.connects).toBe(1);
    });
  });

  describe('roundPlan', () => {
    it('announces the update size and clip norm before training (plain FedAvg, central DP)', async () => {
      const transport = await startCoordinator({ dp: { mode: 'central', noiseMultiplier: 0.5, clipNorm: 0.75 } });
      const recording = newRecording();
      const shoal = client(transport, recording);
      const events: string[] = [];
      let plan: RoundPlan | undefined;
      shoal.on('roundPlan', (p) => {
        plan = p;
        events.push('roundPlan');
      });
      shoal.on('progress', () => events.push('progress'));
      await shoal.run();
      expect(events[0]).toBe('roundPlan');
      expect(events).toContain('progress');
      expect(plan).toMatchObject({ round: 1, updateValues: NUM_PARAMS, clipNorm: 0.75, secureAggregation: false, sendsMetrics: true });
      expect(plan!.noiseStd).toBeUndefined();
      expect(plan!.secaggMode).toBeUndefined();
      const update = recording.sent.find((s) => s.type === 'update')!;
      expect((update.message['delta'] as Float32Array).length).toBe(plan!.updateValues);
      expect(update.message['modelVersion']).toBe(plan!.modelVersion);
      // "Approximately": the vector exactly, and an envelope that does not under-report.
      expect(plan!.updateBytes).toBeGreaterThanOrEqual(update.bytes);
      expect(plan!.updateBytes - update.bytes).toBeLessThan(128);
    });

    it('under SecAgg with distributed DP and adaptive clipping counts the bit and the weight word', async () => {
      const transport = await startCoordinator({
        clientsPerRound: 3,
        minClients: 3,
        minAvailable: 3,
        // t = 3 of 3 (2t ≥ k + 2), so no dropout can be tolerated: maxDropout 0.
        secagg: { mode: 'secagg', threshold: 3, maxDropout: 0, stageTimeoutMs: 20_000 },
        dp: { mode: 'distributed', noiseMultiplier: 0.5, clipNorm: 1, adaptiveClip: { countNoiseStd: 0.5 } },
      });
      const recordings = [newRecording(), newRecording(), newRecording()];
      const plans: RoundPlan[] = [];
      const runs = recordings.map((recording, i) => {
        const shoal = client(transport, recording, {}, i + 1);
        shoal.on('roundPlan', (p) => plans.push(p));
        return shoal.run();
      });
      await Promise.all(runs);
      expect(rounds[0]).toMatchObject({ status: 'committed', participants: 3 });
      expect(plans).toHaveLength(3);
      for (const [i, plan] of plans.entries()) {
        expect(plan).toMatchObject({ round: 1, updateValues: NUM_PARAMS + 1, clipNorm: 1, secureAggregation: true, secaggMode: 'secagg', sendsMetrics: false });
        expect(plan.noiseStd).toBeGreaterThan(0);
        const masked = recordings[i]!.sent.find((s) => s.type === 'masked')!;
        // The values, plus the masked weight word.
        expect((masked.message['masked'] as Uint32Array).length).toBe(plan.updateValues + 1);
        expect(masked.message['metrics']).toBeUndefined();
        expect(plan.updateBytes).toBeGreaterThanOrEqual(masked.bytes);
        expect(plan.updateBytes - masked.bytes).toBeLessThan(128);
      }
    });

    it('approveRound returning false declines the round: a dropout, and no training', async () => {
      const transport = await startCoordinator();
      const recording = newRecording();
      const approvals: RoundPlan[] = [];
      const shoal = client(transport, recording, {
        approveRound: async (plan) => {
          approvals.push(plan);
          return false;
        },
      });
      let progress = 0;
      shoal.on('progress', () => progress++);
      const stop = new AbortController();
      const running = shoal.run({ signal: stop.signal });
      await until(() => rounds.length > 0);
      stop.abort();
      await running;
      expect(approvals).toHaveLength(1);
      expect(approvals[0]).toMatchObject({ round: 1, updateValues: NUM_PARAMS });
      expect(progress).toBe(0);
      const decline = recording.sent.find((s) => s.type === 'decline');
      expect(decline?.message).toMatchObject({ round: 1, reason: 'declined by the user' });
      expect(recording.sent.some((s) => s.type === 'update')).toBe(false);
      expect(rounds[0]).toMatchObject({ round: 1, status: 'aborted', participants: 0, dropouts: 1 });
    });
  });

  describe('leave()', () => {
    // tfjs `fit`, the plain FedAvg path (proximalMu 0); test/integration/leave-fedprox.test.ts
    // covers FedProx's proximal loop.
    it('during training: run() resolves promptly, the connection closes, storage is cleared, tensors are released', async () => {
      // 200 epochs of 32 single-example batches (6,400) and a 10-minute round deadline: the counts
      // below, not a clock, show that leave() cut both short.
      const transport = await startCoordinator({ train: { ...TRAIN, epochs: 200, batchSize: 1, proximalMu: 0 }, roundTimeoutMs: 600_000 });
      const recording = newRecording();
      let cleared = 0;
      const shoal = client(transport, recording, {
        storage: {
          clear: async () => {
            cleared++;
          },
        },
      });
      const tensorsBefore = tf.memory().numTensors;
      let progress = 0;
      const errors: Error[] = [];
      shoal.on('error', ({ error }) => errors.push(error));
      // leave() is called from the client's own progress event, so "during training" is exact.
      let progressAtLeave: number | undefined;
      let left: Promise<void> | undefined;
      shoal.on('progress', () => {
        progress++;
        if (progress === LEAVE_AT_BATCH) {
          progressAtLeave = progress;
          left = shoal.leave();
        }
      });
      await shoal.run();
      await left;
      expect(progressAtLeave).toBe(LEAVE_AT_BATCH);
      expect(progress - progressAtLeave!).toBeLessThanOrEqual(1); // training stopped within one batch of leave()
      expect(recording.closes).toEqual([{ code: 1000, reason: 'client left' }]);
      expect(recording.sent.map((s) => s.type)).toEqual(['hello']);
      expect(errors).toEqual([]);
      expect(cleared).toBe(1);
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      await until(() => rounds.length > 0);
      expect(rounds[0]).toMatchObject({ status: 'aborted', participants: 0, dropouts: 1 });

      // A later run() needs consent again: the Node default `true` no longer counts.
      const progressAfterLeave = progress;
      const answers: boolean[] = [];
      shoal.on('consent', ({ granted }) => answers.push(granted));
      await shoal.run();
      expect(answers).toEqual([false]);
      expect(recording.connects).toBe(1);
      expect(progress).toBe(progressAfterLeave); // nothing trained on after leave()
    });

    it('while waiting to reconnect stops at once and asks a consent callback again on the next run()', async () => {
      const recording = newRecording();
      const failing: ClientTransport = { connect: () => Promise.reject(new Error('unreachable')) };
      let asked = 0;
      const shoal = client(failing, recording, {
        consent: () => (++asked, true),
        reconnect: { initialDelayMs: 60_000 },
      });
      shoal.on('error', () => {});
      const running = shoal.run();
      await until(() => recording.connects === 1);
      await shoal.leave();
      await running;
      expect(recording.connects).toBe(1);
      expect(asked).toBe(1);
      const again = shoal.run();
      await until(() => recording.connects === 2);
      expect(asked).toBe(2);
      await shoal.leave();
      await again;
    });
  });
});

/** Polls `condition` every few milliseconds (the in-memory transport delivers on setImmediate). */
async function until(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
