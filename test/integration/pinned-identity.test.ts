/**
 * Pinned identities end to end: a real coordinator and four real Node ShoalClients over loopback
 * WebSockets run one full-SecAgg round in which every client has an `identitySeed`. A client enrols
 * its identity key in `hello`, signs the round with it, and the round commits; the coordinator
 * holds each client to the key it enrolled; a client whose `trustedIdentityKeys` leave out one
 * member's key declines the round before it shares anything, and the others commit without it.
 */
import { setMaxListeners } from 'node:events';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ShoalClient, initBackend, wsTransport, type ClientTransport } from '@shoal/client';
import { builtinInitialModel, startCoordinator, type CoordinatorHandle, type RoundMetrics } from '@shoal/coordinator';
import { createSeededRandom, decodeClientMessage, encodeFrame, numParams, type ClientMessage } from '@shoal/protocol';
import { SecAggError, naclSigning } from '@shoal/secagg';
import { fedAvg } from '@shoal/strategy';

const TOKEN = 'identity-token';
const COHORT = 4;
const MODEL = builtinInitialModel('logreg', [4], 3, 0);
const D = numParams(MODEL.descriptor.manifest);
const seedOf = (client: number) => new Uint8Array(32).fill(client + 1);
const keyOf = (client: number) => naclSigning.keyPair(seedOf(client)).publicKey;
/**
 * Shoal close codes other than TRAINING_COMPLETE (4013). The end of training races with the test's
 * own stop (a 1000 close), so only these say anything.
 */
const refusals = (closes: readonly number[]) => closes.filter((code) => code >= 4000 && code !== 4013);

/** What one client sent and how its connections closed, through the real WebSocket transport. */
interface Observed {
  readonly sent: ClientMessage[];
  readonly closes: number[];
}

/** The real transport, watched; `rewrite` may change a message before it is sent. */
function watchedTransport(observed: Observed, rewrite: (message: ClientMessage) => ClientMessage = (message) => message): ClientTransport {
  return {
    async connect(url, token, signal) {
      const connection = await wsTransport.connect(url, token, signal);
      return {
        send(frame) {
          const decoded = decodeClientMessage(frame, { numParams: D, secaggDegree: COHORT });
          if (!decoded.ok) throw new Error(`the client sent an invalid frame: ${decoded.reason}`);
          const message = rewrite(decoded.message);
          observed.sent.push(message);
          connection.send(message === decoded.message ? frame : encodeFrame(message));
        },
        close: (code, reason) => connection.close(code, reason),
        onFrame: (handler) => connection.onFrame(handler),
        onClose: (handler) =>
          connection.onClose((code, reason) => {
            observed.closes.push(code);
            handler(code, reason);
          }),
      };
    },
  };
}

