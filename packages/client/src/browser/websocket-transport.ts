import { ShoalError, closeCodeOf } from '@shoal/protocol';
import type { ClientConnection, ClientTransport } from '../common/transport.js';

/**
 * The part of the WHATWG `WebSocket` this transport uses. Browsers' `WebSocket` has it, and so does
 * the `ws` package's `WebSocket` class (which tests inject, since Node 20 has no global WebSocket).
 */
export interface WebSocketLike {
  binaryType: string;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { readonly data: unknown }) => void) | null;
  onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/**
 * Connects with the native `WebSocket`. Browsers cannot set headers on a WebSocket upgrade, so the
 * token travels as the `?token=` query parameter, which the coordinator accepts in place of
 * `Authorization: Bearer`. Frames are delivered as `Uint8Array` (`binaryType = 'arraybuffer'`).
 *
 * A browser does not reveal why an upgrade failed: a refused token (HTTP 401) and an unreachable
 * coordinator both look like a close before open, so both reject with ShoalError
 * `CONNECTION_FAILED` (never `UNAUTHORIZED`), and the client keeps retrying with backoff. Check the
 * token when a browser client cannot connect to a coordinator that is up.
 *
 * @param WebSocketImpl The WebSocket class. Default: `globalThis.WebSocket`, looked up when
 *   connecting (so importing this module never fails where there is none).
 */
export function webSocketTransport(WebSocketImpl?: WebSocketConstructor): ClientTransport {
  return {
    connect(url, token, signal) {
      const Impl = WebSocketImpl ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
      if (Impl === undefined) {
        return Promise.reject(new ShoalError('INVALID_CONFIG', 'this runtime has no global WebSocket; pass a WebSocket class to webSocketTransport()'));
      }
      if (signal?.aborted) return Promise.reject(new ShoalError('ABORTED', 'connect aborted'));
      return open(Impl, url, token, signal);
    },
  };
}

function open(Impl: WebSocketConstructor, url: string, token: string, signal: AbortSignal | undefined): Promise<ClientConnection> {
  return new Promise((resolve, reject) => {
    let socket: WebSocketLike;
    try {
      socket = new Impl(withToken(url, token));
    } catch (error) {
      // A malformed URL or a scheme other than ws:/wss: throws at once (a SyntaxError in browsers).
      reject(new ShoalError('CONNECTION_FAILED', `cannot open a WebSocket to ${url}: ${messageOf(error)}`, { cause: error }));
      return;
    }
    socket.binaryType = 'arraybuffer';
    const settle = () => {
      signal?.removeEventListener('abort', onAbort);
      socket.onopen = null;
      socket.onclose = null;
      // An 'error' event carries no detail in browsers and is always followed by 'close' (also
      // after close() while connecting), so it stays silenced; the close handler reports.
      socket.onerror = () => {};
    };
    const onAbort = () => {
      settle();
      socket.close();
      reject(new ShoalError('ABORTED', 'connect aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.onerror = () => {}; // see settle()
    socket.onclose = (event) => {
      settle();
      reject(
        new ShoalError(
          'CONNECTION_FAILED',
          `cannot connect to coordinator at ${url} (WebSocket closed with code ${event.code} before opening); ` +
            'a browser reports a refused token (HTTP 401) the same way, so check the token too',
        ),
      );
    };
    socket.onopen = () => {
      settle();
      resolve(wrap(socket));
    };
  });
}

/** `url` with `token` set as its `token` query parameter (replacing any already there). */
function withToken(url: string, token: string): string {
  const target = new URL(url);
  target.searchParams.set('token', token);
  return target.toString();
}

function wrap(socket: WebSocketLike): ClientConnection {
  return {
    send: (frame) => socket.send(frame),
    close: (code, reason) => socket.close(code, reason),
    onFrame(handler) {
      socket.onmessage = (event) => {
        const frame = bytesOf(event.data);
        if (frame !== undefined) handler(frame);
        // Only if the app changed binaryType: refuse rather than drop frames silently.
        else socket.close(closeCodeOf('INVALID_MESSAGE'), "frame was not binary; binaryType must stay 'arraybuffer'");
      };
    },
    onClose(handler) {
      socket.onclose = (event) => {
        socket.onmessage = null;
        handler(event.code, event.reason);
      };
    },
  };
}

/**
 * Binary frames arrive as ArrayBuffer. The coordinator never sends text frames; one is passed on as
 * its UTF-8 bytes so the client's decoder rejects it as malformed instead of it vanishing.
 */
function bytesOf(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (typeof data === 'string') return new TextEncoder().encode(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
