/**
 * The coordinator's view of one client connection, independent of the transport (real WebSockets
 * in production, an in-memory pair in simulations). The transport calls the returned handlers.
 */
export interface PeerConnection {
  /** Sends one binary frame. */
  send(frame: Uint8Array): void;
  /** Closes with a WebSocket close code and a short reason. Idempotent. */
  close(code: number, reason: string): void;
  /** Asks the peer to prove it is alive; the transport reports the answer through `alive()`. */
  ping(): void;
}

/** What the transport reports about a connection it opened. */
export interface PeerHandlers {
  message(frame: Uint8Array, isBinary: boolean): void;
  alive(): void;
  closed(code: number, reason: string): void;
  /**
   * Bytes of an unfinished frame this connection may have buffered now. A transport that buffers
   * partial frames (WebSockets) checks it as bytes arrive and calls `tooMuchBuffered` past it.
   */
  maxPartialBytes(): number;
  tooMuchBuffered(bytes: number): void;
}
