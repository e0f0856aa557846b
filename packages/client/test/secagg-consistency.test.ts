/**
 * The consistency round as one real client sees it (Bonawitz et al. CCS'17 §4): a scripted
 * coordinator over real WebSockets plays a full-SecAgg round of three, the other two members being
 * honest `SecAggClient`s, and then tells the truth or lies. An honest client signs the one survivor
 * set it is shown, reveals only when its neighbours signed that same set, and otherwise declines
 * with the reason and sends no `reveal`. With pinned identities it refuses a neighbour whose
 * signing key the app does not trust, before it sends a single share.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  PROTOCOL_VERSION,
  builtinTopology,
  createSeededRandom,
  manifestOfSequential,
  numParams,
  type ClientMessage,
  type ModelDescriptor,
  type SecAggRoundConfig,
} from '@shoal/protocol';
import { SecAggError, naclSigning, survivorsMessage } from '@shoal/secagg';
import { ShoalClient, initBackend, wsTransport, type ShoalClientOptions } from '../src/index.js';
import { startScriptedCoordinator, type ScriptedConnection, type ScriptedCoordinator } from './scripted-coordinator.js';
import { ScriptedPeers } from './secagg-peers.js';

const topology = builtinTopology('logreg', [4], 3);
if (topology.format !== 'shoal-sequential') throw new Error('unreachable');
const MODEL: ModelDescriptor = { topology, manifest: manifestOfSequential(topology) };
const D = numParams(MODEL.manifest);
const ROUND = 1;
const SECAGG: SecAggRoundConfig = { mode: 'secagg', index: 1, threshold: 3, degree: 3, bound: 1_000, scale: 1_000, maxWeight: 1_000, sessionId: 'consistency' };
const EVERYONE = [1, 2, 3];
const seed = (byte: number) => new Uint8Array(32).fill(byte);

/** One real client (index 1) in a round with two scripted peers (2 and 3), run up to the consistency check. */
class Round {
  readonly errors: Error[] = [];
  readonly stop = new AbortController();
  connection!: ScriptedConnection;
  peers!: ScriptedPeers;
  client!: ShoalClient;
  run!: Promise<unknown>;
  /** The client's `masked` frame, once throughMasked() has seen it. */
  masked: Extract<ClientMessage, { type: 'masked' }> | undefined;

