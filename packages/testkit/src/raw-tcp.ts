import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';

/** What a raw TCP exchange with an HTTP server saw. */
export interface RawExchange {
  /** The status code of the first response line, if one arrived whole. */
  readonly status?: number;
  /** The response's header block (up to the blank line), as text. */
  readonly head: string;
  /** How the exchange ended: the server closed or reset it, we reset it, it upgraded (we closed it at the 101), or it was still open at `timeoutMs`. */
  readonly ending: 'server-closed' | 'we-reset' | 'upgraded' | 'timeout';
  readonly elapsedMs: number;
}

export interface RawRequestOptions {
  /** Send only this many bytes of the request (default: all of it). */
  readonly cutAt?: number;
  /**
   * After sending: `wait` for the server to answer and close; `reset` at once (TCP RST);
   * `reset-on-response` as soon as the first response byte arrives. Default `wait`.
   */
  readonly then?: 'wait' | 'reset' | 'reset-on-response';
  /** Source address, e.g. another 127.x address, so per-address limits see distinct peers. */
  readonly localAddress?: string;
  /** Give up (and destroy the socket) after this long. Default 5,000 ms. */
  readonly timeoutMs?: number;
}

/**
 * Sends raw bytes (an HTTP request, whole or cut short) to host:port over plain TCP and reports
 * what came back. Every socket it opens is destroyed before it resolves.
 */
export function rawRequest(host: string, port: number, request: string | Uint8Array, options: RawRequestOptions = {}): Promise<RawExchange> {
  const started = performance.now();
  const bytes = typeof request === 'string' ? Buffer.from(request, 'latin1') : Buffer.from(request);
  const toSend = bytes.subarray(0, options.cutAt ?? bytes.length);
  const then = options.then ?? 'wait';
  return new Promise((resolve) => {
    const socket: Socket = connect({ host, port, ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}) });
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (ending: RawExchange['ending']) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (ending === 'we-reset') socket.resetAndDestroy();
      else socket.destroy();
      const text = received.toString('latin1');
      const headEnd = text.indexOf('\r\n\r\n');
      const head = headEnd === -1 ? text : text.slice(0, headEnd);
      const status = /^HTTP\/1\.[01] (\d{3}) /.exec(head)?.[1];
      resolve({ ...(status !== undefined ? { status: Number(status) } : {}), head, ending, elapsedMs: performance.now() - started });
    };
    const timer = setTimeout(() => finish('timeout'), options.timeoutMs ?? 5_000);
    socket.on('error', () => finish('server-closed'));
    socket.on('close', () => finish('server-closed'));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (then === 'reset-on-response') finish('we-reset');
      // An upgraded connection stays open for WebSocket frames: the exchange is over at its 101.
      else if (received.includes('\r\n\r\n') && received.subarray(0, 13).toString('latin1') === 'HTTP/1.1 101 ') finish('upgraded');
    });
    socket.once('connect', () => {
      if (toSend.length > 0) socket.write(toSend);
      if (then === 'reset') finish('we-reset');
    });
  });
}

/** A WebSocket upgrade request for `target`, with `headers` added (e.g. an Authorization header). */
export function upgradeRequest(target: string, headers: Readonly<Record<string, string>> = {}): string {
  const lines = [
    `GET ${target} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export interface HealthReport {
  readonly probes: number;
  /** Probes that failed or did not get a 200. */
  readonly failures: number;
  readonly maxLatencyMs: number;
  readonly p99LatencyMs: number;
}

/**
 * Polls GET /healthz every `intervalMs` from a separate process until stopped, recording each
 * answer's latency; a probe that fails or gets no 200 counts as a failure. A process of its own,
 * so the latency measured is the coordinator's and not the busy caller's event loop. A benchmark's
 * tool (bench/hostile-health.bench.ts): tests check what /healthz answers, never how fast.
 */
export function monitorHealth(host: string, port: number, intervalMs = 25): { stop(): Promise<HealthReport> } {
  const script = `
    const http = require('node:http');
    let stopped = false;
    process.on('message', () => { stopped = true; });
    const probe = () => new Promise((resolve) => {
      const started = performance.now();
      const request = http.get({ host: ${JSON.stringify(host)}, port: ${port}, path: '/healthz', agent: false, timeout: 5000 }, (response) => {
        response.resume();
        response.on('end', () => resolve([response.statusCode, performance.now() - started]));
      });
      request.on('error', () => resolve([0, performance.now() - started]));
      request.on('timeout', () => request.destroy());
    });
    (async () => {
      const results = [];
      while (!stopped) {
        results.push(await probe());
        await new Promise((resolve) => setTimeout(resolve, ${intervalMs}));
      }
      process.send(results, () => process.exit(0));
    })();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const results = new Promise<[number, number][]>((resolve, reject) => {
    child.once('message', (message) => resolve(message as [number, number][]));
    child.once('exit', (code) => reject(new Error(`health monitor exited (${code}) before reporting`)));
  });
  results.catch(() => {}); // stop() reports it
  return {
    async stop() {
      // A failed send (the channel closed under us: EPIPE) must not become an uncaught error; a
      // child that is gone has already settled `results` one way or the other.
      if (child.connected) child.send('stop', () => {});
      const probes = await results;
      const latenciesMs = probes.map(([, latency]) => latency);
      return {
        probes: probes.length,
        failures: probes.filter(([status]) => status !== 200).length,
        maxLatencyMs: Math.max(0, ...latenciesMs),
        p99LatencyMs: latenciesMs.length === 0 ? 0 : [...latenciesMs].sort((a, b) => a - b)[Math.floor(0.99 * (latenciesMs.length - 1))]!,
      };
    },
  };
}
