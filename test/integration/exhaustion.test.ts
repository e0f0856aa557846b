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
import { WsPeer, rawRequest, upgradeRequest } from '@shoal/testkit';

const TOKEN = 'exhaustion-token';
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
let coordinator: CoordinatorHandle | undefined;
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await coordinator?.close();
  coordinator = undefined;
});

async function start(limits: ConnectionLimits): Promise<CoordinatorHandle> {
  coordinator = await startCoordinator({
    model: builtinInitialModel('logreg', [4], 3),
    tokens: [TOKEN],
    rounds: 1,
    clientsPerRound: 2,
    minClients: 2,
    train: { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
    strategy: fedAvg(),
    limits,
  });
  return coordinator;
}

/** Opens a WebSocket that never sends anything (ws still answers pings, as a live peer would). */
function silentSocket(url: string): Promise<{ ws: WebSocket; closed: Promise<{ code: number; atMs: number }> }> {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` }, perMessageDeflate: false });
  sockets.push(ws);
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; atMs: number }>((resolve) => ws.once('close', (code) => resolve({ code, atMs: performance.now() })));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('unexpected-response', (_request, response) => reject(new Error(`HTTP ${response.statusCode}`)));
  });
}

describe('limits against exhaustion', () => {
  it('closes 300 connections that never say hello at the hello deadline with HELLO_TIMEOUT, not before', async () => {
    const helloTimeoutMs = 1_500;
    const { url } = await start({ helloTimeoutMs, maxPendingHello: 1_000 });
    const opened = performance.now();
    const silent = await Promise.all(Array.from({ length: 300 }, () => silentSocket(url)));
    const closes = await Promise.all(silent.map((s) => s.closed));
    expect(new Set(closes.map((c) => c.code))).toEqual(new Set([closeCodeOf('HELLO_TIMEOUT')]));
    // Each socket opened after `opened`, so its deadline cannot come before opened + helloTimeoutMs.
    expect(Math.min(...closes.map((c) => c.atMs)) - opened).toBeGreaterThanOrEqual(helloTimeoutMs - 5);
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
