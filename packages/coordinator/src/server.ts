import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Coordinator } from './core.js';

/** The HTTP + WebSocket edge of a coordinator. */
export interface CoordinatorServer {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `coordinator` over WebSockets. The token is checked during the HTTP upgrade, before any
 * WebSocket exists: `Authorization: Bearer <token>`, or `?token=` for browsers, which cannot set
 * headers on a WebSocket. `/healthz` answers 200 for load balancers.
 */
export async function serveCoordinator(coordinator: Coordinator, options: { host: string; port: number }): Promise<CoordinatorServer> {
  const tokens = coordinator.options.tokens.map((t) => Buffer.from(t));
  // ws cuts frames above its own limit with 1009; ours, half of it, closes with Shoal's 4009 first.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 2 * coordinator.maxPayloadBytes, perMessageDeflate: false });
  const server: Server = createServer((request, response) => {
    if (request.url === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    response.writeHead(404).end();
  });

  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!isAuthorized(request, tokens)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => attach(ws));
  });

  function attach(ws: WebSocket): void {
    const handlers = coordinator.accept({
      send: (frame) => ws.send(frame, { binary: true }),
      close: (code, reason) => ws.close(code, reason),
      ping: () => ws.ping(),
    });
    ws.on('message', (data, isBinary) => handlers.message(toBytes(data), isBinary));
    ws.on('pong', () => handlers.alive());
    ws.on('close', (code, reason) => handlers.closed(code, reason.toString()));
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
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function isAuthorized(request: IncomingMessage, tokens: readonly Buffer[]): boolean {
  const header = request.headers.authorization;
  const fromHeader = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
  const fromQuery = new URL(request.url ?? '/', 'http://localhost').searchParams.get('token') ?? undefined;
  const offered = fromHeader ?? fromQuery;
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
