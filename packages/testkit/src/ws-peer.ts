/**
 * A raw protocol peer for integration tests: a `ws` WebSocket that speaks Shoal frames by hand, so
 * a test can send exactly the bytes it wants (valid or not) and observe what the coordinator
 * answers and how it closes the connection. Every inbound frame is checked with the real
 * `decodeCoordinatorMessage`, so the coordinator's own output is validated along the way.
 */
import { request } from 'node:http';
import WebSocket from 'ws';
import {
  PROTOCOL_VERSION,
  decodeCoordinatorMessage,
  encodeFrame,
  type CoordinatorMessage,
  type HelloMessage,
  type TrainMessage,
  type UpdateMessage,
  type WelcomeMessage,
} from '@shoal/protocol';

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

export interface ConnectOptions {
  /** Sent as `Authorization: Bearer <token>` (or as `?token=` with `tokenInQuery`). Omit to send none. */
  readonly token?: string;
  readonly tokenInQuery?: boolean;
  /** ws 8 answers pings automatically; false makes this peer look dead to heartbeats. Default true. */
  readonly autoPong?: boolean;
}

type MessageOf<T extends CoordinatorMessage['type']> = Extract<CoordinatorMessage, { type: T }>;

interface Waiter {
  readonly type: CoordinatorMessage['type'];
  readonly resolve: (message: CoordinatorMessage) => void;
  readonly reject: (error: Error) => void;
}

/** Default wait for one message: well below vitest's timeout, so a hang fails with a clear message. */
const DEFAULT_WAIT_MS = 10_000;

