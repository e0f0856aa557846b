import { Coordinator, type CoordinatorRole, type TrainingSummary } from './coordinator.js';
import type { CoordinatorOptions } from './options.js';
import type { RoundMetrics } from './round.js';
import { serveCoordinator, type TlsCredentials } from './server.js';

/** A running coordinator: where it listens, what it did so far, and how to stop it. */
export interface CoordinatorHandle {
  /** `ws://host:port`, or `wss://` with TLS. */
  readonly url: string;
  /** The same port over HTTP(S), for `/healthz`, `/readyz`, `/metrics` and `/dashboard`. */
  readonly httpUrl: string;
  readonly host: string;
  readonly port: number;
  /** Metrics of the rounds finished so far. */
  readonly history: readonly RoundMetrics[];
  /** Resolves when all rounds ran (or `close()` stopped training). */
  readonly finished: Promise<TrainingSummary>;
  globalWeights(): Float32Array;
  /** Stops training (a round in flight is discarded), closes every connection and the server. */
  close(): Promise<void>;
}

/**
 * Starts a coordinator on a WebSocket server and begins training at once. Resumes from the newest
 * checkpoint in `checkpointDir` when there is one. The server listens before the checkpoint is
 * read, so `/healthz` answers at once and `/readyz` says 503 until the restore is done (upgrades
 * are refused with 503 until then, too).
 *
 * @param listen host and port to listen on; default 127.0.0.1 and an OS-chosen port. With `tls`
 *   (PEM certificate chain and key) it serves `wss://` and `https://` only.
 * @param role where the rounds come from and whether devices connect here (scale-out's gateway and
 *   leader); default: a single-machine coordinator.
 */
export async function startCoordinator(
  options: CoordinatorOptions,
  listen: { host?: string; port?: number; tls?: TlsCredentials } = {},
  role: CoordinatorRole = {},
): Promise<CoordinatorHandle> {
  const coordinator = new Coordinator(options, role);
  const server = await serveCoordinator(coordinator, { host: listen.host ?? '127.0.0.1', port: listen.port ?? 0, ...(listen.tls ? { tls: listen.tls } : {}) });
  try {
    await coordinator.restore();
  } catch (error) {
    await server.close();
    throw error;
  }
  const finished = coordinator.run();
  // The WebSocket server stays up after the last round so that clients can read the close code.
  return {
    url: server.url,
    httpUrl: server.httpUrl,
    host: server.host,
    port: server.port,
    history: coordinator.history,
    finished,
    globalWeights: () => coordinator.globalWeights(),
    async close() {
      coordinator.stop();
      await finished;
      await server.close();
    },
  };
}
