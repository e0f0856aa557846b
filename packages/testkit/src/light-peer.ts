/**
 * A light protocol peer for load runs: one raw `ws` socket that says hello, waits for welcome and
 * then only answers heartbeats, holding as little state as a connected device's socket needs, so
 * one process can hold thousands. Unlike `WsPeer` it keeps no inbox: any frame after welcome is
 * only counted.
 *
 * Heartbeat round trip, as this peer measures it: when the coordinator's ping arrives, ws has
 * already queued the automatic pong; the peer then sends a ping of its own and times the
 * coordinator's pong to it. Frames travel in order, so that pong comes back only after the
 * coordinator has read the heartbeat pong and answered the next frame: the time the coordinator
 * takes to take in a heartbeat answer while it pings every connection at once, plus the loopback
 * round trip and this process's own event-loop delay (which the figure therefore overstates).
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { decodeCoordinatorMessage, encodeFrame, type WelcomeMessage } from '@shoal/protocol';
import { validHello } from './ws-peer.js';

export interface LightPeerOptions {
  readonly token: string;
  /** Source address of the socket (any 127.x.y.z on Linux loopback): spreads the ephemeral ports. */
  readonly localAddress?: string;
  /** Milliseconds to wait for welcome before giving up (the socket is then destroyed). Default 60 s. */
  readonly welcomeTimeoutMs?: number;
}

export interface PeerClose {
  readonly code: number;
  readonly reason: string;
  /** performance.now() in this process when the close arrived. */
  readonly atMs: number;
}

export class LightPeer {
  /** Coordinator pings received since welcome. */
  pingsSeen = 0;
  /** Frames after welcome (a light peer expects none while idle). */
  framesAfterWelcome = 0;
  /** Set when the socket closes. */
  closed: PeerClose | undefined;
  /** Heartbeat round trips (ms) measured while `measuring` is on. */
  readonly roundTripsMs: number[] = [];
  measuring = false;
  private probeSentAt: number | undefined;

  private constructor(
    private readonly ws: WebSocket,
    readonly welcome: WelcomeMessage,
  ) {
    ws.on('ping', () => {
      this.pingsSeen++;
      // One probe at a time: a probe still out when the next heartbeat comes is left to finish.
      if (!this.measuring || this.probeSentAt !== undefined || ws.readyState !== WebSocket.OPEN) return;
      this.probeSentAt = performance.now();
      ws.ping();
    });
    ws.on('pong', () => {
      if (this.probeSentAt === undefined) return;
      this.roundTripsMs.push(performance.now() - this.probeSentAt);
      this.probeSentAt = undefined;
    });
    ws.on('message', () => this.framesAfterWelcome++);
    ws.on('close', (code, reason) => (this.closed = { code, reason: reason.toString(), atMs: performance.now() }));
  }

  /** Connects, says hello and resolves once welcomed; rejects (and destroys the socket) otherwise. */
  static open(url: string, options: LightPeerOptions): Promise<LightPeer> {
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      headers: { authorization: `Bearer ${options.token}` },
      ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
    });
    return new Promise((resolve, reject) => {
      const fail = (why: string) => {
        clearTimeout(timer);
        ws.removeAllListeners('message');
        ws.on('error', () => {}); // terminate() may report the abort; the rejection already says why
        ws.terminate();
        reject(new Error(why));
      };
      const timer = setTimeout(() => fail(`no welcome within ${options.welcomeTimeoutMs ?? 60_000} ms`), options.welcomeTimeoutMs ?? 60_000);
      ws.once('error', (error) => fail(`connection failed: ${error.message}`));
      ws.once('unexpected-response', (_request, response) => fail(`upgrade refused with HTTP ${response.statusCode}`));
      ws.once('close', (code, reason) => fail(`closed before welcome: ${code} ${reason.toString()}`));
      ws.once('open', () => ws.send(encodeFrame(validHello()), { binary: true }));
      ws.once('message', (data: Buffer) => {
        const decoded = decodeCoordinatorMessage(data);
        if (!decoded.ok || decoded.message.type !== 'welcome') return fail(`expected welcome, got ${decoded.ok ? decoded.message.type : decoded.reason}`);
        clearTimeout(timer);
        ws.removeAllListeners('error');
        ws.removeAllListeners('close');
        ws.on('error', () => {}); // 'close' follows and is recorded
        resolve(new LightPeer(ws, decoded.message));
      });
    });
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Destroys the socket at once (the end of a load run: no close handshake per connection). */
  terminate(): void {
    this.ws.terminate();
  }
}
