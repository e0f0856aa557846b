import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { AddressBackoff } from './backoff.js';
import type { Coordinator } from './coordinator.js';
import { isAuthorized, parseTarget } from './http-auth.js';
import { OperationsHttp } from './operations.js';

/** A certificate chain and its private key, PEM-encoded: the coordinator then serves `https` and `wss`. */
export interface TlsCredentials {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

/** Where and how `serveCoordinator` listens. */
export interface ServeOptions {
  readonly host: string;
  readonly port: number;
  /** Serve TLS (`wss://`, `https://`) with this certificate; plain `ws://` is then not spoken at all. Default: plain. */
  readonly tls?: TlsCredentials;
}

/** The HTTP + WebSocket edge of a coordinator. */
export interface CoordinatorServer {
  /** The WebSocket URL clients connect to: `ws://host:port`, or `wss://` with TLS. */
  readonly url: string;
  /** The same port's HTTP base URL (`/healthz`, `/metrics`, `/dashboard`): `http://` or `https://`. */
  readonly httpUrl: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** An HTTP refusal of an upgrade: status line, and the extra headers it carries. */
interface Refusal {
  readonly status: 400 | 401 | 429 | 503;
  readonly reason: string;
  readonly headers?: Readonly<Record<string, string>>;
}

const STATUS_TEXT: Readonly<Record<Refusal['status'], string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

/**
 * Serves `coordinator` over WebSockets. The token is checked during the HTTP upgrade, before any
 * WebSocket exists: `Authorization: Bearer <token>`, or `?token=` for browsers, which cannot set
 * headers on a WebSocket. Plain HTTP requests go to `OperationsHttp`: `/healthz`, `/readyz`,
 * `/.well-known/shoal-privacy.json`, and the admin endpoints `/metrics` and `/dashboard`
 * (docs/operations.md). Upgrades are refused with 503 until the coordinator has restored.
 *
 * Nothing a peer sends here can throw out of this function's handlers: every upgrade socket gets
 * an error listener before anything is written to it, and the whole upgrade path runs inside one
 * handler whose failure destroys that socket only (docs/reliability.md, "Hostile input").
 */
export async function serveCoordinator(coordinator: Coordinator, options: ServeOptions): Promise<CoordinatorServer> {
  const { limits } = coordinator.options;
  const logger = coordinator.options.logger;
  const tokens = coordinator.options.tokens.map((t) => Buffer.from(t));
  const badTokens = new AddressBackoff({ limit: limits.badTokenLimit, windowMs: limits.badTokenWindowMs });
  // ws cuts frames above its own limit with 1009; ours, half of it, closes with Shoal's 4009 first.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 2 * coordinator.maxPayloadBytes, perMessageDeflate: false });
  // headersTimeout and requestTimeout bound a slow (or never finished) request, upgrades included;
  // node checks them every connectionsCheckingInterval (30 s by default, far too coarse here).
  const timeouts = { headersTimeout: limits.upgradeTimeoutMs, requestTimeout: limits.upgradeTimeoutMs, connectionsCheckingInterval: Math.min(1_000, limits.upgradeTimeoutMs) };
  const operations = new OperationsHttp(coordinator, badTokens);
  const onRequest = (request: IncomingMessage, response: ServerResponse) => operations.handle(request, response, remoteAddress(request.socket));
  const server: Server | HttpsServer = options.tls
    ? createHttpsServer({ ...timeouts, cert: options.tls.cert, key: options.tls.key }, onRequest)
    : createServer(timeouts, onRequest);

  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // First, before anything is written: a peer that resets the connection around our answer
    // makes the socket emit 'error', which without a listener would take the process down.
    socket.on('error', () => {});
    try {
      const refusal = checkUpgrade(request, socket);
      if (refusal !== undefined) return refuse(socket, refusal);
      wss.handleUpgrade(request, socket, head, (ws) => attach(ws, socket));
    } catch (error) {
      logger.warn({ stage: 'http', remote: remoteAddress(socket), reason: (error as Error).message }, 'upgrade failed'); // the reason may quote the peer's request
      socket.destroy();
    }
  });

  /** Why this upgrade must be refused, if it must; in order: rate limit, parse, token, capacity. */
  function checkUpgrade(request: IncomingMessage, socket: Duplex): Refusal | undefined {
    const address = remoteAddress(socket);
    const retryAfterMs = badTokens.retryAfterMs(address);
    if (retryAfterMs !== undefined) {
      return { status: 429, reason: 'too many bad-token upgrades from this address', headers: { 'Retry-After': String(Math.ceil(retryAfterMs / 1000)) } };
    }
    const target = parseTarget(request.url);
    if (target === undefined) return { status: 400, reason: 'request target is not a valid URL' };
    if (!isAuthorized(request.headers.authorization, target, tokens)) {
      badTokens.fail(address);
      return { status: 401, reason: 'missing or wrong token' };
    }
    if (!coordinator.restoreFinished) return { status: 503, reason: 'the coordinator is restoring its checkpoint', headers: { 'Retry-After': '1' } };
    const overloaded = coordinator.admission();
    if (overloaded !== undefined) return { status: 503, reason: overloaded, headers: { 'Retry-After': '5' } };
    return undefined;
  }

  function refuse(socket: Duplex, refusal: Refusal): void {
    const headers = Object.entries({ Connection: 'close', 'Content-Length': '0', ...refusal.headers }).map(([name, value]) => `${name}: ${value}\r\n`);
    // Destroy once written, so a peer that never reads nor closes cannot hold the socket open.
    socket.end(`HTTP/1.1 ${refusal.status} ${STATUS_TEXT[refusal.status]}\r\n${headers.join('')}\r\n`, () => socket.destroy());
    if (refusal.status !== 401) logger.info({ stage: 'http', code: refusal.status, reason: refusal.reason }, 'upgrade refused');
  }

  function attach(ws: WebSocket, socket: Duplex): void {
    const handlers = coordinator.accept({
      send: (frame) => ws.send(frame, { binary: true }),
      close: (code, reason) => ws.close(code, reason),
      ping: () => ws.ping(),
    });
    // ws buffers a frame's bytes until the frame is whole; count them here, so a connection with
    // no part in the round cannot park a model-sized partial frame (docs/reliability.md).
    let unfinishedBytes = 0;
    const onData = (chunk: Buffer) => {
      unfinishedBytes += chunk.byteLength;
      if (unfinishedBytes > handlers.maxPartialBytes()) {
        socket.off('data', onData);
        handlers.tooMuchBuffered(unfinishedBytes);
      }
    };
    socket.on('data', onData);
    ws.on('message', (data, isBinary) => {
      unfinishedBytes = 0;
      handlers.message(toBytes(data), isBinary);
    });
    ws.on('pong', () => handlers.alive());
    ws.on('close', (code, reason) => {
      socket.off('data', onData);
      handlers.closed(code, reason.toString());
    });
    ws.on('error', () => {}); // 'close' follows every error; the handler above does the cleanup
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const secure = options.tls !== undefined;
  return {
    url: `${secure ? 'wss' : 'ws'}://${hostForUrl}:${address.port}`,
    httpUrl: `${secure ? 'https' : 'http'}://${hostForUrl}:${address.port}`,
    host: address.address,
    port: address.port,
    async close() {
      operations.close();
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function remoteAddress(socket: Duplex): string {
  return (socket as Socket).remoteAddress ?? 'unknown';
}

function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
