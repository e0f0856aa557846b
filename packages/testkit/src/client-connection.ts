import { decodeClientMessage, encodeFrame, type ClientMessage, type ClientMessageLimits, type CoordinatorMessage } from '@shoal/protocol';
import type { WebSocket } from 'ws';

/**
 * One SDK client's connection to a coordinator the test writes itself (a lying coordinator): every
 * message the client sent, in arrival order, validated as the real coordinator would.
 */
export class ClientConnection {
  /** Everything the client sent, in order. */
  readonly log: ClientMessage[] = [];
  private readonly unread: ClientMessage[] = [];
  private readonly waiting = new Set<() => void>();

  constructor(
    readonly ws: WebSocket,
    limits: ClientMessageLimits,
  ) {
    ws.on('message', (data: Buffer) => {
      const decoded = decodeClientMessage(new Uint8Array(data), limits);
      if (!decoded.ok) throw new Error(`a client sent an invalid frame: ${decoded.reason}`);
      this.log.push(decoded.message);
      this.unread.push(decoded.message);
      for (const wake of [...this.waiting]) wake();
    });
  }

  /** The first unread message of one of `types`. */
  async next<T extends ClientMessage['type']>(...types: [T, ...T[]]): Promise<Extract<ClientMessage, { type: T }>> {
    for (;;) {
      const index = this.unread.findIndex((message) => (types as string[]).includes(message.type));
      if (index >= 0) return this.unread.splice(index, 1)[0] as Extract<ClientMessage, { type: T }>;
      await new Promise<void>((resolve) => {
        const wake = () => (this.waiting.delete(wake), resolve());
        this.waiting.add(wake);
      });
    }
  }

  send(message: CoordinatorMessage): void {
    this.ws.send(encodeFrame(message), { binary: true });
  }

  /** The types the client sent for `round`. */
  sentFor(round: number): string[] {
    return this.log.filter((message) => 'round' in message && message.round === round).map((message) => message.type);
  }
}
