import WebSocket from 'ws';
import { ShoalError } from '@shoal/protocol';
import type { ClientConnection, ClientTransport } from '../common/transport.js';

/** Options of `nodeWsTransport`. */
export interface NodeWsTransportOptions {
  /**
   * Certificate authorities to trust for `wss://` instead of Node's bundled ones (PEM): e.g. a
   * coordinator's self-signed certificate. Default: Node's trust store.
   */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
}

/** Connects with the `ws` package, sending the token as `Authorization: Bearer`. */
export const wsTransport: ClientTransport = nodeWsTransport();

/** `wsTransport` with TLS options, e.g. a CA to trust for a `wss://` coordinator. */
export function nodeWsTransport(options: NodeWsTransportOptions = {}): ClientTransport {
  const tls = options.ca !== undefined ? { ca: typeof options.ca === 'string' || Buffer.isBuffer(options.ca) ? options.ca : [...options.ca] } : {};
  return { connect: (url, token, signal) => connect(url, token, tls, signal) };
}

function connect(url: string, token: string, tls: { readonly ca?: string | Buffer | (string | Buffer)[] }, signal?: AbortSignal): Promise<ClientConnection> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false, ...tls });
    ws.binaryType = 'nodebuffer';
    let settled = false;
    const fail = (error: ShoalError) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      ws.terminate();
      reject(error);
    };
    const onAbort = () => fail(new ShoalError('ABORTED', 'connect aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    ws.once('unexpected-response', (_request, response) => {
      fail(
        response.statusCode === 401
          ? new ShoalError('UNAUTHORIZED', `coordinator at ${url} rejected the token (HTTP 401)`)
          : new ShoalError('CONNECTION_FAILED', `coordinator at ${url} answered HTTP ${response.statusCode} to the upgrade`),
      );
    });
    ws.once('error', (error) => fail(new ShoalError('CONNECTION_FAILED', `cannot reach coordinator at ${url}: ${error.message}`, { cause: error })));
    ws.once('open', () => {
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      ws.removeAllListeners('error');
      ws.on('error', () => {}); // a 'close' event always follows; the close handler reports it
      resolve(wrap(ws));
    });
  });
}

function wrap(ws: WebSocket): ClientConnection {
  return {
    send: (frame) => ws.send(frame, { binary: true }),
    close: (code, reason) => ws.close(code, reason),
    onFrame(handler) {
      ws.on('message', (data: Buffer) => handler(data));
    },
    onClose(handler) {
      ws.once('close', (code, reason) => handler(code, reason.toString()));
    },
  };
}
