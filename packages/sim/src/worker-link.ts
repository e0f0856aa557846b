// The in-memory transport stretched across a thread boundary: virtual clients in a worker thread
// reach the coordinator in the main thread through the worker's MessagePort, with the semantics of
// `memoryTransport`: every frame is a copy (its buffer is transferred, so neither side can touch
// the other's bytes), frames arrive in order and asynchronously, and a close from either end
// reaches both ends after the frames already in flight.
import type { MessagePort, Worker } from 'node:worker_threads';
import type { Coordinator, PeerHandlers } from '@shoal/coordinator';
import type { ClientConnection, ClientTransport } from '@shoal/client';
import { ShoalError } from '@shoal/protocol';

/** Messages a worker's clients send to the coordinator's side, one connection each (`connection` numbers it). */
export type ClientSideMessage =
  | { readonly kind: 'open'; readonly connection: number; readonly token: string }
  | { readonly kind: 'frame'; readonly connection: number; readonly frame: Uint8Array }
  | { readonly kind: 'close'; readonly connection: number; readonly code: number; readonly reason: string };

/** Messages the coordinator's side sends back. `closed` is the last message of a connection. */
export type CoordinatorSideMessage =
  | { readonly kind: 'opened'; readonly connection: number }
  | { readonly kind: 'refused'; readonly connection: number; readonly reason: string }
  | { readonly kind: 'frame'; readonly connection: number; readonly frame: Uint8Array }
  | { readonly kind: 'closed'; readonly connection: number; readonly code: number; readonly reason: string };

/** The two ends' ports: a worker thread's `parentPort`, and the `Worker` object in the main thread. */
type Port = Pick<MessagePort, 'postMessage'>;

/** Worker side: a transport whose connections go through `port` (the worker's `parentPort`). */
export function portTransport(port: Port): { readonly transport: ClientTransport; readonly receive: (message: CoordinatorSideMessage) => void } {
  const pending = new Map<number, { resolve: (connection: ClientConnection) => void; reject: (error: Error) => void; connection: ClientConnection }>();
  const live = new Map<number, { onFrame: (frame: Uint8Array) => void; onClose: (code: number, reason: string) => void }>();
  let nextConnection = 1;
  const transport: ClientTransport = {
    connect(_url, token) {
      const id = nextConnection++;
      let open = true; // until this end closes, or hears the close
      const handlers = { onFrame: (_frame: Uint8Array) => {}, onClose: (_code: number, _reason: string) => {} };
      const connection: ClientConnection = {
        send(frame) {
          if (!open) return;
          const copy = new Uint8Array(frame); // a copy even of a Buffer, whose slice() is a view
          port.postMessage({ kind: 'frame', connection: id, frame: copy } satisfies ClientSideMessage, [copy.buffer]);
        },
        close(code = 1000, reason = '') {
          if (!open) return;
          open = false;
          // This end learns of its own close when the other end confirms it, after the frames in flight.
          port.postMessage({ kind: 'close', connection: id, code, reason } satisfies ClientSideMessage);
        },
        onFrame: (handler) => (handlers.onFrame = handler),
        onClose: (handler) => (handlers.onClose = handler),
      };
      live.set(id, {
        onFrame: (frame) => handlers.onFrame(frame),
        onClose: (code, reason) => {
          open = false;
          handlers.onClose(code, reason);
        },
      });
      port.postMessage({ kind: 'open', connection: id, token } satisfies ClientSideMessage);
      return new Promise((resolve, reject) => pending.set(id, { resolve, reject, connection }));
    },
  };
  const receive = (message: CoordinatorSideMessage): void => {
    const id = message.connection;
    switch (message.kind) {
      case 'opened':
        pending.get(id)?.resolve(pending.get(id)!.connection);
        pending.delete(id);
        return;
      case 'refused':
        pending.get(id)?.reject(new ShoalError('UNAUTHORIZED', message.reason));
        pending.delete(id);
        live.delete(id);
        return;
      case 'frame':
        live.get(id)?.onFrame(message.frame);
        return;
      case 'closed': {
        const connection = live.get(id);
        live.delete(id);
        connection?.onClose(message.code, message.reason);
        return;
      }
    }
  };
  return { transport, receive };
}

/**
 * Main-thread side: serves the connections of one worker's clients to `coordinator`, accepting
 * only `tokens`. Returns the handler for the worker's messages, and `closeAll`, which tells the
 * coordinator that every connection of this worker is gone (the worker stopped).
 */
export function coordinatorPort(worker: Pick<Worker, 'postMessage'>, coordinator: Coordinator, tokens: readonly string[]): { readonly receive: (message: ClientSideMessage) => void; readonly closeAll: () => void } {
  const connections = new Map<number, { handlers: PeerHandlers; open: boolean }>();
  const post = (message: CoordinatorSideMessage, transfer: ArrayBuffer[] = []) => worker.postMessage(message, transfer);
  /** Ends a connection on the coordinator's side (once), and tells the client's side. */
  const shut = (id: number, code: number, reason: string) => {
    const connection = connections.get(id);
    if (connection === undefined || !connection.open) return;
    connection.open = false;
    connections.delete(id);
    post({ kind: 'closed', connection: id, code, reason });
    setImmediate(() => connection.handlers.closed(code, reason));
  };
  const receive = (message: ClientSideMessage): void => {
    const id = message.connection;
    switch (message.kind) {
      case 'open': {
        if (!tokens.includes(message.token)) return post({ kind: 'refused', connection: id, reason: 'in-memory coordinator rejected the token' });
        const connection = { open: true } as { handlers: PeerHandlers; open: boolean };
        connections.set(id, connection);
        connection.handlers = coordinator.accept({
          send: (frame) => {
            if (!connection.open) return;
            const copy = new Uint8Array(frame); // a copy even of a Buffer, whose slice() is a view
            post({ kind: 'frame', connection: id, frame: copy }, [copy.buffer]);
          },
          close: (code, reason) => shut(id, code, reason),
          // As in memoryTransport: the link itself cannot die, so a ping is answered at once.
          ping: () => setImmediate(() => connection.open && connection.handlers.alive()),
        });
        return post({ kind: 'opened', connection: id });
      }
      case 'frame': {
        const connection = connections.get(id);
        if (connection?.open) connection.handlers.message(message.frame, true);
        return;
      }
      case 'close':
        return shut(id, message.code, message.reason);
    }
  };
  const closeAll = () => {
    for (const [id, connection] of [...connections]) {
      connection.open = false;
      connections.delete(id);
      connection.handlers.closed(1006, 'simulation worker stopped');
    }
  };
  return { receive, closeAll };
}