export class WsPeer {
  /** Resolves when the socket closes (never rejects). */
  readonly closed: Promise<CloseInfo>;
  private readonly inbox: CoordinatorMessage[] = [];
  private readonly waiters = new Set<Waiter>();
  private closeInfo: CloseInfo | undefined;
  private invalid: string | undefined;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const waiter of this.waiters) waiter.reject(new Error(`connection closed (${code} ${this.closeInfo.reason}) while waiting for ${waiter.type}`));
        this.waiters.clear();
        resolve(this.closeInfo);
      });
    });
    ws.on('error', () => {}); // 'close' always follows; tests look at the close code
    ws.on('message', (data: Buffer, isBinary) => this.receive(data, isBinary));
  }

  /** Opens a WebSocket to `url` and resolves once it is open. Rejects on HTTP errors (e.g. 401). */
  static connect(url: string, options: ConnectOptions = {}): Promise<WsPeer> {
    const target = options.token !== undefined && options.tokenInQuery ? `${url}/?token=${encodeURIComponent(options.token)}` : url;
    const headers = options.token !== undefined && !options.tokenInQuery ? { authorization: `Bearer ${options.token}` } : undefined;
    const ws = new WebSocket(target, { perMessageDeflate: false, autoPong: options.autoPong ?? true, ...(headers ? { headers } : {}) });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new WsPeer(ws)));
      ws.once('error', reject);
    });
  }

  /** The close code and reason, once closed. */
  get closedWith(): CloseInfo | undefined {
    return this.closeInfo;
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Encodes `message` with Shoal's codec and sends it as one binary frame. */
  send(message: object): void {
    this.ws.send(encodeFrame(message), { binary: true });
  }

  sendBytes(bytes: Uint8Array): void {
    this.ws.send(bytes, { binary: true });
  }

  sendText(text: string): void {
    this.ws.send(text, { binary: false });
  }

  /** Sends a valid hello (fields may be overridden) and waits for `welcome`. */
  async hello(overrides: Partial<HelloMessage> = {}): Promise<WelcomeMessage> {
    this.send(validHello(overrides));
    return this.next('welcome');
  }

  /**
   * The next message of `type`, taken from the inbox (messages of other types stay queued).
   * Rejects when the connection closes first or after `timeoutMs` (Infinity: no timeout).
   */
  next<T extends CoordinatorMessage['type']>(type: T, timeoutMs = DEFAULT_WAIT_MS): Promise<MessageOf<T>> {
    if (this.invalid !== undefined) return Promise.reject(new Error(this.invalid));
    const index = this.inbox.findIndex((message) => message.type === type);
    if (index >= 0) return Promise.resolve(this.inbox.splice(index, 1)[0] as MessageOf<T>);
    if (this.closeInfo) return Promise.reject(new Error(`connection already closed (${this.closeInfo.code} ${this.closeInfo.reason}); no ${type} queued`));
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waiter: Waiter = {
        type,
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message as MessageOf<T>);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new Error(`no ${type} within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.waiters.add(waiter);
    });
  }

  /**
   * A barrier over the connection: sends a ping of our own and waits for the coordinator's pong.
   * Frames travel in order, so when it resolves 'open' the coordinator has read every frame this
   * peer sent before (an automatic pong included) and had not closed the connection before it
   * answered; 'closed' when the connection closed first.
   */
  roundTrip(): Promise<'open' | 'closed'> {
    if (this.ws.readyState !== WebSocket.OPEN) return Promise.resolve('closed');
    return new Promise((resolve) => {
      const onPong = () => {
        this.ws.off('close', onClose);
        resolve('open');
      };
      const onClose = () => {
        this.ws.off('pong', onPong);
        resolve('closed');
      };
      this.ws.once('pong', onPong);
      this.ws.once('close', onClose);
      this.ws.ping();
    });
  }

  /**
   * Resolves when the coordinator's next ping arrives (an automatic pong, if on, is already queued
   * then); rejects if the connection closes first.
   */
  nextPing(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onPing = () => {
        this.ws.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        this.ws.off('ping', onPing);
        reject(new Error(`connection closed (${this.closeInfo?.code ?? 'unknown code'}) while waiting for a ping`));
      };
      this.ws.once('ping', onPing);
      this.ws.once('close', onClose);
    });
  }

  /** How many messages of `type` arrived and are still queued (not taken by `next`). */
  queued(type: CoordinatorMessage['type']): number {
    return this.inbox.filter((message) => message.type === type).length;
  }

  /** Starts a normal close and waits for the socket to close. */
  async close(): Promise<CloseInfo> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000, 'test done');
    return this.closed;
  }

  /** Destroys the socket at once, as a crashed device or a lost network would. */
  terminate(): void {
    this.ws.terminate();
  }

  private receive(data: Buffer, isBinary: boolean): void {
    const decoded = decodeCoordinatorMessage(data);
    if (!isBinary || !decoded.ok) {
      // The coordinator must only ever send valid binary frames; make every later wait fail loudly.
      this.invalid = `coordinator sent an invalid frame: ${isBinary ? (decoded.ok ? '' : decoded.reason) : 'a text frame'}`;
      for (const waiter of this.waiters) waiter.reject(new Error(this.invalid));
      this.waiters.clear();
      return;
    }
    const message = decoded.message;
    for (const waiter of this.waiters) {
      if (waiter.type === message.type) {
        this.waiters.delete(waiter);
        waiter.resolve(message);
        return;
      }
    }
    this.inbox.push(message);
  }
}

/** A valid hello of the current protocol version. */
export function validHello(overrides: Partial<HelloMessage> = {}): HelloMessage {
  return { type: 'hello', protocolVersion: PROTOCOL_VERSION, numExamples: 10, capabilities: ['fedavg', 'dp'], ...overrides };
}

/** A valid update answering `train`. */
export function updateFor(train: TrainMessage, delta: Float32Array, numExamples: number): UpdateMessage {
  return {
    type: 'update',
    round: train.round,
    modelVersion: train.modelVersion,
    numExamples,
    delta,
    metrics: { loss: 0.5, accuracy: 0.5, trainMs: 1 },
  };
}

export interface ScriptedPeer {
  readonly peer: WsPeer;
  readonly welcome: WelcomeMessage;
  /** Every `train` received, in order. */
  readonly trains: TrainMessage[];
  /** Resolves when the connection closes and the script has stopped. */
  readonly done: Promise<CloseInfo>;
}

export interface ScriptOptions {
  readonly token: string;
  readonly numExamples: number;
  /** The delta to send for `train`. */
  readonly delta: (train: TrainMessage) => Float32Array;
  /** Awaited before each update is sent (e.g. a gate the test opens later). */
  readonly beforeUpdate?: (train: TrainMessage) => Promise<void>;
  readonly hello?: Partial<HelloMessage>;
}

/**
 * An honest scripted client: hello, then one valid update for every `train`, until the
 * connection closes.
 */
export async function startScriptedPeer(url: string, options: ScriptOptions): Promise<ScriptedPeer> {
  const peer = await WsPeer.connect(url, { token: options.token });
  const welcome = await peer.hello({ numExamples: options.numExamples, ...options.hello });
  const trains: TrainMessage[] = [];
  const loop = async () => {
    for (;;) {
      let train: TrainMessage;
      try {
        train = await peer.next('train', Infinity);
      } catch {
        return; // closed
      }
      trains.push(train);
      await options.beforeUpdate?.(train);
      if (peer.isOpen) peer.send(updateFor(train, options.delta(train), options.numExamples));
    }
  };
  const done = loop().then(() => peer.closed);
  return { peer, welcome, trains, done };
}

/** Tries a WebSocket upgrade and reports the HTTP status of a refused one (undefined when it opened). */
export function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<{ opened: boolean; statusCode?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    ws.on('error', () => {}); // terminate() below reports an abort as an error; the result is already known
    ws.once('open', () => {
      ws.terminate();
      resolve({ opened: true });
    });
    ws.once('unexpected-response', (_request, response) => {
      response.resume();
      ws.terminate();
      resolve({ opened: false, ...(response.statusCode !== undefined ? { statusCode: response.statusCode } : {}) });
    });
  });
}

/** GET /healthz on the coordinator behind a ws:// URL; resolves with the HTTP status. */
export function healthz(wsUrl: string): Promise<number> {
  const url = new URL('/healthz', wsUrl.replace(/^ws/, 'http'));
  return new Promise((resolve, reject) => {
    const req = request(url, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A promise plus the function that resolves it: a gate a test opens when it is ready. */
export function gate(): { readonly opened: Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}
