// Exhaustion by strangers and token holders, over real WebSockets: connections that never say
// hello, connection caps, partial frames parked by idle connections, and memory per connect/close
// cycle. Before the limits, the 300 silent connections stayed open (they answer pings), nothing
// capped connections, and every cycle left resume tokens and waiters behind.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { builtinInitialModel, startCoordinator, type ConnectionLimits, type CoordinatorHandle } from '@shoal/coordinator';
import { closeCodeOf } from '@shoal/protocol';
import { fedAvg } from '@shoal/strategy';
import { FakeClock, WsPeer, rawRequest, upgradeRequest } from '@shoal/testkit';

const TOKEN = 'exhaustion-token';
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
let coordinator: CoordinatorHandle | undefined;
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await coordinator?.close();
  coordinator = undefined;
});

async function start(limits: ConnectionLimits, clock?: FakeClock): Promise<CoordinatorHandle> {
  coordinator = await startCoordinator({
    model: builtinInitialModel('logreg', [4], 3),
    tokens: [TOKEN],
    rounds: 1,
    clientsPerRound: 2,
    minClients: 2,
    train: { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
    strategy: fedAvg(),
    limits,
    ...(clock ? { clock } : {}),
  });
  return coordinator;
}

/**
 * Opens a WebSocket that never sends a message (ws still answers pings, as a live peer would).
 * `closed` resolves with the close code.
 */
function silentSocket(url: string): Promise<{ ws: WebSocket; closed: Promise<number> }> {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` }, perMessageDeflate: false });
  sockets.push(ws);
  ws.on('error', () => {});
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('unexpected-response', (_request, response) => reject(new Error(`HTTP ${response.statusCode}`)));
  });
}

/**
 * Pings the coordinator over `ws`: 'pong' when the answer comes, 'closed' when the connection
 * closes first. The coordinator writes a close before any later pong on the same TCP stream, so
 * a pong proves the coordinator had not closed the connection when it answered.
 */
function pingOrClose(ws: WebSocket): Promise<'pong' | 'closed'> {
  if (ws.readyState !== WebSocket.OPEN) return Promise.resolve('closed');
  return new Promise((resolve) => {
    const settle = (outcome: 'pong' | 'closed') => {
      ws.off('pong', onPong);
      ws.off('close', onClose);
      resolve(outcome);
    };
    const onPong = () => settle('pong');
    const onClose = () => settle('closed');
    ws.on('pong', onPong);
    ws.on('close', onClose);
    ws.ping();
  });
}

describe('limits against exhaustion', () => {
  it('closes 300 connections that never say hello at the hello deadline with HELLO_TIMEOUT, not before', async () => {
    const helloTimeoutMs = 1_500;
    // The hello deadline runs on this clock: the test decides when it passes, not the machine's load.
    const clock = new FakeClock();
    const { url } = await start({ helloTimeoutMs, maxPendingHello: 1_000 }, clock);
    const silent = await Promise.all(Array.from({ length: 300 }, () => silentSocket(url)));
    // ws accepts a connection (and the coordinator arms its deadline, at fake time 0) in the same
    // tick as it writes the 101 that opens the client's socket: every deadline is armed by now.
    expect(clock.pending).toBe(300);

    await clock.advance(helloTimeoutMs - 1);
    expect(clock.pending).toBe(300);
    expect(await Promise.all(silent.map(({ ws }) => pingOrClose(ws)))).toEqual(Array(300).fill('pong'));

    await clock.advance(1);
    expect(clock.pending).toBe(0);
    expect(await Promise.all(silent.map(({ closed }) => closed))).toEqual(Array(300).fill(closeCodeOf('HELLO_TIMEOUT')));
  });

  it('refuses upgrades past maxPendingHello with HTTP 503, and takes them again once the waiting peers said hello', async () => {
    const { url, port } = await start({ maxPendingHello: 5, helloTimeoutMs: 60_000 });
    const waiting = await Promise.all(Array.from({ length: 5 }, () => WsPeer.connect(url, { token: TOKEN })));
    const refused = await rawRequest('127.0.0.1', port, upgradeRequest('/', { Authorization: `Bearer ${TOKEN}` }), { then: 'reset-on-response' });
    expect(refused.status).toBe(503);
    expect(refused.head).toMatch(/\r\nRetry-After: \d+/);
    for (const peer of waiting) await peer.hello();
    const admitted = await WsPeer.connect(url, { token: TOKEN });
    expect(admitted.isOpen).toBe(true);
    for (const peer of [...waiting, admitted]) peer.ws.terminate();
  });

  it('refuses upgrades past maxConnections with HTTP 503', async () => {
    const { url, port } = await start({ maxConnections: 8 });
    const peers = await Promise.all(Array.from({ length: 8 }, () => WsPeer.connect(url, { token: TOKEN })));
    await Promise.all(peers.slice(0, 4).map((peer) => peer.hello()));
    const refused = await rawRequest('127.0.0.1', port, upgradeRequest('/', { Authorization: `Bearer ${TOKEN}` }), { then: 'reset-on-response' });
    expect(refused.status).toBe(503);
    peers[0]!.ws.close();
    await peers[0]!.closed;
    const again = await WsPeer.connect(url, { token: TOKEN });
    expect(again.isOpen).toBe(true);
    for (const peer of [...peers, again]) peer.ws.terminate();
  });

  it('closes an idle connection that parks a partial frame beyond maxIdlePartialBytes with MESSAGE_TOO_LARGE', async () => {
    const { url } = await start({ maxIdlePartialBytes: 4_096 });
    const peer = await WsPeer.connect(url, { token: TOKEN });
    await peer.hello();
    // A frame header announcing 1 MiB, then 64 KiB of it: the frame never completes.
    const socket = (peer.ws as unknown as { _socket: import('node:net').Socket })._socket;
    const header = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4]); // FIN+binary, masked, 64-bit length 2^20, mask key
    socket.write(Buffer.concat([header, Buffer.alloc(64 * 1024)]));
    expect((await peer.closed).code).toBe(closeCodeOf('MESSAGE_TOO_LARGE'));
  });

  it('retains no memory per connect/close cycle: 10,000 cycles while waiting for clients and mid-round', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--conditions=shoal-source', '--import', 'tsx', 'test/integration/fixtures/connect-cycles.ts', '10000'], {
      cwd: REPO_ROOT,
      timeout: 120_000,
    });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { waiting: { before: number; after: number }; midRound: { before: number; after: number } };
    // 10,000 cycles at even 100 bytes each would be ~1 MiB; allow 512 KiB of noise (JIT code, pools).
    const marginBytes = 512 * 1024;
    expect(result.waiting.after - result.waiting.before).toBeLessThan(marginBytes);
    expect(result.midRound.after - result.midRound.before).toBeLessThan(marginBytes);
  }, 180_000);
});
