/**
 * A coordinator scripted by the test: a `ws` WebSocketServer on 127.0.0.1 port 0 that decodes
 * every client frame and lets the test answer by hand, so it controls every byte the client sees.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeClientMessage, encodeFrame, type ClientMessage, type CoordinatorMessage } from '@shoal/protocol';

/** One accepted connection: the client's messages, decoded, in arrival order. */
export class ScriptedConnection {
  /** Every message the client sent on this connection, in order. */
  readonly log: ClientMessage[] = [];
  private readonly unread: ClientMessage[] = [];
  private readonly waiting = new Set<() => void>();
  readonly closed: Promise<number>;

  constructor(
    readonly ws: WebSocket,
    numParams: number,
  ) {
    ws.on('message', (data: Buffer) => {
      const decoded = decodeClientMessage(new Uint8Array(data), { numParams });
      if (!decoded.ok) throw new Error(`client sent an invalid frame: ${decoded.reason}`);
      this.log.push(decoded.message);
      this.unread.push(decoded.message);
      for (const wake of [...this.waiting]) wake();
    });
    this.closed = once(ws, 'close').then(([code]) => code as number);
  }

  /** The first unread message of `type`, or of any of `types` (earlier unread messages of other types stay unread). */
  async next<T extends ClientMessage['type']>(...types: [T, ...T[]]): Promise<Extract<ClientMessage, { type: T }>> {
    for (;;) {
      const index = this.unread.findIndex((message) => (types as readonly string[]).includes(message.type));
      if (index >= 0) return this.unread.splice(index, 1)[0] as Extract<ClientMessage, { type: T }>;
      await new Promise<void>((resolve) => {
        const wake = () => (this.waiting.delete(wake), resolve());
        this.waiting.add(wake);
      });
    }
  }

  send(message: CoordinatorMessage | Uint8Array): void {
    this.ws.send(message instanceof Uint8Array ? message : encodeFrame(message), { binary: true });
  }
}

export interface ScriptedCoordinator {
  readonly url: string;
  /** The `n`th connection (1-based), once the client has opened it. */
  connection(n: number): Promise<ScriptedConnection>;
  close(): Promise<void>;
}

/** Starts a scripted coordinator for a model of `numParams` parameters. */
export async function startScriptedCoordinator(numParams: number): Promise<ScriptedCoordinator> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await once(wss, 'listening');
  const connections: ScriptedConnection[] = [];
  let accepted: (() => void) | undefined;
  wss.on('connection', (ws) => {
    connections.push(new ScriptedConnection(ws, numParams));
    accepted?.();
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    async connection(n) {
      while (connections.length < n) await new Promise<void>((resolve) => (accepted = resolve));
      return connections[n - 1]!;
    },
    close: () =>
      new Promise((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}