describe('pinned identities with a real coordinator', () => {
  let coordinator: CoordinatorHandle | undefined;
  beforeAll(async () => {
    await initBackend();
  });
  afterEach(async () => {
    await coordinator?.close();
    coordinator = undefined;
  });

  /**
   * Runs one full-SecAgg round of four clients, client i with identity seed i, trusting
   * `trusted(i)`; client i's outgoing messages pass through `rewrite(i)`.
   */
  async function round(trusted: (client: number) => readonly Uint8Array[], rewrite: (client: number) => ((message: ClientMessage) => ClientMessage) | undefined = () => undefined) {
    const rounds: RoundMetrics[] = [];
    coordinator = await startCoordinator({
      model: MODEL,
      tokens: [TOKEN],
      rounds: 1,
      clientsPerRound: COHORT,
      minClients: 3,
      minAvailable: COHORT,
      heartbeatIntervalMs: 60_000,
      train: { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
      // Full SecAgg of 4 with threshold 3: the round survives one lost client.
      secagg: { mode: 'secagg', threshold: 3, maxDropout: 0.25, stageTimeoutMs: 30_000 },
      onRound: (metrics) => rounds.push(metrics),
    });
    const stop = new AbortController();
    setMaxListeners(4 * COHORT, stop.signal);
    const observed: Observed[] = [];
    const errors: Error[][] = [];
    const runs = Array.from({ length: COHORT }, (_, i) => {
      const random = createSeededRandom(i);
      observed.push({ sent: [], closes: [] });
      errors.push([]);
      const client = new ShoalClient({
        url: coordinator!.url,
        token: TOKEN,
        data: { x: Float32Array.from({ length: 12 * 4 }, () => random.next()), y: Int32Array.from({ length: 12 }, (_, j) => j % 3), featureShape: [4] },
        transport: watchedTransport(observed[i]!, rewrite(i)),
        reconnect: { initialDelayMs: 600_000 }, // a closed client stays away for the rest of the test
        identitySeed: seedOf(i),
        trustedIdentityKeys: trusted(i),
      });
      client.on('error', ({ error }) => errors[i]!.push(error));
      return client.run({ signal: stop.signal });
    });
    const summary = await coordinator.finished;
    stop.abort();
    await Promise.allSettled(runs);
    return { record: rounds[0]!, summary, observed, errors };
  }

  const everyone = () => Array.from({ length: COHORT }, (_, i) => keyOf(i));

  it('each client enrols its identity key in hello and signs the round with it; the round commits', async () => {
    const { record, summary, observed, errors } = await round(everyone);
    expect(record, record.reason).toMatchObject({ status: 'committed', participants: COHORT });
    expect(summary.weights).not.toEqual(MODEL.weights);
    for (const [i, { sent, closes }] of observed.entries()) {
      expect(sent[0]).toMatchObject({ type: 'hello', identityKey: keyOf(i) });
      expect(sent.find((message) => message.type === 'advertise')).toMatchObject({ signingKey: keyOf(i) });
      expect(sent.map((message) => message.type)).toEqual(['hello', 'advertise', 'shares', 'masked', 'confirm', 'reveal']);
      expect(refusals(closes)).toEqual([]);
    }
    expect(errors.flat()).toEqual([]);
  });

  it('the coordinator holds a client to the key it enrolled: signing with another closes it with SECAGG_VIOLATION (4014), and the round commits without it', async () => {
    // Client 3 enrols someone else's key (as a client that lost its seed, or an impostor would) but signs with its own.
    const enrolOther = (client: number) => (client === 3 ? (message: ClientMessage) => (message.type === 'hello' ? { ...message, identityKey: naclSigning.keyPair(new Uint8Array(32).fill(99)).publicKey } : message) : undefined);
    const { record, observed } = await round(everyone, enrolOther);
    expect(observed[3]!.closes[0]).toBe(4014);
    expect(observed[3]!.sent.map((message) => message.type)).toEqual(['hello', 'advertise']);
    expect(record, record.reason).toMatchObject({ status: 'committed', participants: 3 });
    expect(record.secagg).toMatchObject({ dropouts: { advertise: 1, share: 0, masked: 0, confirm: 0, unmask: 0 } });
    for (const { sent } of observed.slice(0, 3)) expect(sent.map((message) => message.type)).toContain('reveal');
  });

  it('a client whose trusted identity keys leave out a member declines at the keys and shares nothing; the others commit without it', async () => {
    // Client 0 trusts clients 1 and 2 only: client 3's key, for all it knows, is the coordinator's invention.
    const { record, observed, errors } = await round((client) => (client === 0 ? [keyOf(1), keyOf(2)] : everyone()));
    const sent = observed[0]!.sent;
    expect(sent.map((message) => message.type)).toEqual(['hello', 'advertise', 'decline']);
    expect(sent[2]).toMatchObject({ type: 'decline', reason: expect.stringMatching(/^neighbour \d+ signs with a key that is not a trusted identity$/) });
    expect(errors[0]).toEqual([expect.any(SecAggError)]);
    expect(errors[0]![0]).toMatchObject({ code: 'REFUSED', errorCode: 'SECAGG_REFUSED' });
    expect(refusals(observed[0]!.closes)).toEqual([]); // a refusal is a decline, not a closed connection
    expect(record, record.reason).toMatchObject({ status: 'committed', participants: 3 });
    expect(record.secagg).toMatchObject({ dropouts: { advertise: 0, share: 1, masked: 0, confirm: 0, unmask: 0 } });
  });
});
