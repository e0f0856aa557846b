/**
 * Data-subject requests (docs/privacy.md, "What the coordinator holds about a device") with a real
 * coordinator and a real Node ShoalClient over WebSockets on 127.0.0.1: after a round, the client
 * asks what is held about it (its id, that a resume token is held, the round it was selected for
 * and contributed to, nothing else), then asks to be forgotten: the coordinator answers, closes the
 * connection with FORGOTTEN (4017), and the old resume token no longer resumes (a raw peer
 * presenting it is given a new id, about which nothing is held).
 * Every wait is for a message or an event; the clock plays no part.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ShoalClient, initBackend, wsTransport, type ClientTransport } from '@shoal/client';
import { builtinInitialModel, startCoordinator, type CoordinatorHandle } from '@shoal/coordinator';
import { ShoalError, closeCodeOf, createSeededRandom, decodeCoordinatorMessage, type WelcomeMessage } from '@shoal/protocol';
import { fedAvg } from '@shoal/strategy';
import { WsPeer } from '@shoal/testkit';

const TOKEN = 'subject-token';
const MODEL = builtinInitialModel('logreg', [4], 3, 9);
const TRAIN = { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;

function dataset(seed: number) {
  const random = createSeededRandom(seed);
  return { x: Float32Array.from({ length: 12 * 4 }, () => random.next()), y: Int32Array.from({ length: 12 }, (_, i) => i % 3), featureShape: [4] };
}

/** Keeps every welcome the client receives (to learn the resume token an app would not see). */
function welcomeTap(welcomes: WelcomeMessage[]): ClientTransport {
  return {
    async connect(url, token, signal) {
      const connection = await wsTransport.connect(url, token, signal);
      return {
        send: (frame) => connection.send(frame),
        close: (code, reason) => connection.close(code, reason),
        onFrame: (handler) =>
          connection.onFrame((frame) => {
            const decoded = decodeCoordinatorMessage(frame);
            if (decoded.ok && decoded.message.type === 'welcome') welcomes.push(decoded.message);
            handler(frame);
          }),
        onClose: (handler) => connection.onClose(handler),
      };
    },
  };
}

beforeAll(async () => {
  await initBackend();
});

describe('data-subject requests', () => {
  let handle: CoordinatorHandle | undefined;
  let peer: WsPeer | undefined;
  let client: ShoalClient | undefined;
  afterEach(async () => {
    await client?.leave(); // a failed test must not leave a run() to reject later
    client = undefined;
    peer?.terminate();
    await handle?.close();
    handle = undefined;
    peer = undefined;
  });

  it('reports what is held, then forgets: the resume token no longer resumes', async () => {
    handle = await startCoordinator({ model: MODEL, tokens: [TOKEN], rounds: 3, clientsPerRound: 1, minClients: 1, roundTimeoutMs: 60_000, heartbeatIntervalMs: 60_000, train: TRAIN, strategy: fedAvg() });
    const welcomes: WelcomeMessage[] = [];
    // Round 2 waits for the user's approval, which never comes: the client is selected for it and sends nothing.
    let roundTwoStarted!: () => void;
    const roundTwo = new Promise<void>((resolve) => (roundTwoStarted = resolve));
    const approveRound = ({ round }: { round: number }) => (round === 1 ? true : (roundTwoStarted(), new Promise<boolean>(() => {})));
    client = new ShoalClient({ url: handle.url, token: TOKEN, data: dataset(1), shuffleSeed: 1, reconnect: { maxAttempts: 0 }, transport: welcomeTap(welcomes), approveRound });
    const disconnects: number[] = [];
    client.on('disconnected', ({ code }) => disconnects.push(code));
    await expect(client.requestHeldData()).rejects.toMatchObject({ code: 'NOT_SUPPORTED' });

    const run = client.run();
    await roundTwo;
    const clientId = client.clientId!;
    expect(welcomes[0]).toMatchObject({ clientId, subjectRequests: true });

    expect(await client.requestHeldData()).toEqual({ clientId, resumeTokenHeld: true, selectedRounds: [1, 2], contributedRounds: [1] });

    expect(await client.forgetMe()).toEqual({ clientId });
    await run;
    expect(disconnects).toEqual([closeCodeOf('FORGOTTEN')]);
    expect(client.clientId).toBeUndefined();
    await expect(client.requestHeldData()).rejects.toBeInstanceOf(ShoalError);

    // The old token resumes nothing: a new id, and nothing held about it.
    peer = await WsPeer.connect(handle.url, { token: TOKEN });
    const welcome = await peer.hello({ resumeToken: welcomes[0]!.resumeToken, capabilities: ['fedavg', 'subject-requests'] });
    expect(welcome.clientId).not.toBe(clientId);
    peer.send({ type: 'subject-access' });
    const held = await peer.next('subject-data');
    expect(held).toMatchObject({ clientId: welcome.clientId, resumeTokenHeld: true, contributedRounds: [] });
    // Round 3 may already have selected the peer; rounds 1 and 2 of the forgotten id are nowhere.
    expect(held.selectedRounds.filter((round) => round < 3)).toEqual([]);
  }, 60_000);

  it('a client that does not announce the capability gets no subjectRequests in welcome, and an old-style hello still works', async () => {
    handle = await startCoordinator({ model: MODEL, tokens: [TOKEN], rounds: 1, clientsPerRound: 1, minClients: 1, roundTimeoutMs: 60_000, heartbeatIntervalMs: 60_000, train: TRAIN, strategy: fedAvg() });
    peer = await WsPeer.connect(handle.url, { token: TOKEN });
    const welcome = await peer.hello({ capabilities: ['fedavg'] });
    expect(welcome.subjectRequests).toBeUndefined();
    // And its train message carries no privacy field, which an old client would refuse.
    const train = await peer.next('train');
    expect(train.privacy).toBeUndefined();
  }, 60_000);
});
