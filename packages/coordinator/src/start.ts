import { Coordinator, type TrainingSummary } from './coordinator.js';
import type { CoordinatorOptions } from './options.js';
import type { RoundMetrics } from './round.js';
import { serveCoordinator } from './server.js';

/** A running coordinator: where it listens, what it did so far, and how to stop it. */
export interface CoordinatorHandle {
  readonly url: string;
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
 * checkpoint in `checkpointDir` when there is one.
 *
 * @param listen host and port to listen on; default 127.0.0.1 and an OS-chosen port.
 */
export async function startCoordinator(
  options: CoordinatorOptions,
  listen: { host?: string; port?: number } = {},
): Promise<CoordinatorHandle> {
  const coordinator = new Coordinator(options);
  await coordinator.restore();
  const server = await serveCoordinator(coordinator, { host: listen.host ?? '127.0.0.1', port: listen.port ?? 0 });
  const finished = coordinator.run();
  // The WebSocket server stays up after the last round so that clients can read the close code.
  return {
    url: server.url,
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
