/**
 * A lying coordinator against real clients (Bonawitz et al. CCS'17 §4, the consistency check): the
 * coordinator is written here, a raw `ws` WebSocketServer on 127.0.0.1 that speaks the protocol
 * with `encodeFrame` / `decodeClientMessage`, and four real Node `ShoalClient`s train a tiny model
 * and run a full-SecAgg round with it over real WebSockets. Up to the masked inputs it is honest;
 * at the consistency check it lies:
 *   (a) it shows one client a survivor set without client 4 (as if 4 had dropped, so it could ask
 *       for 4's mask key there while the others reveal 4's self mask), then forwards every
 *       survivor's signature as it was made;
 *   (b) it shows everyone the same set but forwards to each client one forged signature.
 * Every honest client must refuse: it sends `decline` whose reason names the refusal, and never
 * sends `reveal`. With no lie, the same coordinator gets every client's `reveal` (the control).
 *
 * Every wait is for a message; the clock plays no part.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { ShoalClient, initBackend } from '@shoal/client';
import {
  PROTOCOL_VERSION,
  builtinTopology,
  createSeededRandom,
  manifestOfSequential,
  numParams,
  type ModelDescriptor,
  type NeighbourKeys,
  type SecAggRoundConfig,
} from '@shoal/protocol';
import { SecAggError, deriveSecAggParams } from '@shoal/secagg';
import { ClientConnection } from '@shoal/testkit';

const topology = builtinTopology('logreg', [4], 3);
if (topology.format !== 'shoal-sequential') throw new Error('unreachable');
const MODEL: ModelDescriptor = { topology, manifest: manifestOfSequential(topology) };
const D = numParams(MODEL.manifest); // 4·3 + 3 = 15
const COHORT = 4;
const ROUND = 1;
const INDICES = Array.from({ length: COHORT }, (_, i) => i + 1);
/** Full SecAgg of 4: every client a neighbour of every other, threshold 3. */
const PARAMS = deriveSecAggParams({ mode: 'secagg', cohortSize: COHORT, numParams: D, threshold: 3, maxDropout: 0.25, bound: 1_000, maxWeight: 1_000 });
const SECAGG = (index: number): SecAggRoundConfig => ({
  mode: 'secagg',
  index,
  threshold: PARAMS.threshold,
  degree: PARAMS.degree,
  bound: PARAMS.bound,
  scale: PARAMS.scale,
  maxWeight: PARAMS.maxWeight,
  sessionId: 'lying-coordinator',
});



/** What the lie at the consistency check does. */
interface Lie {
  /** The survivor set shown to the client with this index. */
  readonly survivorsFor: (index: number) => readonly number[];
  /** The signatures forwarded to the client with this index, given every confirmation received. */
  readonly signaturesFor: (index: number, confirmed: ReadonlyMap<number, Uint8Array>) => { index: number; signature: Uint8Array }[];
}

const honestSignatures = (index: number, confirmed: ReadonlyMap<number, Uint8Array>) =>
  [...confirmed].filter(([from]) => from !== index).map(([from, signature]) => ({ index: from, signature }));

const HONEST: Lie = { survivorsFor: () => INDICES, signaturesFor: honestSignatures };

/**
 * (a) Equivocation: client 3 is told that 4 dropped out; clients 1, 2 and 4 that everyone
 * survived. Each signs what it was shown, and every signature is forwarded as made.
 */
const TWO_SETS: Lie = { survivorsFor: (index) => (index === 3 ? [1, 2, 3] : INDICES), signaturesFor: honestSignatures };

/** (b) Everyone is shown the same set, but the first signature forwarded to each client is forged (one bit flipped). */
const FORGED: Lie = {
  survivorsFor: () => INDICES,
  signaturesFor: (index, confirmed) =>
    honestSignatures(index, confirmed).map((entry, i) => {
      if (i > 0) return entry;
      const signature = entry.signature.slice();
      signature[17]! ^= 0x08;
      return { index: entry.index, signature };
    }),
};

