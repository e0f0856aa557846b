/**
 * The client-enforced privacy policy (docs/privacy.md, "Privacy policy") with real Node
 * ShoalClients over WebSockets on 127.0.0.1:
 * - against a real coordinator running plain rounds: a client whose policy requires secure
 *   aggregation declines (event `policyDeclined`, a `decline` on the wire, no `update`), while a
 *   client holding the round only to the promise trains and sends its update;
 * - against lying coordinators written here (raw `ws` servers, as in lying-coordinator.test.ts):
 *   one that keeps its promised noise multiplier in round 1 and states a lower one in round 2 gets
 *   an update, then a decline; one that states the promised z under distributed DP but tells the
 *   clients to add less noise is caught by the z the client verifies itself, before any SecAgg key
 *   leaves the device.
 * Against the real coordinator the promise is fetched from its `/.well-known/shoal-privacy.json`
 * with the platform's fetch (and, for the control client, handed over through `fetchPromise`).
 * Every wait is for a message or an event; the clock plays no part.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { ShoalClient, defaultPromiseFetch, fetchPromise, initBackend, wsTransport, type ClientEvents, type ClientPolicy, type ClientTransport } from '@shoal/client';
import { builtinInitialModel, privacyPromise, resolveOptions, startCoordinator, type CoordinatorHandle, type CoordinatorOptions } from '@shoal/coordinator';
import {
  PROTOCOL_VERSION,
  createSeededRandom,
  decodeFrame,
  numParams,
  type PrivacyPromise,
  type TrainMessage,
} from '@shoal/protocol';
import { fedAvg } from '@shoal/strategy';
import { ClientConnection } from '@shoal/testkit';

const TOKEN = 'policy-token';
const MODEL = builtinInitialModel('logreg', [4], 3, 5);
const D = numParams(MODEL.descriptor.manifest);
const TRAIN = { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;

function dataset(seed: number) {
  const random = createSeededRandom(seed);
  return { x: Float32Array.from({ length: 12 * 4 }, () => random.next()), y: Int32Array.from({ length: 12 }, (_, i) => i % 3), featureShape: [4] };
}

/** Every message a client put on the wire, decoded. */
function recordingTransport(sent: Record<string, unknown>[]): ClientTransport {
  return {
    async connect(url, token, signal) {
      const connection = await wsTransport.connect(url, token, signal);
      return {
        send(frame) {
          sent.push(decodeFrame(frame) as Record<string, unknown>);
          connection.send(frame);
        },
        close: (code, reason) => connection.close(code, reason),
        onFrame: (handler) => connection.onFrame(handler),
        onClose: (handler) => connection.onClose(handler),
      };
    },
  };
}

/** A client with `policy`; its promise is `promise`, handed over through JSON as over HTTP, or (`served`) fetched from the coordinator with the platform's fetch. */
function policyClient(url: string, seed: number, policy: ClientPolicy, promise: PrivacyPromise | 'served', transport?: ClientTransport) {
  const declined: ClientEvents['policyDeclined'][] = [];
  const fetched: string[] = [];
  const client = new ShoalClient({
    url,
    token: TOKEN,
    data: dataset(seed),
    shuffleSeed: seed,
    reconnect: { maxAttempts: 0 },
    policy,
    ...(promise === 'served'
      ? {}
      : {
          fetchPromise: async (target: string) => {
            fetched.push(target);
            return JSON.parse(JSON.stringify(promise));
          },
        }),
    ...(transport ? { transport } : {}),
  });
  client.on('policyDeclined', (event) => declined.push(event));
  return { client, declined, fetched };
}

beforeAll(async () => {
  await initBackend();
});

describe('a policy against a real coordinator', () => {
  let handle: CoordinatorHandle | undefined;
  afterEach(async () => {
    await handle?.close();
    handle = undefined;
  });

  it('a client requiring secure aggregation declines a plain round and sends nothing of its update; one held to the promise trains', async () => {
    const options: CoordinatorOptions = { model: MODEL, tokens: [TOKEN], rounds: 1, clientsPerRound: 2, minClients: 1, minAvailable: 2, roundTimeoutMs: 60_000, heartbeatIntervalMs: 60_000, train: TRAIN, strategy: fedAvg() };
    handle = await startCoordinator(options);
    const promise = privacyPromise(resolveOptions(options));
    const strictWire: Record<string, unknown>[] = [];
    // The strict client reads the promise the coordinator serves (and requires it: a failed fetch would be a second reason).
    const strict = policyClient(handle.url, 1, { requireSecureAggregation: true, requirePromise: true }, 'served', recordingTransport(strictWire));
    const lenientWire: Record<string, unknown>[] = [];
    const lenient = policyClient(handle.url, 2, {}, promise, recordingTransport(lenientWire));
    await Promise.all([strict.client.run(), lenient.client.run()]);
    const summary = await handle.finished;

    expect(lenient.fetched).toEqual([`http://127.0.0.1:${handle.port}/.well-known/shoal-privacy.json`]);
    expect(await fetchPromise(handle.url, defaultPromiseFetch, new AbortController().signal)).toEqual({ promise });
    expect(strict.declined).toEqual([{ round: 1, kind: 'train', reasons: ['the round is not securely aggregated; the policy requires secure aggregation'] }]);
    expect(strictWire.map((message) => message['type'])).toEqual(['hello', 'decline']);
    expect(strictWire[1]).toMatchObject({ round: 1, reason: 'policy: the round is not securely aggregated; the policy requires secure aggregation' });

    expect(lenient.declined).toEqual([]);
    expect(lenientWire.map((message) => message['type'])).toEqual(['hello', 'update']);
    expect(summary.rounds[0]).toMatchObject({ status: 'committed', selected: 2, participants: 1, dropouts: 1 });
  }, 60_000);
});


