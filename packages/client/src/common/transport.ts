/** One open connection to a coordinator, as the client SDK needs it. */
export interface ClientConnection {
  send(frame: Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** Registers the single frame handler. */
  onFrame(handler: (frame: Uint8Array) => void): void;
  /** Registers the single close handler; called once. */
  onClose(handler: (code: number, reason: string) => void): void;
}

/**
 * Opens connections. Rejects with ShoalError UNAUTHORIZED when the coordinator refuses the token
 * (HTTP 401), and CONNECTION_FAILED when it cannot be reached.
 */
export interface ClientTransport {
  connect(url: string, token: string, signal?: AbortSignal): Promise<ClientConnection>;
}