/** Real Node clients, each training a tiny logreg on its own 12 examples. */
function startClients(url: string, stop: AbortSignal): { clients: ShoalClient[]; errors: Error[][]; runs: Promise<unknown>[] } {
  const errors: Error[][] = INDICES.map(() => []);
  const clients = INDICES.map((index, i) => {
    const random = createSeededRandom(index);
    const client = new ShoalClient({
      url,
      token: `t${index}`,
      data: { x: Float32Array.from({ length: 12 * 4 }, () => random.next()), y: Int32Array.from({ length: 12 }, (_, j) => j % 3), featureShape: [4] },
      reconnect: { maxAttempts: 0 },
    });
    client.on('error', ({ error }) => errors[i]!.push(error));
    return client;
  });
  const runs = clients.map((client) => client.run({ signal: stop }).catch((error: unknown) => error));
  return { clients, errors, runs };
}

/**
 * Plays one full-SecAgg round with the connected members, honestly through the masked inputs,
 * then the consistency check with `lie`. Returns, per member, its answer to `survivors` and then
 * (when it confirmed) its answer to `unmask`.
 */
async function playRound(members: readonly ClientConnection[], lie: Lie) {
  for (const [i, member] of members.entries()) {
    await member.next('hello');
    member.send({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, clientId: `c${i + 1}`, resumeToken: `r${i + 1}`, model: MODEL, heartbeatIntervalMs: 600_000 });
  }
  const weights = new Float32Array(D).fill(0.05);
  const config = { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;
  for (const [i, member] of members.entries()) {
    member.send({ type: 'train', round: ROUND, modelVersion: 'lie:0', weights, config, deadlineMs: 600_000, secagg: SECAGG(i + 1) });
  }

  // Stage 1: every advertisement, forwarded to every other member as it was signed.
  const advertised: NeighbourKeys[] = [];
  for (const [i, member] of members.entries()) {
    const { type: _type, round: _round, ...keys } = await member.next('advertise');
    advertised.push({ index: i + 1, ...keys });
  }
  for (const [i, member] of members.entries()) member.send({ type: 'keys', round: ROUND, neighbours: advertised.filter((entry) => entry.index !== i + 1) });

  // Stage 2: each share box delivered to its recipient.
  const boxesTo = new Map<number, { from: number; box: Uint8Array }[]>(INDICES.map((index) => [index, []]));
  for (const [i, member] of members.entries()) {
    for (const { to, box } of (await member.next('shares')).ciphertexts) boxesTo.get(to)!.push({ from: i + 1, box });
  }
  for (const [i, member] of members.entries()) member.send({ type: 'inbox', round: ROUND, ciphertexts: boxesTo.get(i + 1)! });

  // Stage 3: every masked input (the clients train first).
  for (const member of members) expect(await member.next('masked')).toMatchObject({ round: ROUND, modelVersion: 'lie:0' });

  // Stage 4, the consistency check, with the lie.
  for (const [i, member] of members.entries()) member.send({ type: 'survivors', round: ROUND, survivors: lie.survivorsFor(i + 1) });
  const confirmed = new Map<number, Uint8Array>();
  const confirmAnswers = await Promise.all(members.map((member) => member.next('confirm', 'decline')));
  for (const [i, answer] of confirmAnswers.entries()) if (answer.type === 'confirm') confirmed.set(i + 1, answer.signature);

  // Stage 5: each member that confirmed gets the signatures the lie picks, and answers.
  const unmaskAnswers = await Promise.all(
    members.map(async (member, i) => {
      if (!confirmed.has(i + 1)) return undefined;
      member.send({ type: 'unmask', round: ROUND, signatures: lie.signaturesFor(i + 1, confirmed) });
      return member.next('reveal', 'decline');
    }),
  );
  return { confirmAnswers, unmaskAnswers };
}

describe('a lying coordinator at the consistency check, against real Node clients over WebSockets', () => {
  let wss: WebSocketServer | undefined;
  let stop: AbortController | undefined;
  let runs: Promise<unknown>[] = [];

  beforeAll(async () => {
    await initBackend();
  });
  afterEach(async () => {
    stop?.abort();
    await Promise.all(runs);
    if (wss) {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss!.close(() => resolve()));
    }
    wss = undefined;
    stop = undefined;
    runs = [];
  });

  /** Starts the lying coordinator and the clients; resolves with the members in connection order. */
  async function start() {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await once(wss, 'listening');
    const members: ClientConnection[] = [];
    let connected: () => void = () => {};
    const allConnected = new Promise<void>((resolve) => (connected = resolve));
    wss.on('connection', (ws) => {
      members.push(new ClientConnection(ws, { numParams: D, secaggDegree: COHORT }));
      if (members.length === COHORT) connected();
    });
    stop = new AbortController();
    const started = startClients(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, stop.signal);
    runs = started.runs;
    await allConnected;
    return { members, clients: started.clients, errors: started.errors };
  }

  /**
   * Ends the round with an aborted result and waits until every client has handled it (its
   * `roundEnd`: the client is done with the round and will send nothing more for it); returns
   * what each member sent for the round.
   */
  async function finish(members: readonly ClientConnection[], clients: readonly ShoalClient[]): Promise<string[][]> {
    const ended = clients.map((client) => new Promise<void>((resolve) => client.on('roundEnd', ({ round, status }) => round === ROUND && status === 'aborted' && resolve())));
    for (const member of members) member.send({ type: 'result', round: ROUND, status: 'aborted', modelVersion: 'lie:0', reason: 'the consistency check failed' });
    await Promise.all(ended);
    return members.map((member) => member.sentFor(ROUND));
  }

  it('control: told the truth, every client confirms and reveals', async () => {
    const { members, errors } = await start();
    const { confirmAnswers, unmaskAnswers } = await playRound(members, HONEST);
    expect(confirmAnswers.map((answer) => answer.type)).toEqual(['confirm', 'confirm', 'confirm', 'confirm']);
    expect(unmaskAnswers.map((answer) => answer?.type)).toEqual(['reveal', 'reveal', 'reveal', 'reveal']);
    for (const answer of unmaskAnswers) {
      // Everyone survived: each reveals a share of every self-mask seed, of no mask key.
      if (answer?.type !== 'reveal') throw new Error('unreachable');
      expect(answer.selfMaskShares.map((entry) => entry.of)).toEqual(INDICES);
      expect(answer.maskKeyShares).toEqual([]);
    }
    expect(errors.flat()).toEqual([]);
  });

  it('(a) two survivor sets: every client declines, naming the signature that does not verify on its set, and none reveals', async () => {
    const { members, clients, errors } = await start();
    const { confirmAnswers, unmaskAnswers } = await playRound(members, TWO_SETS);
    // Each signs the set it was shown: all four are in their own set, of at least the threshold.
    expect(confirmAnswers.map((answer) => answer.type)).toEqual(['confirm', 'confirm', 'confirm', 'confirm']);
    for (const [i, answer] of unmaskAnswers.entries()) {
      // 1, 2 and 4 find 3's signature (of {1,2,3}) invalid on {1,2,3,4}; 3 finds 1's invalid on {1,2,3}.
      const liar = i + 1 === 3 ? 1 : 3;
      expect(answer, `client ${i + 1}`).toMatchObject({ type: 'decline', round: ROUND, reason: `the survivor-set signature of ${liar} does not verify on the set this client signed` });
    }
    for (const sent of await finish(members, clients)) expect(sent).toEqual(['advertise', 'shares', 'masked', 'confirm', 'decline']);
    for (const clientErrors of errors) {
      expect(clientErrors).toHaveLength(1);
      expect(clientErrors[0]).toBeInstanceOf(SecAggError);
      expect(clientErrors[0]).toMatchObject({ code: 'REFUSED', errorCode: 'SECAGG_REFUSED' });
    }
  });

  it('(b) a forged signature: every client declines, naming the forged one, and none reveals', async () => {
    const { members, clients, errors } = await start();
    const { confirmAnswers, unmaskAnswers } = await playRound(members, FORGED);
    expect(confirmAnswers.map((answer) => answer.type)).toEqual(['confirm', 'confirm', 'confirm', 'confirm']);
    for (const [i, answer] of unmaskAnswers.entries()) {
      const forgedFrom = i === 0 ? 2 : 1; // the first signature forwarded to each client
      expect(answer, `client ${i + 1}`).toMatchObject({ type: 'decline', round: ROUND, reason: `the survivor-set signature of ${forgedFrom} does not verify on the set this client signed` });
    }
    for (const sent of await finish(members, clients)) expect(sent).toEqual(['advertise', 'shares', 'masked', 'confirm', 'decline']);
    for (const clientErrors of errors) expect(clientErrors).toEqual([expect.objectContaining({ code: 'REFUSED', errorCode: 'SECAGG_REFUSED' })]);
  });
});
