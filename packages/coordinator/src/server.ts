import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { AddressBackoff } from './backoff.js';
import type { Coordinator } from './coordinator.js';

/** The HTTP + WebSocket edge of a coordinator. */
export interface CoordinatorServer {
  readonly url: string;
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
 * headers on a WebSocket. `/healthz` answers 200 for load balancers.
 *
 * Nothing a peer sends here can throw out of this function's handlers: every upgrade socket gets
 * an error listener before anything is written to it, and the whole upgrade path runs inside one
 * handler whose failure destroys that socket only (docs/reliability.md, "Hostile input").
 */
export async function serveCoordinator(coordinator: Coordinator, options: { host: string; port: number }): Promise<CoordinatorServer> {
  const { limits } = coordinator.options;
  const log = coordinator.options.log;
  const tokens = coordinator.options.tokens.map((t) => Buffer.from(t));
  const badTokens = new AddressBackoff({ limit: limits.badTokenLimit, windowMs: limits.badTokenWindowMs });
  // ws cuts frames above its own limit with 1009; ours, half of it, closes with Shoal's 4009 first.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 2 * coordinator.maxPayloadBytes, perMessageDeflate: false });
  // headersTimeout and requestTimeout bound a slow (or never finished) request, upgrades included;
  // node checks them every connectionsCheckingInterval (30 s by default, far too coarse here).
  const timeouts = { headersTimeout: limits.upgradeTimeoutMs, requestTimeout: limits.upgradeTimeoutMs, connectionsCheckingInterval: Math.min(1_000, limits.upgradeTimeoutMs) };
  const server: Server = createServer(timeouts, (request, response) => {
    if (request.url === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    response.writeHead(404).end();
  });

  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // First, before anything is written: a peer that resets the connection around our answer
    // makes the socket emit 'error', which without a listener would take the process down.
    socket.on('error', () => {});
    try {
      const refusal = checkUpgrade(request, socket);
      if (refusal !== undefined) return refuse(socket, refusal);
      wss.handleUpgrade(request, socket, head, (ws) => attach(ws, socket));
    } catch (error) {
      log(`upgrade from ${remoteAddress(socket)} failed: ${JSON.stringify((error as Error).message)}`); // may quote the peer's request
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
    const overloaded = coordinator.admission();
    if (overloaded !== undefined) return { status: 503, reason: overloaded, headers: { 'Retry-After': '5' } };
    return undefined;
  }

  function refuse(socket: Duplex, refusal: Refusal): void {
    const headers = Object.entries({ Connection: 'close', 'Content-Length': '0', ...refusal.headers }).map(([name, value]) => `${name}: ${value}\r\n`);
    // Destroy once written, so a peer that never reads nor closes cannot hold the socket open.
    socket.end(`HTTP/1.1 ${refusal.status} ${STATUS_TEXT[refusal.status]}\r\n${headers.join('')}\r\n`, () => socket.destroy());
    if (refusal.status !== 401) log(`upgrade refused with ${refusal.status}: ${refusal.reason}`);
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
  return {
    url: `ws://${hostForUrl}:${address.port}`,
    host: address.address,
    port: address.port,
    async close() {
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

/** The request target as a URL, or undefined when it does not parse (a peer's bytes, so no throw). */
function parseTarget(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}

function isAuthorized(header: string | undefined, target: URL, tokens: readonly Buffer[]): boolean {
  const fromHeader = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
  const offered = fromHeader ?? target.searchParams.get('token') ?? undefined;
  if (offered === undefined) return false;
  const candidate = Buffer.from(offered);
  // Constant-time comparison, so response timing does not reveal how much of a token matched.
  return tokens.some((token) => token.length === candidate.length && timingSafeEqual(token, candidate));
}

function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