describe('a policy against lying coordinators', () => {
  let wss: WebSocketServer | undefined;
  afterEach(async () => {
    for (const ws of wss?.clients ?? []) ws.terminate();
    await new Promise<void>((resolve) => (wss ? wss.close(() => resolve()) : resolve()));
    wss = undefined;
  });

  /** A raw coordinator on 127.0.0.1 and one connected member that said hello and got welcome. */
  async function lyingCoordinator(promise: PrivacyPromise, policy: ClientPolicy) {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
    const connected = once(wss, 'connection') as Promise<[WebSocket]>;
    const { client, declined } = policyClient(url, 3, policy, promise);
    const errors: Error[] = [];
    client.on('error', ({ error }) => errors.push(error));
    const run = client.run();
    const member = new ClientConnection((await connected)[0], { numParams: D, secaggDegree: 4 });
    const hello = await member.next('hello');
    expect(hello.capabilities).toContain('round-privacy');
    member.send({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, clientId: 'c1', resumeToken: 'r1', model: MODEL.descriptor, heartbeatIntervalMs: 600_000 });
    const finish = async () => {
      member.ws.close(4013, 'training complete');
      await run;
    };
    return { member, declined, errors, finish };
  }

  const centralPromise = (z: number): PrivacyPromise => ({
    formatVersion: 1,
    secureAggregation: { mode: 'off' },
    differentialPrivacy: { mode: 'central', noiseMultiplier: z, clipNorm: 1, adaptiveClipping: false, delta: 1e-5, epsilonBudget: 10 },
    metricsInClear: true,
    evaluationInClear: false,
    leavesDevice: ['the model update, in the clear'],
    retention: { keepCheckpoints: 3, maxCheckpointAgeMs: null, resumeTokenTtlMs: 600_000, roundsPerClient: 1_000 },
  });

  it('a coordinator that lowers the noise multiplier below its promise mid-run gets a decline, not an update', async () => {
    const { member, declined, errors, finish } = await lyingCoordinator(centralPromise(1), {});
    const weights = new Float32Array(D).fill(0.05);
    const train = (round: number, z: number): TrainMessage => ({
      type: 'train',
      round,
      modelVersion: `lie:${round - 1}`,
      weights,
      config: { ...TRAIN, clipNorm: 1 },
      deadlineMs: 600_000,
      privacy: { dpMode: 'central', noiseMultiplier: z, epsilonSpent: round - 1, epsilonBudget: 10, delta: 1e-5 },
    });
    // Round 1 keeps the promise: the client trains and sends its update.
    member.send(train(1, 1));
    expect(await member.next('update', 'decline')).toMatchObject({ type: 'update', round: 1 });
    member.send({ type: 'result', round: 1, status: 'committed', modelVersion: 'lie:1' });
    // Round 2 quietly halves z.
    member.send(train(2, 0.5));
    expect(await member.next('update', 'decline')).toMatchObject({ type: 'decline', round: 2, reason: "policy: the round's noise multiplier 0.5 is below the promised 1" });
    member.send({ type: 'result', round: 2, status: 'aborted', modelVersion: 'lie:1' });
    await finish();
    expect(member.sentFor(2)).toEqual(['decline']);
    expect(declined).toEqual([{ round: 2, kind: 'train', reasons: ["the round's noise multiplier 0.5 is below the promised 1"] }]);
    expect(errors).toEqual([]);
  }, 60_000);

  it('under distributed DP the client checks the noise it is told to add, not the z the coordinator states', async () => {
    const promise: PrivacyPromise = {
      ...centralPromise(1),
      secureAggregation: { mode: 'secagg' },
      differentialPrivacy: { mode: 'distributed', noiseMultiplier: 1, clipNorm: 1, adaptiveClipping: false, delta: 1e-5, epsilonBudget: 10 },
      metricsInClear: false,
    };
    const { member, declined, finish } = await lyingCoordinator(promise, { minNoiseMultiplier: 1, requireSecureAggregation: true });
    // Honest for threshold 3 would be noiseStd = 1/√3 ≈ 0.577; this round sends 0.1 and still states z = 1.
    member.send({
      type: 'train',
      round: 1,
      modelVersion: 'lie:0',
      weights: new Float32Array(D),
      config: { ...TRAIN, clipNorm: 1, noiseStd: 0.1 },
      deadlineMs: 600_000,
      secagg: { mode: 'secagg', index: 1, threshold: 3, degree: 4, bound: 10, scale: 1_000, maxWeight: 1, sessionId: 'lie' },
      privacy: { dpMode: 'distributed', noiseMultiplier: 1, epsilonSpent: 0, epsilonBudget: 10, delta: 1e-5 },
    });
    const answer = await member.next('advertise', 'decline');
    expect(answer).toMatchObject({ type: 'decline', round: 1 });
    member.send({ type: 'result', round: 1, status: 'aborted', modelVersion: 'lie:0' });
    await finish();
    expect(member.sentFor(1)).toEqual(['decline']); // no SecAgg key, no masked input
    expect(declined).toHaveLength(1);
    expect(declined[0]!.reasons).toEqual([expect.stringMatching(/noise multiplier 0\.173205 \(verified from noiseStd, clipNorm and the SecAgg threshold\) is below the policy's minimum 1/)]);
  }, 60_000);
});
