import type { Coordinator } from '@shoal/coordinator';
import type { ClientConnection, ClientTransport } from '@shoal/client';
import { ShoalError } from '@shoal/protocol';

/**
 * Connects clients straight to an in-process coordinator without sockets, for fast simulations.
 * Frames are copied and delivered asynchronously (as a socket would), so neither side can observe
 * or mutate the other's buffers, and message order is preserved. It stands in for the WebSocket
 * only: both sides run exactly the code they run over `ws`.
 */
export function memoryTransport(coordinator: Coordinator, tokens: readonly string[]): ClientTransport {
  return {
    async connect(_url, token) {
      if (!tokens.includes(token)) throw new ShoalError('UNAUTHORIZED', 'in-memory coordinator rejected the token');
      let onFrame: (frame: Uint8Array) => void = () => {};
      let onClose: (code: number, reason: string) => void = () => {};
      let open = true;
      const shut = (code: number, reason: string) => {
        if (!open) return;
        open = false;
        // Frames already in flight are delivered first, then both ends learn of the close.
        setImmediate(() => {
          handlers.closed(code, reason);
          onClose(code, reason);
        });
      };
      const handlers = coordinator.accept({
        send: (frame) => {
          const copy = new Uint8Array(frame); // a copy even of a Buffer, whose slice() is a view
          if (open) setImmediate(() => onFrame(copy));
        },
        close: shut,
        ping: () => setImmediate(() => open && handlers.alive()),
      });
      const connection: ClientConnection = {
        send: (frame) => {
          const copy = new Uint8Array(frame); // a copy even of a Buffer, whose slice() is a view
          if (open) setImmediate(() => handlers.message(copy, true));
        },
        close: (code = 1000, reason = '') => shut(code, reason),
        onFrame: (handler) => (onFrame = handler),
        onClose: (handler) => (onClose = handler),
      };
      return connection;
    },
  };
}
