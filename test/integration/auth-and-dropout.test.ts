/**
 * The coordinator's connection edge and round bookkeeping over real WebSockets on 127.0.0.1:
 * token checks in the HTTP upgrade, dropouts and aborted rounds, heartbeats, replays, stragglers,
 * and skipping the weights for a client that already holds the current model.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { builtinInitialModel, startCoordinator, type CoordinatorHandle } from '@shoal/coordinator';
import type { CoordinatorOptions } from '@shoal/coordinator';
import { closeCodeOf, numParams, type TrainMessage } from '@shoal/protocol';
import { fedAvg } from '@shoal/strategy';
import { WsPeer, startScriptedPeer, updateFor, upgradeStatus, type ScriptedPeer } from '@shoal/testkit';

const TOKEN = 'integration-secret';
/** logreg on 2 features and 2 classes: kernel [2, 2] then bias [2], 6 parameters. */
const MODEL = builtinInitialModel('logreg', [2], 2, 7);
const NUM_PARAMS = numParams(MODEL.descriptor.manifest);
const TRAIN = { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;

/** A constant delta, different per peer so a wrong mean would show. */
function constantDelta(value: number): Float32Array {
  return new Float32Array(NUM_PARAMS).fill(value);
}

/** The bytes of a Float32Array, for bitwise comparison. */
function bitsOf(vector: Float32Array): Uint8Array {
  return new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength);
}

/** FedAvg by hand: w + Σ nᵢ·dᵢ / Σ nᵢ, in float64 and rounded once to float32, as the strategy does. */
function fedAvgByHand(weights: Float32Array, updates: readonly { numExamples: number; value: number }[]): Float32Array {
  const total = updates.reduce((sum, u) => sum + u.numExamples, 0);
  const mean = updates.reduce((sum, u) => sum + u.numExamples * u.value, 0) / total;
  return Float32Array.from(weights, (w) => w + mean);
}

