/**
 * Poisoned updates in plain mode (no DP, no SecAgg) over real WebSockets: five honest Node
 * ShoalClients train the built-in MLP on scikit-learn digits (about 287 examples each) beside raw
 * peers that answer every `train` with a finite but enormous delta: every entry 1e38 from one peer,
 * or FLT_MAX from three sybils of the same token. Without a bound the sum overflows or the mean is
 * ~1e37, and the honest clients train to NaN. The coordinator's norm bound (`maxUpdateNorm`,
 * default `auto`) scales each attacker's update down, so the model stays finite every round, the
 * accuracy ends within one point of the same seeded run without attackers, and no honest client is
 * thrown out.
 *
 * What an attacker keeps is bound · weight / totalWeight per round (docs/reliability.md); here each
 * claims a modest example count (100; 30 per sybil) so that share is what is measured. A claim of
 * more is capped by `strategy.maxWeight` (default 1,000), not refused.
 */
import { setMaxListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { ShoalClient, initBackend } from '@shoal/client';
import { builtinInitialModel, startCoordinator, type CoordinatorHandle, type RoundMetrics } from '@shoal/coordinator';
import { closeCodeOf, createSeededRandom, numParams } from '@shoal/protocol';
import { centralEvaluator, loadDataset, partitionIid, subset } from '@shoal/sim';
import { fedAvg } from '@shoal/strategy';
import { WsPeer, updateFor } from '@shoal/testkit';

const TOKEN = 'poison-token';
const HONEST = 5;
const ROUNDS = 5;
const FLT_MAX = 3.4028234663852886e38;

interface Attack {
  /** Every entry of each attacker's delta. */
  readonly value: number;
  /** Raw peers sending it, all with the same token (sybils). */
  readonly peers: number;
  /** The numExamples each peer claims with its update. */
  readonly claims: number;
}

interface Federation {
  readonly rounds: readonly RoundMetrics[];
  /** Whether every committed global model was finite. */
  readonly finiteEveryRound: boolean;
  /** Per honest client: the close codes it saw and the errors it emitted. */
  readonly honest: readonly { readonly closes: readonly number[]; readonly errors: readonly Error[]; readonly run: unknown }[];
}

/** A raw peer that answers every `train` with `value` in every coordinate, claiming `claims` examples. */
async function startAttacker(url: string, d: number, value: number, claims: number): Promise<WsPeer> {
  const peer = await WsPeer.connect(url, { token: TOKEN });
  await peer.hello({ numExamples: claims });
  void (async () => {
    for (;;) {
      const train = await peer.next('train', Infinity).catch(() => undefined);
      if (train === undefined) return; // closed
      peer.send(updateFor(train, new Float32Array(d).fill(value), claims));
    }
  })();
  return peer;
}

describe('plain-mode updates of 1e38 and FLT_MAX', () => {
  let coordinator: CoordinatorHandle | undefined;
  afterEach(async () => {
    await coordinator?.close();
    coordinator = undefined;
  });

  /** One seeded federation of HONEST clients, plus the attack's peers when given. */
  async function federate(attack?: Attack): Promise<Federation> {
    await initBackend();
    const { train, test } = loadDataset('digits', { seed: 0 });
    const model = builtinInitialModel('mlp', train.featureShape, train.numClasses, 0);
    const d = numParams(model.descriptor.manifest);
    const evaluator = await centralEvaluator(model.descriptor, test);
    const attackers = attack?.peers ?? 0;
    let finiteEveryRound = true;
    try {
      coordinator = await startCoordinator({
        model,
        tokens: [TOKEN],
        rounds: ROUNDS,
        // Every round waits for, and takes, all honest clients and all attackers.
        minClients: HONEST + attackers,
        roundTimeoutMs: 30_000,
        train: { epochs: 2, batchSize: 16, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
        strategy: fedAvg(),
        evaluate: (weights) => evaluator.evaluate(weights),
        onRound: () => {
          finiteEveryRound &&= coordinator!.globalWeights().every(Number.isFinite);
        },
      });
      // The attackers connect first, so they are idle and selected from round 1 on.
      const peers = await Promise.all(Array.from({ length: attackers }, () => startAttacker(coordinator!.url, d, attack!.value, attack!.claims)));

      const stop = new AbortController();
      setMaxListeners(4 * HONEST, stop.signal);
      const partitions = partitionIid(train.length, HONEST, createSeededRandom(1));
      const honest = partitions.map((indices, i) => {
        const data = subset(train, indices);
        const client = new ShoalClient({
          url: coordinator!.url,
          token: TOKEN,
          data: { x: data.x, y: data.y, featureShape: data.featureShape },
          shuffleSeed: i, // the same local training with and without attackers
          reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
        });
        const seen = { closes: [] as number[], errors: [] as Error[] };
        client.on('disconnected', ({ code }) => seen.closes.push(code));
        client.on('error', ({ error }) => seen.errors.push(error));
        // Settled at once, so a rejection is asserted below rather than crashing the worker.
        const run = client.run({ signal: stop.signal }).then(() => 'resolved' as const, (error: unknown) => error);
        return { seen, run };
      });
      // An honest client that gives up would leave the coordinator waiting for minClients forever.
      const gaveUp = Promise.race(honest.map((h) => h.run.then((result) => (result === 'resolved' ? new Promise<never>(() => {}) : result))));
      const summary = await Promise.race([
        coordinator.finished,
        gaveUp.then((error) => {
          throw new Error(`an honest client left: ${String(error)}`);
        }),
      ]);
      const runs = await Promise.all(honest.map((h) => h.run));
      stop.abort();
      await Promise.all(peers.map((peer) => peer.close()));
      return { rounds: summary.rounds, finiteEveryRound, honest: honest.map((h, i) => ({ ...h.seen, run: runs[i] })) };
    } finally {
      evaluator.dispose();
    }
  }

  it('keeps the model finite and the accuracy within one point of the run without attackers', async () => {
    const clean = await federate();
    await coordinator!.close();
    const attacks: Attack[] = [
      { value: 1e38, peers: 1, claims: 100 },
      { value: FLT_MAX, peers: 3, claims: 30 },
    ];
    const cleanAccuracy = clean.rounds.at(-1)!.accuracy!;
    expect(cleanAccuracy).toBeGreaterThan(0.85); // the clean run learns: the comparison means something
    for (const attack of attacks) {
      const attacked = await federate(attack);
      await coordinator!.close();
      const label = `${attack.peers} peer(s) sending ${attack.value}`;
      expect(attacked.finiteEveryRound, label).toBe(true);
      expect(attacked.rounds.map((r) => [r.status, r.participants, r.clippedUpdates]), label).toEqual(
        Array.from({ length: ROUNDS }, () => ['committed', HONEST + attack.peers, attack.peers]),
      );
      expect(Math.abs(attacked.rounds.at(-1)!.accuracy! - cleanAccuracy), label).toBeLessThanOrEqual(0.01);
      for (const seen of attacked.honest) {
        // run() resolved (TRAINING_COMPLETE): the client stayed to the end.
        expect(seen.run, label).toBe('resolved');
        expect(seen.errors, label).toEqual([]);
        expect(seen.closes, label).toEqual([closeCodeOf('TRAINING_COMPLETE')]);
      }
    }
    // No honest update was ever scaled down in the clean run.
    expect(clean.rounds.map((r) => r.clippedUpdates)).toEqual(Array.from({ length: ROUNDS }, () => 0));
  });
});
