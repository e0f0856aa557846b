/**
 * Rounds that cannot produce a usable model abort with a reason, and the run goes on: a cohort whose
 * updates carry no weight (plain: every update claims numExamples 0; SecAgg: a forged masked weight
 * word makes the decoded total 0, or implausibly large), an evaluate callback that throws or
 * rejects, a strategy step that throws, and a step whose new weights overflow. Each time the global
 * model stays as it was, the next round commits, and `finished` resolves. Real coordinator, real
 * WebSockets on 127.0.0.1.
 */
import { setMaxListeners } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ShoalClient, initBackend, wsTransport, type ClientTransport } from '@shoal/client';
import { builtinInitialModel, readLatestCheckpoint, recordingLogger, startCoordinator, type CoordinatorHandle, type CoordinatorOptions } from '@shoal/coordinator';
import { createSeededRandom, decodeFrame, encodeFrame, type MaskedMessage } from '@shoal/protocol';
import { loadDataset, partitionIid, subset } from '@shoal/sim';
import { fedAvg, wrapStrategy } from '@shoal/strategy';
import { WsPeer, startScriptedPeer, updateFor } from '@shoal/testkit';

const TOKEN = 'degenerate-token';
/** logreg on 4 features and 3 classes: 15 parameters. */
const MODEL = builtinInitialModel('logreg', [4], 3);
const D = MODEL.weights.length;
const TRAIN = { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;

function options(overrides: Partial<CoordinatorOptions>): CoordinatorOptions {
  return { model: MODEL, tokens: [TOKEN], rounds: 2, minClients: 2, train: TRAIN, strategy: fedAvg(), heartbeatIntervalMs: 60_000, ...overrides };
}

describe('rounds that cannot produce a usable model', () => {
  let coordinator: CoordinatorHandle | undefined;
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    await coordinator?.close();
    coordinator = undefined;
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it('plain: a cohort whose updates all claim numExamples 0 aborts that round; the next one commits', async () => {
    coordinator = await startCoordinator(options({ rounds: 2 }));
    const peers = await Promise.all([0, 1].map(() => WsPeer.connect(coordinator!.url, { token: TOKEN })));
    for (const peer of peers) {
      await peer.hello();
      // Round 1: a weight of 0 each; round 2: honest counts.
      void (async () => {
        for (;;) {
          const train = await peer.next('train', Infinity).catch(() => undefined);
          if (train === undefined) return;
          peer.send(updateFor(train, new Float32Array(D).fill(0.01), train.round === 1 ? 0 : 5));
        }
      })();
    }
    const summary = await coordinator.finished;
    expect(summary.rounds.map((r) => r.status)).toEqual(['aborted', 'committed']);
    expect(summary.rounds[0]!.reason).toMatch(/total weight of 0 .*numExamples 0/);
    // Round 2 started from the initial model: nothing of round 1 went in.
    expect(summary.rounds[0]!.modelVersion).toBe(summary.rounds[1]!.modelVersion.replace(/:2$/, ':0'));
    await Promise.all(peers.map((peer) => peer.close()));
  });

  it('aborts the rounds whose evaluate throws or rejects or whose strategy step throws, and commits the others', async () => {
    const { logger, records } = recordingLogger();
    const inner = fedAvg();
    const flaky = wrapStrategy(inner, {
      name: 'flaky',
      step: (global, aggregate, state, round) => {
        if (round === 4) throw new TypeError('boom in step');
        return inner.step(global, aggregate, state, round);
      },
    });
    coordinator = await startCoordinator(
      options({
        rounds: 5,
        strategy: flaky,
        // Round 2 throws synchronously, round 3 rejects: both are failures of the callback.
        evaluate: (_weights, round) => {
          if (round === 2) throw new RangeError('evaluator crashed');
          if (round === 3) return Promise.reject(new Error('evaluator rejected'));
          return Promise.resolve({ loss: 1, accuracy: 0.5 });
        },
        logger,
      }),
    );
    const peers = await Promise.all([1, 2].map((n) => startScriptedPeer(coordinator!.url, { token: TOKEN, numExamples: 5, delta: () => new Float32Array(D).fill(0.01 * n) })));
    const summary = await coordinator.finished;
    expect(summary.rounds.map((r) => r.status)).toEqual(['committed', 'aborted', 'aborted', 'aborted', 'committed']);
    const [, second, third, fourth, fifth] = summary.rounds;
    expect(second!.reason).toBe('evaluate failed: evaluator crashed');
    expect(third!.reason).toBe('evaluate failed: evaluator rejected');
    expect(fourth!.reason).toBe('strategy flaky failed to step: boom in step');
    // An aborted round has no evaluation, and leaves the model of round 1 in place.
    expect(second).not.toHaveProperty('accuracy');
    expect([second, third, fourth].map((r) => r!.modelVersion)).toEqual([1, 1, 1].map(() => summary.rounds[0]!.modelVersion));
    expect(fifth!.modelVersion).toMatch(/:5$/);
    // Never silent: the reason and the error's stack are in the log.
    expect(records).toContainEqual({ level: 'warn', message: 'round aborted', fields: { round: 4, reason: 'strategy flaky failed to step: boom in step' } });
    expect(records.some(({ fields }) => fields.round === 2 && fields.reason === 'evaluate failed' && fields.err?.startsWith('RangeError: evaluator crashed\n    at '))).toBe(true);
    await Promise.all(peers.map((p) => p.peer.close()));
  });

  it('aborts a round whose new weights would overflow, keeps the model, and still checkpoints the round', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-degenerate-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    // η = 1e300 turns any ordinary mean update into ±Infinity in Float32.
    coordinator = await startCoordinator(options({ rounds: 1, strategy: fedAvg({ serverLearningRate: 1e300 }), checkpointDir: dir }));
    const peers = await Promise.all([0, 1].map(() => startScriptedPeer(coordinator!.url, { token: TOKEN, numExamples: 5, delta: () => new Float32Array(D).fill(0.5) })));
    const summary = await coordinator.finished;
    expect(summary.rounds[0]).toMatchObject({ status: 'aborted' });
    expect(summary.rounds[0]!.reason).toMatch(/^the new global weights are not finite \(weight 0 would be -?Infinity\)/);
    expect(summary.weights).toEqual(MODEL.weights);
    const checkpoint = await readLatestCheckpoint(dir);
    expect(checkpoint).toMatchObject({ round: 1 });
    expect(checkpoint!.weights).toEqual(MODEL.weights);
    await Promise.all(peers.map((p) => p.peer.close()));
  });

  it('secagg: a forged masked weight word that makes the total 0, then one that makes it implausibly large, aborts those rounds; the next commits', async () => {
    await initBackend();
    const { train } = loadDataset('digits', { seed: 0 });
    const initial = builtinInitialModel('logreg', train.featureShape, train.numClasses, 0);
    const clients = 5;
    const partitions = partitionIid(train.length, clients, createSeededRandom(2));
    // Every client's weight word is its example count (all below maxWeight 1,000).
    const honestTotal = partitions.reduce((total, indices) => total + indices.length, 0);
    coordinator = await startCoordinator({
      model: initial,
      tokens: [TOKEN],
      rounds: 3,
      clientsPerRound: clients,
      minClients: 3,
      heartbeatIntervalMs: 60_000,
      train: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
      // maxDropout 0.2: t = 4 of 5 (the default 0.3 leaves no threshold above (5 + 1)/2); no client drops here.
      secagg: { mode: 'secagg', maxDropout: 0.2, stageTimeoutMs: 10_000, maxWeight: 1_000 },
    });
    // Client 0 runs the honest SecAgg client, then edits the weight word (the last) of its masked
    // input before it leaves: masks are added mod 2^32, so the unmasked total moves by the same amount.
    const forge = new Map([
      [1, -honestTotal], // total 0
      [2, 2 ** 31], // total far above count × maxWeight
    ]);
    const forging: ClientTransport = {
      async connect(url, token, signal) {
        const connection = await wsTransport.connect(url, token, signal);
        return {
          ...connection,
          send(frame) {
            const message = decodeFrame(frame) as { type: string };
            const shift = message.type === 'masked' ? forge.get((message as MaskedMessage).round) : undefined;
            if (shift === undefined) return connection.send(frame);
            const masked = (message as MaskedMessage).masked.slice();
            masked[masked.length - 1] = (masked[masked.length - 1]! + shift) >>> 0;
            connection.send(encodeFrame({ ...message, masked }));
          },
          onFrame: (handler) => connection.onFrame(handler),
          onClose: (handler) => connection.onClose(handler),
        };
      },
    };
    const stop = new AbortController();
    setMaxListeners(4 * clients, stop.signal);
    const runs = partitions.map((indices, i) => {
      const data = subset(train, indices);
      return new ShoalClient({
        url: coordinator!.url,
        token: TOKEN,
        data: { x: data.x, y: data.y, featureShape: data.featureShape },
        ...(i === 0 ? { transport: forging } : {}),
        reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      }).run({ signal: stop.signal });
    });
    const summary = await coordinator.finished;
    stop.abort();
    await Promise.allSettled(runs);

    expect(summary.rounds.map((r) => [r.status, r.participants])).toEqual([
      ['aborted', clients],
      ['aborted', clients],
      ['committed', clients],
    ]);
    expect(summary.rounds[0]!.reason).toBe(`the decoded total weight 0 of 5 clients is outside 1..5000 (count × maxWeight 1000): a masked weight was forged, or no client had examples`);
    expect(summary.rounds[1]!.reason).toBe(`the decoded total weight ${honestTotal + 2 ** 31} of 5 clients is outside 1..5000 (count × maxWeight 1000): a masked weight was forged, or no client had examples`);
    // The aborted rounds left the initial model; round 3 moved it.
    expect(summary.rounds[1]!.modelVersion).toMatch(/:0$/);
    expect(summary.weights).not.toEqual(initial.weights);
    expect(summary.weights.every(Number.isFinite)).toBe(true);
  });
});
