/**
 * The browser entry's WebSocket transport against a real coordinator on 127.0.0.1. Node 20 has no
 * global WebSocket, so the `ws` package's WHATWG-style `WebSocket` class stands in for the
 * browser's: it sends no Authorization header here, so the token must travel in `?token=`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { builtinInitialModel, startCoordinator, type CoordinatorHandle } from '@shoal/coordinator';
import { PROTOCOL_VERSION, ShoalError, decodeCoordinatorMessage, encodeFrame } from '@shoal/protocol';
import { fedAvg } from '@shoal/strategy';
import { webSocketTransport, type WebSocketConstructor, type WebSocketLike } from '@shoal/client/browser';
import { upgradeStatus } from '@shoal/testkit';

const TOKEN = 'browser-secret';
const MODEL = builtinInitialModel('logreg', [2], 2, 7);
const TRAIN = { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;
/** `ws`'s class implements the WHATWG interface; its event types are its own, hence the cast. */
const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;

function rejectionOf(promise: Promise<unknown>): Promise<ShoalError> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (error: unknown) => {
      expect(error).toBeInstanceOf(ShoalError);
      return error as ShoalError;
    },
  );
}

describe('webSocketTransport (browser entry) over a real coordinator', () => {
  let coordinator: CoordinatorHandle | undefined;

  afterEach(async () => {
    await coordinator?.close();
    coordinator = undefined;
  });

  async function start(): Promise<CoordinatorHandle> {
    coordinator = await startCoordinator({ model: MODEL, tokens: [TOKEN], train: TRAIN, strategy: fedAvg(), rounds: 1 });
    return coordinator;
  }

  it('connects with the token in the query string and completes hello → welcome, frames as Uint8Array', async () => {
    const { url } = await start();
    const connection = await webSocketTransport(NodeWebSocket).connect(url, TOKEN);
    const frames: Uint8Array[] = [];
    const welcomed = new Promise<void>((resolve) => {
      connection.onFrame((frame) => {
        frames.push(frame);
        resolve();
      });
    });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => connection.onClose((code, reason) => resolve({ code, reason })));
    connection.send(encodeFrame({ type: 'hello', protocolVersion: PROTOCOL_VERSION, numExamples: 10, capabilities: ['fedavg'] }));
    await welcomed;

    expect(frames[0]).toBeInstanceOf(Uint8Array);
    const decoded = decodeCoordinatorMessage(frames[0]!);
    expect(decoded.ok && decoded.message.type).toBe('welcome');
    if (decoded.ok && decoded.message.type === 'welcome') expect(decoded.message.clientId).toMatch(/\S/);

    connection.close(1000, 'done');
    expect(await closed).toEqual({ code: 1000, reason: 'done' });
  });

  it('a wrong token: the upgrade it makes is refused with 401, and it rejects with CONNECTION_FAILED without echoing the token', async () => {
    const { url } = await start();
    const opened: string[] = [];
    // The WebSocket class a browser would use, recording the URL the transport opens.
    const Recording = function (this: unknown, target: string) {
      opened.push(target);
      return new NodeWebSocket(target);
    } as unknown as WebSocketConstructor;
    const error = await rejectionOf(webSocketTransport(Recording).connect(url, 'wrong-token'));
    expect(error.code).toBe('CONNECTION_FAILED');
    expect(error.message).not.toContain('wrong-token');
    // A browser cannot see the status; the refusal is checked on the very URL the transport opened.
    expect(opened).toHaveLength(1);
    expect(new URL(opened[0]!).searchParams.get('token')).toBe('wrong-token');
    expect(await upgradeStatus(opened[0]!)).toEqual({ opened: false, statusCode: 401 });
    expect(await upgradeStatus(opened[0]!.replace('wrong-token', TOKEN))).toEqual({ opened: true });
  });

  it('an unreachable coordinator rejects with CONNECTION_FAILED', async () => {
    const { url } = await start();
    await coordinator!.close();
    coordinator = undefined;
    expect((await rejectionOf(webSocketTransport(NodeWebSocket).connect(url, TOKEN))).code).toBe('CONNECTION_FAILED');
  });

  it('aborting the signal while connecting rejects with ABORTED', async () => {
    const { url } = await start();
    const controller = new AbortController();
    const connecting = webSocketTransport(NodeWebSocket).connect(url, TOKEN, controller.signal);
    controller.abort();
    expect((await rejectionOf(connecting)).code).toBe('ABORTED');
  });
});

describe('webSocketTransport with a scripted WebSocket', () => {
  /** Records the URL it was opened with and lets the test play the server's side. */
  class ScriptedWebSocket implements WebSocketLike {
    static last: ScriptedWebSocket | undefined;
    binaryType = 'blob';
    readonly sent: Uint8Array[] = [];
    onopen: ((event: unknown) => void) | null = null;
    onmessage: ((event: { readonly data: unknown }) => void) | null = null;
    onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null = null;
    onerror: ((event: unknown) => void) | null = null;
    closedWith: { code?: number; reason?: string } | undefined;
    constructor(readonly url: string) {
      ScriptedWebSocket.last = this;
    }
    send(data: Uint8Array): void {
      this.sent.push(data);
    }
    close(code?: number, reason?: string): void {
      this.closedWith = { ...(code !== undefined ? { code } : {}), ...(reason !== undefined ? { reason } : {}) };
    }
  }

  it('replaces a token already in the URL, asks for ArrayBuffers, and passes a text frame on as bytes', async () => {
    const connecting = webSocketTransport(ScriptedWebSocket).connect('ws://example.test:9/path?token=old&x=1', 'new token');
    const socket = ScriptedWebSocket.last!;
    expect(new URL(socket.url).searchParams.get('token')).toBe('new token');
    expect(new URL(socket.url).searchParams.get('x')).toBe('1');
    expect(socket.binaryType).toBe('arraybuffer');
    socket.onopen!({});
    const connection = await connecting;
    const frames: Uint8Array[] = [];
    connection.onFrame((frame) => frames.push(frame));
    socket.onmessage!({ data: new Uint8Array([1, 2, 3]).buffer });
    socket.onmessage!({ data: 'hi' });
    expect(frames.map((frame) => [...frame])).toEqual([[1, 2, 3], [104, 105]]);
  });

  it('closes with INVALID_MESSAGE rather than dropping a frame it cannot read', async () => {
    const connecting = webSocketTransport(ScriptedWebSocket).connect('ws://example.test:9', 't');
    const socket = ScriptedWebSocket.last!;
    socket.onopen!({});
    const connection = await connecting;
    connection.onFrame(() => expect.fail('no frame expected'));
    socket.onmessage!({ data: { size: 3 } }); // what a Blob would look like
    expect(socket.closedWith?.code).toBe(4002);
  });

  it('a malformed URL rejects with CONNECTION_FAILED', async () => {
    expect((await rejectionOf(webSocketTransport(ScriptedWebSocket).connect('not a url', 't'))).code).toBe('CONNECTION_FAILED');
  });
});
