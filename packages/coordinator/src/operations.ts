// The plain-HTTP side of the coordinator's port, for operators and apps: probes, the published
// privacy promise, Prometheus metrics, and the live dashboard with its server-sent events.
// Everything here reads the coordinator (its telemetry, live state and history); nothing writes it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressBackoff } from './backoff.js';
import type { Coordinator } from './coordinator.js';
import { DASHBOARD_HTML } from './dashboard.js';
import { isAuthorized, parseTarget } from './http-auth.js';
import { privacyPromise } from './promise.js';

/** How often an open dashboard stream gets a `live` event (client counts, round phase, ε). */
const LIVE_EVENT_INTERVAL_MS = 1_000;
/** A dashboard stream whose reader lags this far behind is closed rather than buffered without bound. */
const MAX_STREAM_BUFFER_BYTES = 1 << 20;

const DASHBOARD_SECURITY = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:";

/** The admin endpoints: an operator token (`adminTokens`), never a client token. */
type AdminRoute = '/metrics' | '/dashboard' | '/dashboard/events';

/**
 * Answers the coordinator's HTTP requests (anything but the WebSocket upgrade) and owns the open
 * dashboard streams: `close()` ends every one of them and releases its timer.
 */
export class OperationsHttp {
  private readonly adminTokens: readonly Buffer[];
  /** The release of each open dashboard stream. */
  private readonly streams = new Set<() => void>();

  /**
   * @param badTokens the per-address backoff of the WebSocket upgrade: a wrong admin token counts
   *   against the same address as a wrong client token.
   */
  constructor(
    private readonly coordinator: Coordinator,
    private readonly badTokens: AddressBackoff,
  ) {
    this.adminTokens = coordinator.options.adminTokens.map((token) => Buffer.from(token));
  }

  /** Answers one request; never throws (a failure answers 500 and is logged). */
  handle(request: IncomingMessage, response: ServerResponse, address: string): void {
    this.route(request, response, address).catch((error: unknown) => {
      this.coordinator.options.logger.error({ stage: 'http', err: (error as Error).stack ?? String(error) }, 'HTTP request failed');
      if (!response.headersSent) text(response, 500, 'internal error\n');
      else response.destroy();
    });
  }

  /** Ends every open dashboard stream. */
  close(): void {
    for (const release of [...this.streams]) release();
  }

  private async route(request: IncomingMessage, response: ServerResponse, address: string): Promise<void> {
    const target = parseTarget(request.url);
    if (target === undefined) return text(response, 400, 'request target is not a valid URL\n');
    if (request.method !== 'GET' && request.method !== 'HEAD') return text(response, 405, 'only GET and HEAD\n', { allow: 'GET, HEAD' });
    switch (target.pathname) {
      case '/healthz':
        return text(response, 200, 'ok\n');
      case '/readyz':
        return this.coordinator.ready ? text(response, 200, 'ready\n') : text(response, 503, this.coordinator.restoreFinished ? 'stopping\n' : 'restoring the checkpoint\n');
      case '/.well-known/shoal-privacy.json':
        // Public and cross-origin: the browser SDK checks it from the app's own origin.
        response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'access-control-allow-origin': '*' });
        response.end(`${JSON.stringify(privacyPromise(this.coordinator.options))}\n`);
        return;
      case '/metrics':
      case '/dashboard':
      case '/dashboard/events':
        return this.admin(target.pathname, request, response, target, address);
      default:
        return text(response, 404, 'not found\n');
    }
  }

  private async admin(route: AdminRoute, request: IncomingMessage, response: ServerResponse, target: URL, address: string): Promise<void> {
    if (this.adminTokens.length === 0) {
      return text(response, 403, `${route} is an admin endpoint, and no admin token is configured: set server.adminTokens (or SHOAL_ADMIN_TOKENS; the adminTokens option in code)\n`);
    }
    const retryAfterMs = this.badTokens.retryAfterMs(address);
    if (retryAfterMs !== undefined) return text(response, 429, 'too many bad tokens from this address\n', { 'retry-after': String(Math.ceil(retryAfterMs / 1000)) });
    // Prometheus sends a bearer header; only the browser pages need `?token=`, which ends up in URLs.
    if (!isAuthorized(request.headers.authorization, target, this.adminTokens, route !== '/metrics')) {
      this.badTokens.fail(address);
      return text(response, 401, `${route} needs an admin token (server.adminTokens; client tokens are not accepted): Authorization: Bearer <token>${route === '/metrics' ? '' : ', or ?token='}\n`, {
        'www-authenticate': 'Bearer',
      });
    }
    switch (route) {
      case '/metrics': {
        const { contentType, text: body } = await this.coordinator.telemetry.scrape();
        response.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
        return;
      }
      case '/dashboard':
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': DASHBOARD_SECURITY, 'referrer-policy': 'no-referrer' });
        response.end(DASHBOARD_HTML);
        return;
      case '/dashboard/events':
        return this.openStream(response);
    }
  }

  /** A server-sent event stream: `snapshot` now, `round` per finished round, `live` every second. */
  private openStream(response: ServerResponse): void {
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    const coordinator = this.coordinator;
    const send = (event: string, data: unknown) => {
      if (response.writableEnded || response.destroyed) return;
      response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      if (response.writableLength > MAX_STREAM_BUFFER_BYTES) release();
    };
    const unsubscribe = coordinator.telemetry.onRound((metrics) => send('round', { metrics, live: coordinator.liveState() }));
    const timer = setInterval(() => send('live', coordinator.liveState()), LIVE_EVENT_INTERVAL_MS);
    const release = () => {
      if (!this.streams.delete(release)) return;
      clearInterval(timer);
      unsubscribe();
      response.end();
    };
    this.streams.add(release);
    response.on('close', release);
    send('snapshot', {
      rounds: coordinator.history,
      totalRounds: coordinator.options.rounds,
      live: coordinator.liveState(),
      promise: privacyPromise(coordinator.options),
    });
  }
}

function text(response: ServerResponse, status: number, body: string, headers: Readonly<Record<string, string>> = {}): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers }).end(body);
}