  static async start(coordinator: ScriptedCoordinator, options: Partial<ShoalClientOptions> = {}, peerSeeds?: ReadonlyMap<number, Uint8Array>, secagg = SECAGG): Promise<Round> {
    const round = new Round();
    const random = createSeededRandom(3);
    round.client = new ShoalClient({
      url: coordinator.url,
      token: 't',
      transport: wsTransport,
      data: { x: Float32Array.from({ length: 8 * 4 }, () => random.next()), y: Int32Array.from({ length: 8 }, (_, i) => i % 3), featureShape: [4] },
      reconnect: { maxAttempts: 0 },
      ...options,
    });
    round.client.on('error', ({ error }) => round.errors.push(error));
    round.run = round.client.run({ signal: round.stop.signal }).catch((error: unknown) => error);
    round.connection = await coordinator.connection(1);
    await round.connection.next('hello');
    round.connection.send({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, clientId: 'c1', resumeToken: 'r1', model: MODEL, heartbeatIntervalMs: 60_000 });
    round.peers = new ScriptedPeers(SECAGG, ROUND, D, [2, 3], peerSeeds);
    round.connection.send({
      type: 'train',
      round: ROUND,
      modelVersion: 'run:0',
      weights: new Float32Array(D).fill(0.1),
      config: { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      deadlineMs: 60_000,
      secagg,
    });
    return round;
  }

  /** Stages 1–3, honestly: keys, inbox, and every member's masked input. Returns the client's advertisement. */
  async throughMasked() {
    const advertised = await this.connection.next('advertise');
    this.connection.send({ type: 'keys', round: ROUND, neighbours: this.peers.advertise() });
    const shares = await this.connection.next('shares');
    this.peers.share(advertised, 1);
    this.connection.send({ type: 'inbox', round: ROUND, ciphertexts: this.peers.inboxFor(1) });
    await this.peers.mask(shares, 1, D);
    this.masked = await this.connection.next('masked');
    return advertised;
  }

  /** The client's answer once it has one: a confirm or reveal it sent, or its decline. */
  next<T extends 'confirm' | 'reveal'>(type: T): Promise<Extract<ClientMessage, { type: T | 'decline' }>> {
    return this.connection.next<T | 'decline'>(type, 'decline');
  }

  /** Ends the round and the client; returns the types the client sent for the round. */
  async finish(status: 'committed' | 'aborted'): Promise<string[]> {
    this.connection.send({ type: 'result', round: ROUND, status, modelVersion: status === 'committed' ? 'run:1' : 'run:0' });
    this.stop.abort();
    await this.run;
    return this.connection.log.filter((message) => 'round' in message && message.round === ROUND).map((message) => message.type);
  }

  /** The refusal the client reported: a SecAggError REFUSED, which the coordinator's table calls SECAGG_REFUSED. */
  refusal(): SecAggError {
    expect(this.errors).toHaveLength(1);
    const [error] = this.errors;
    expect(error).toBeInstanceOf(SecAggError);
    expect(error).toMatchObject({ code: 'REFUSED', errorCode: 'SECAGG_REFUSED' });
    return error as SecAggError;
  }
}

describe('the consistency round, from one honest client', () => {
  let coordinator: ScriptedCoordinator | undefined;
  beforeAll(async () => {
    await initBackend();
  });
  afterEach(async () => {
    await coordinator?.close();
    coordinator = undefined;
  });

  async function start(options?: Partial<ShoalClientOptions>, peerSeeds?: ReadonlyMap<number, Uint8Array>, secagg?: SecAggRoundConfig): Promise<Round> {
    coordinator = await startScriptedCoordinator(D);
    return Round.start(coordinator, options, peerSeeds, secagg);
  }

  it('sends its masked input without training metrics: the loss and accuracy stay on the device', async () => {
    const round = await start();
    await round.throughMasked();
    expect(round.masked).toBeDefined();
    expect(round.masked).not.toHaveProperty('metrics');
    await round.finish('aborted');
  });

  it('sends its training metrics beside the masked input only when the round asks (secagg.shareMetrics)', async () => {
    const round = await start(undefined, undefined, { ...SECAGG, shareMetrics: true });
    await round.throughMasked();
    expect(round.masked?.metrics).toMatchObject({ loss: expect.any(Number) });
    await round.finish('aborted');
  });

  it('signs the announced survivor set with its advertised key, then reveals once its neighbours signed the same set', async () => {
    const round = await start();
    const advertised = await round.throughMasked();
    round.connection.send({ type: 'survivors', round: ROUND, survivors: EVERYONE });
    const confirm = await round.next('confirm');
    if (confirm.type !== 'confirm') throw new Error(`declined: ${confirm.reason}`);
    const message = survivorsMessage({ sessionId: SECAGG.sessionId, round: ROUND }, EVERYONE);
    expect(naclSigning.verify(advertised.signingKey, message, confirm.signature)).toBe(true);

    round.connection.send({ type: 'unmask', round: ROUND, signatures: round.peers.confirm(EVERYONE) });
    const reveal = await round.next('reveal');
    if (reveal.type !== 'reveal') throw new Error(`declined: ${reveal.reason}`);
    // Everyone survived: shares of every self-mask seed (its own included), of no mask key.
    expect(reveal.selfMaskShares.map((entry) => entry.of)).toEqual(EVERYONE);
    expect(reveal.maskKeyShares).toEqual([]);
    expect(await round.finish('committed')).toEqual(['advertise', 'shares', 'masked', 'confirm', 'reveal']);
    expect(round.errors).toEqual([]);
  });

  it.each<[string, readonly number[], RegExp]>([
    ['leaves the client out', [2, 3], /this client \(1\) is not announced as a survivor/],
    ['is smaller than the threshold', [1], /1 survivors announced; the threshold is 3/],
    ['is not in ascending order', [3, 1, 2], /not strictly ascending/],
  ])('refuses to sign a survivor set that %s: declines with the reason, sends no confirm or reveal', async (_what, survivors, reason) => {
    const round = await start();
    await round.throughMasked();
    round.connection.send({ type: 'survivors', round: ROUND, survivors });
    const answer = await round.next('confirm');
    expect(answer).toMatchObject({ type: 'decline', round: ROUND, reason: expect.stringMatching(reason) });
    expect(round.refusal().message).toMatch(reason);
    expect(await round.finish('aborted')).toEqual(['advertise', 'shares', 'masked', 'decline']);
  });

  it('refuses to reveal when its neighbours signed another survivor set (the coordinator equivocated)', async () => {
    const round = await start();
    await round.throughMasked();
    round.connection.send({ type: 'survivors', round: ROUND, survivors: EVERYONE });
    expect(await round.next('confirm')).toMatchObject({ type: 'confirm' });
    // The peers were shown another U3 (one naming a client 4 they do not know) and signed that:
    // their signatures are genuine, but not of the set this client signed.
    round.connection.send({ type: 'unmask', round: ROUND, signatures: round.peers.confirm([...EVERYONE, 4]) });
    const answer = await round.next('reveal');
    expect(answer).toMatchObject({ type: 'decline', reason: expect.stringMatching(/survivor-set signature of [23] does not verify on the set this client signed/) });
    round.refusal();
    expect(await round.finish('aborted')).toEqual(['advertise', 'shares', 'masked', 'confirm', 'decline']);
  });

  it('refuses to reveal on a forged signature', async () => {
    const round = await start();
    await round.throughMasked();
    round.connection.send({ type: 'survivors', round: ROUND, survivors: EVERYONE });
    expect(await round.next('confirm')).toMatchObject({ type: 'confirm' });
    const signatures = round.peers.confirm(EVERYONE);
    const forged = signatures[1]!.signature.slice();
    forged[10]! ^= 0x40;
    round.connection.send({ type: 'unmask', round: ROUND, signatures: [signatures[0]!, { index: 3, signature: forged }] });
    const answer = await round.next('reveal');
    expect(answer).toMatchObject({ type: 'decline', reason: expect.stringContaining('survivor-set signature of 3 does not verify') });
    round.refusal();
    expect(await round.finish('aborted')).toEqual(['advertise', 'shares', 'masked', 'confirm', 'decline']);
  });

  it('refuses to reveal when too few of its neighbourhood signed (signatures withheld)', async () => {
    const round = await start();
    await round.throughMasked();
    round.connection.send({ type: 'survivors', round: ROUND, survivors: EVERYONE });
    expect(await round.next('confirm')).toMatchObject({ type: 'confirm' });
    round.connection.send({ type: 'unmask', round: ROUND, signatures: [] });
    expect(await round.next('reveal')).toMatchObject({ type: 'decline', reason: expect.stringContaining('1 of its neighbourhood signed the survivor set; the threshold is 3') });
    round.refusal();
    expect(await round.finish('aborted')).toEqual(['advertise', 'shares', 'masked', 'confirm', 'decline']);
  });

  it('with a pinned identity: enrols it, advertises it as its signing key and signs the round with it', async () => {
    const identitySeed = seed(1);
    const round = await start({ identitySeed, trustedIdentityKeys: [2, 3].map((index) => naclSigning.keyPair(seed(index)).publicKey) }, new Map([[2, seed(2)], [3, seed(3)]]));
    const identityKey = naclSigning.keyPair(identitySeed).publicKey;
    expect(round.connection.log[0]).toMatchObject({ type: 'hello', identityKey });
    const advertised = await round.throughMasked();
    expect(advertised.signingKey).toEqual(identityKey);
    round.connection.send({ type: 'survivors', round: ROUND, survivors: EVERYONE });
    expect(await round.next('confirm')).toMatchObject({ type: 'confirm' });
    round.connection.send({ type: 'unmask', round: ROUND, signatures: round.peers.confirm(EVERYONE) });
    expect(await round.next('reveal')).toMatchObject({ type: 'reveal' });
    expect(await round.finish('committed')).toEqual(['advertise', 'shares', 'masked', 'confirm', 'reveal']);
  });

  it('with trusted identity keys: declines at once when a neighbour signs with a key the app does not trust, and sends no share', async () => {
    // Peer 3 signs with a fresh per-round key, so a coordinator could have made it up.
    const round = await start({ identitySeed: seed(1), trustedIdentityKeys: [naclSigning.keyPair(seed(2)).publicKey] }, new Map([[2, seed(2)]]));
    await round.connection.next('advertise');
    round.connection.send({ type: 'keys', round: ROUND, neighbours: round.peers.advertise() });
    expect(await round.connection.next('decline')).toMatchObject({ round: ROUND, reason: 'neighbour 3 signs with a key that is not a trusted identity' });
    round.refusal();
    expect(await round.finish('aborted')).toEqual(['advertise', 'decline']);
  });

  it('with trusted identity keys: declines a neighbour advertisement whose signature does not verify, and sends no share', async () => {
    const round = await start({ trustedIdentityKeys: [2, 3].map((index) => naclSigning.keyPair(seed(index)).publicKey) }, new Map([[2, seed(2)], [3, seed(3)]]));
    await round.connection.next('advertise');
    const [first, second] = round.peers.advertise();
    const forged = first!.signature.slice();
    forged[0]! ^= 1;
    round.connection.send({ type: 'keys', round: ROUND, neighbours: [{ ...first!, signature: forged }, second!] });
    expect(await round.connection.next('decline')).toMatchObject({ reason: `the advertisement of neighbour ${first!.index} does not carry its signature` });
    round.refusal();
    expect(await round.finish('aborted')).toEqual(['advertise', 'decline']);
  });
});