describe('the coordinator over real WebSockets', () => {
  let coordinator: CoordinatorHandle | undefined;
  const peers: WsPeer[] = [];

  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.terminate();
    await coordinator?.close();
    coordinator = undefined;
  });

  async function start(options: Partial<CoordinatorOptions> & Pick<CoordinatorOptions, 'rounds'>): Promise<CoordinatorHandle> {
    // The constant deltas (norms up to 12) dwarf this 6-parameter model, so the default `auto` norm
    // bound would scale them down; these tests check FedAvg's arithmetic, so the bound is lifted.
    coordinator = await startCoordinator({ model: MODEL, tokens: [TOKEN], train: TRAIN, strategy: fedAvg(), maxUpdateNorm: 1_000, ...options });
    return coordinator;
  }

  async function connect(options: Parameters<typeof WsPeer.connect>[1] = { token: TOKEN }): Promise<WsPeer> {
    const peer = await WsPeer.connect(coordinator!.url, options);
    peers.push(peer);
    return peer;
  }

  async function scripted(options: Omit<Parameters<typeof startScriptedPeer>[1], 'token'>): Promise<ScriptedPeer> {
    const peer = await startScriptedPeer(coordinator!.url, { token: TOKEN, ...options });
    peers.push(peer.peer);
    return peer;
  }

  describe('authentication in the HTTP upgrade', () => {
    it('answers 401 without a token, with a wrong token (header or query), and accepts ?token=', async () => {
      const { url } = await start({ rounds: 1, minClients: 5 });
      expect(await upgradeStatus(url)).toEqual({ opened: false, statusCode: 401 });
      expect(await upgradeStatus(url, { authorization: `Bearer ${TOKEN}x` })).toEqual({ opened: false, statusCode: 401 });
      expect(await upgradeStatus(url, { authorization: TOKEN })).toEqual({ opened: false, statusCode: 401 }); // no "Bearer "
      expect(await upgradeStatus(`${url}/?token=wrong`)).toEqual({ opened: false, statusCode: 401 });
      // A right token passes, in the header (Node clients) and in the query (browsers).
      expect(await upgradeStatus(url, { authorization: `Bearer ${TOKEN}` })).toEqual({ opened: true });
      const viaQuery = await connect({ token: TOKEN, tokenInQuery: true });
      const welcome = await viaQuery.hello();
      expect(welcome.clientId).toMatch(/\S/);
      expect(welcome.model.manifest).toEqual(MODEL.descriptor.manifest);
    });
  });

  describe('dropouts', () => {
    /** Four peers; the fourth terminates its socket as soon as it is asked to train. */
    async function fourPeersOneDropping(): Promise<{ honest: ScriptedPeer[]; dropper: WsPeer; dropperTrain: TrainMessage }> {
      const honest = [
        await scripted({ numExamples: 1, delta: () => constantDelta(1) }),
        await scripted({ numExamples: 1, delta: () => constantDelta(2) }),
        await scripted({ numExamples: 2, delta: () => constantDelta(4) }),
      ];
      const dropper = await connect();
      await dropper.hello({ numExamples: 100 });
      const dropperTrain = await dropper.next('train');
      dropper.terminate();
      return { honest, dropper, dropperTrain };
    }

    it('commits a round with the three that answered when one of four drops out (minClients 3)', async () => {
      await start({ rounds: 1, minClients: 3, minAvailable: 4 });
      const { honest } = await fourPeersOneDropping();
      const summary = await coordinator!.finished;
      const [round] = summary.rounds;
      expect(round).toMatchObject({ round: 1, status: 'committed', selected: 4, participants: 3, dropouts: 1 });
      // The mean is over the three updates only: (1·1 + 1·2 + 2·4) / 4 = 2.75.
      expect(summary.weights).toEqual(fedAvgByHand(MODEL.weights, [{ numExamples: 1, value: 1 }, { numExamples: 1, value: 2 }, { numExamples: 2, value: 4 }]));
      for (const peer of honest) expect((await peer.done).code).toBe(closeCodeOf('TRAINING_COMPLETE'));
    });

    it('aborts the round when the dropout leaves fewer than minClients (4), keeping the model bit for bit', async () => {
      await start({ rounds: 1, minClients: 4 });
      const before = coordinator!.globalWeights();
      const { honest, dropperTrain } = await fourPeersOneDropping();
      const summary = await coordinator!.finished;
      const [round] = summary.rounds;
      expect(round).toMatchObject({ round: 1, status: 'aborted', selected: 4, dropouts: 1 });
      expect(round!.participants).toBeLessThan(4);
      expect(round!.reason).toMatch(/minClients is 4/);
      expect(bitsOf(coordinator!.globalWeights())).toEqual(bitsOf(before));
      expect(bitsOf(summary.weights)).toEqual(bitsOf(MODEL.weights));
      // The others hear the outcome, with the unchanged model version and the reason.
      for (const peer of honest) {
        const result = await peer.peer.next('result');
        expect(result).toMatchObject({ round: 1, status: 'aborted', modelVersion: dropperTrain.modelVersion });
        expect(result.reason).toMatch(/minClients is 4/);
      }
      expect(summary.modelVersion).toBe(dropperTrain.modelVersion);
    });
  });

  // The heartbeat tests fake only the coordinator's heartbeat clock (setInterval and Date); the
  // sockets stay real. Each interval is one explicit tick, and WsPeer.roundTrip() is the barrier
  // that shows what the coordinator has read and decided by then: no timing window anywhere.
  describe('heartbeats', () => {
    const heartbeatIntervalMs = 100;
    beforeEach(() => {
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    /** One heartbeat interval: the coordinator's check runs and pings `peers`, which have seen it (and auto-ponged) on return. */
    async function tick(...pinged: WsPeer[]): Promise<void> {
      const pings = pinged.map((peer) => peer.nextPing());
      vi.advanceTimersByTime(heartbeatIntervalMs);
      await Promise.all(pings);
    }

    it('closes a peer that stops answering pings with HEARTBEAT_TIMEOUT at the first check after two silent intervals, and keeps one that answers', async () => {
      await start({ rounds: 1, minClients: 5, heartbeatIntervalMs });
      const silent = await connect({ token: TOKEN, autoPong: false });
      const alive = await connect({ token: TOKEN });
      expect((await silent.hello()).heartbeatIntervalMs).toBe(heartbeatIntervalMs);
      await alive.hello(); // both last heard at t = 0 on the fake clock
      // t = 100 and t = 200: silent for at most two intervals, so still connected.
      for (let check = 1; check <= 2; check++) {
        await tick(silent, alive);
        expect(await alive.roundTrip()).toBe('open');
        expect(await silent.roundTrip()).toBe('open');
      }
      // t = 300: silent for more than two intervals, so closed by this very check.
      await tick(alive);
      expect(await silent.roundTrip()).toBe('closed');
      expect((await silent.closed).code).toBe(closeCodeOf('HEARTBEAT_TIMEOUT'));
      // A peer that answers pings (ws does so automatically) stays connected however long it is idle.
      expect(await alive.roundTrip()).toBe('open');
      for (let check = 0; check < 10; check++) {
        await tick(alive);
        expect(await alive.roundTrip()).toBe('open');
      }
    });

    it("keeps a peer that answers pings through a stall of the coordinator's own event loop", async () => {
      await start({ rounds: 1, minClients: 5, heartbeatIntervalMs });
      const alive = await connect({ token: TOKEN });
      await alive.hello();
      await tick(alive);
      expect(await alive.roundTrip()).toBe('open'); // last heard at t = 100
      // A stall of 6 intervals (as an in-process unmasking of a large cohort is): the clock moves,
      // no check runs, no pong is read. The first check afterwards (t = 800) runs late and must not
      // count that stretch against the peer, though it was last heard 700 ms before.
      vi.setSystemTime(Date.now() + 6 * heartbeatIntervalMs);
      await tick(alive);
      expect(await alive.roundTrip()).toBe('open');
      for (let check = 0; check < 4; check++) {
        await tick(alive);
        expect(await alive.roundTrip()).toBe('open');
      }
    });
  });

  it('closes a peer that sends its update twice with DUPLICATE_MESSAGE; the round still commits', async () => {
    await start({ rounds: 1, minClients: 2 });
    const replayer = await connect();
    await replayer.hello({ numExamples: 3 });
    const other = await connect();
    await other.hello({ numExamples: 1 });
    const train = await replayer.next('train');
    const update = updateFor(train, constantDelta(0.5), 3);
    replayer.send(update);
    replayer.send(update);
    expect((await replayer.closed).code).toBe(closeCodeOf('DUPLICATE_MESSAGE'));
    // The other peer answers only now, so the round was still collecting when the replay came.
    other.send(updateFor(await other.next('train'), constantDelta(0.5), 1));
    const summary = await coordinator!.finished;
    // The replay only closes the connection; the first copy had already been counted.
    expect(summary.rounds[0]).toMatchObject({ status: 'committed', participants: 2 });
  });

  it("drops a straggler's update that arrives after its round's deadline silently and keeps the connection", async () => {
    await start({ rounds: 2, minClients: 2, minAvailable: 3, roundTimeoutMs: 300 });
    const fast = [await scripted({ numExamples: 1, delta: () => constantDelta(1) }), await scripted({ numExamples: 1, delta: () => constantDelta(3) })];
    const straggler = await connect();
    await straggler.hello({ numExamples: 2 });
    const lateTrain = await straggler.next('train');
    // Round 1 ends at its deadline without the straggler, which hears the result...
    const result = await straggler.next('result');
    expect(result).toMatchObject({ round: 1, status: 'committed' });
    // ...and only then sends its round-1 update, with a delta that would move the mean a lot.
    straggler.send(updateFor(lateTrain, constantDelta(1000), 2));
    // It is still connected and selected again: it answers round 2 in time.
    const nextTrain = await straggler.next('train');
    expect(nextTrain.round).toBe(2);
    straggler.send(updateFor(nextTrain, constantDelta(5), 2));
    const summary = await coordinator!.finished;
    expect(summary.rounds.map((r) => [r.status, r.participants, r.dropouts])).toEqual([
      ['committed', 2, 1],
      ['committed', 3, 0],
    ]);
    // Round 1 averaged only the two fast peers, round 2 all three; the late update left no trace.
    const afterRound1 = fedAvgByHand(MODEL.weights, [{ numExamples: 1, value: 1 }, { numExamples: 1, value: 3 }]);
    expect(nextTrain.weights).toEqual(afterRound1);
    expect(summary.weights).toEqual(fedAvgByHand(afterRound1, [{ numExamples: 1, value: 1 }, { numExamples: 1, value: 3 }, { numExamples: 2, value: 5 }]));
    // Open to the very end: closed by the coordinator only when training was complete.
    expect((await straggler.closed).code).toBe(closeCodeOf('TRAINING_COMPLETE'));
    for (const peer of fast) expect(peer.trains.map((t) => t.round)).toEqual([1, 2]);
  });

  describe('model version skip', () => {
    it('sends the weights again to a client of the previous round, because the model changed', async () => {
      await start({ rounds: 2, minClients: 2 });
      const a = await scripted({ numExamples: 1, delta: () => constantDelta(0.25) });
      const b = await scripted({ numExamples: 3, delta: () => constantDelta(-0.75) });
      const summary = await coordinator!.finished;
      expect(summary.rounds.map((r) => r.status)).toEqual(['committed', 'committed']);
      for (const peer of [a, b]) {
        const [first, second] = peer.trains;
        expect(first!.weights).toEqual(MODEL.weights);
        expect(second!.modelVersion).not.toBe(first!.modelVersion);
        // (1·0.25 + 3·(−0.75)) / 4 = −0.5
        expect(second!.weights).toEqual(Float32Array.from(MODEL.weights, (w) => w - 0.5));
      }
    });

    it('omits the weights for clients that hold the current version: after an aborted round, or as announced in hello', async () => {
      await start({ rounds: 2, minClients: 3 });
      // Round 1: x and y wait without answering; z vanishes on train, so the round aborts.
      const x = await connect();
      await x.hello({ numExamples: 1 });
      const y = await connect();
      await y.hello({ numExamples: 1 });
      const z = await connect();
      const zWelcome = await z.hello({ numExamples: 2 });
      const [xTrain1, yTrain1, zTrain1] = await Promise.all([x.next('train'), y.next('train'), z.next('train')]);
      for (const train of [xTrain1, yTrain1, zTrain1]) expect(train.weights).toEqual(MODEL.weights);
      z.terminate();
      expect(await x.next('result')).toMatchObject({ round: 1, status: 'aborted', modelVersion: xTrain1.modelVersion });
      await y.next('result');

      // z comes back announcing the version it received in round 1, which is still current.
      const zAgain = await connect();
      await zAgain.hello({ numExamples: 2, resumeToken: zWelcome.resumeToken, modelVersion: zTrain1.modelVersion });
      const trains2 = await Promise.all([x.next('train'), y.next('train'), zAgain.next('train')]);
      for (const train of trains2) {
        expect(train).toMatchObject({ round: 2, modelVersion: xTrain1.modelVersion });
        expect(train.weights).toBeUndefined();
      }
      // The clients train on the copy they hold; the round commits as usual.
      x.send(updateFor(trains2[0], constantDelta(1), 1));
      y.send(updateFor(trains2[1], constantDelta(1), 1));
      zAgain.send(updateFor(trains2[2], constantDelta(-0.5), 2));
      const summary = await coordinator!.finished;
      expect(summary.rounds.map((r) => r.status)).toEqual(['aborted', 'committed']);
      expect(summary.weights).toEqual(fedAvgByHand(MODEL.weights, [{ numExamples: 1, value: 1 }, { numExamples: 1, value: 1 }, { numExamples: 2, value: -0.5 }]));
    });
  });
});
