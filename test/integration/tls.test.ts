/**
 * TLS end to end: a self-signed certificate for 127.0.0.1 made here with openssl, a coordinator
 * started with it (`startCoordinator(options, { tls })`), and two real Node SDK clients that trust
 * exactly that certificate (`nodeWsTransport({ ca })`) training two rounds over `wss://`.
 * `/healthz` answers over https; a client that does not trust the certificate cannot connect; and
 * plain `ws://` and `http://` to the TLS port fail (a TLS server does not speak plain HTTP at all).
 * `shoal serve` does the same from the PEM files `server.tls` names.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ShoalClient, initBackend, nodeWsTransport, wsTransport } from '@shoal/client';
import { builtinInitialModel, startCoordinator, type CoordinatorHandle } from '@shoal/coordinator';
import { createSeededRandom, ShoalError } from '@shoal/protocol';
import { loadDataset, partitionIid, subset } from '@shoal/sim';
import { fedAvg } from '@shoal/strategy';
import { startServe } from '@shoal/testkit';

const TOKEN = 'tls-token';

let folder: string;
let cert: Buffer;
let key: Buffer;

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'shoal-tls-'));
  const certPath = join(folder, 'cert.pem');
  const keyPath = join(folder, 'key.pem');
  // An EC P-256 key and a certificate valid for one day, for the IP address the server listens on.
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1',
    '-keyout', keyPath, '-out', certPath,
  ]);
  [cert, key] = await Promise.all([readFile(certPath), readFile(keyPath)]);
});

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

/** GET over https trusting `ca`; resolves with the status and body. */
function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens a plain WebSocket; resolves with 'open', or 'failed' when the connection errors or closes first. */
function plainWebSocket(url: string): Promise<'open' | 'failed'> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` } });
    ws.once('open', () => {
      ws.terminate();
      resolve('open');
    });
    ws.once('error', () => resolve('failed'));
    ws.once('unexpected-response', () => {
      ws.terminate();
      resolve('failed');
    });
  });
}

describe('TLS', () => {
  let coordinator: CoordinatorHandle | undefined;

  afterAll(async () => {
    await coordinator?.close();
  });

  it('trains over wss:// with clients trusting the test certificate; plain ws:// and http:// fail', async () => {
    await initBackend();
    const { train } = loadDataset('iris', { seed: 0 });
    const model = builtinInitialModel('logreg', train.featureShape, train.numClasses, 0);
    coordinator = await startCoordinator(
      { model, tokens: [TOKEN], rounds: 2, minClients: 2, roundTimeoutMs: 30_000, train: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 }, strategy: fedAvg() },
      { tls: { cert, key } },
    );
    expect(coordinator.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
    expect(coordinator.httpUrl).toBe(coordinator.url.replace('wss://', 'https://'));

    expect(await httpsGet(`${coordinator.httpUrl}/healthz`, cert)).toEqual({ status: 200, body: 'ok\n' });
    expect(await httpsGet(`${coordinator.httpUrl}/readyz`, cert)).toEqual({ status: 200, body: 'ready\n' });

    // The same port without TLS: no HTTP answer, no WebSocket.
    const plainUrl = coordinator.url.replace('wss://', 'ws://');
    expect(await plainWebSocket(plainUrl)).toBe('failed');
    await expect(fetch(`${coordinator.httpUrl.replace('https://', 'http://')}/healthz`)).rejects.toThrow();

    // Node's default trust store does not know the test certificate: the SDK's default transport refuses it.
    const untrusted = await wsTransport.connect(coordinator.url, TOKEN).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(untrusted).toBeInstanceOf(ShoalError);
    expect((untrusted as ShoalError).code).toBe('CONNECTION_FAILED');

    const transport = nodeWsTransport({ ca: cert });
    const stop = new AbortController();
    const clients = partitionIid(train.length, 2, createSeededRandom(1)).map((indices) => {
      const data = subset(train, indices);
      return new ShoalClient({ url: coordinator!.url, token: TOKEN, transport, data: { x: data.x, y: data.y, featureShape: data.featureShape } });
    });
    const runs = clients.map((client) => client.run({ signal: stop.signal }));
    const summary = await coordinator.finished;
    await Promise.all(runs);

    expect(summary.stoppedBy).toBe('completed');
    expect(summary.rounds.map((r) => [r.status, r.participants])).toEqual([
      ['committed', 2],
      ['committed', 2],
    ]);
    expect(summary.rounds.every((r) => r.bytesUp > 0 && r.bytesDown > 0)).toBe(true);
  });

  it('shoal serve reads server.tls from PEM files and listens on wss://', async () => {
    const configPath = join(folder, 'serve.json');
    const server = { tokens: [TOKEN], tls: { cert: join(folder, 'cert.pem'), key: join(folder, 'key.pem') } };
    await writeFile(configPath, JSON.stringify({ rounds: 1, minClients: 2, model: { builtin: 'logreg', inputShape: [4], numClasses: 3 }, server }));
    const serve = startServe(configPath);
    try {
      const url = await serve.url;
      expect(url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
      expect(await httpsGet(`${url.replace('wss://', 'https://')}/healthz`, cert)).toEqual({ status: 200, body: 'ok\n' });
      expect(await plainWebSocket(url.replace('wss://', 'ws://'))).toBe('failed');
    } finally {
      await serve.kill();
    }
  });
});
