// One virtual client: a real ShoalClient holding its share of the simulation's data. Every host of
// virtual clients (the runner, its worker threads, `shoal swarm`) builds them here, so a client is
// the same whichever process runs it.
import { ShoalClient, type ClientTransport } from '@shoal/client';
import type { ShoalConfig } from './config.js';
import { subset, type Dataset } from './datasets.js';

/** Where a virtual client connects, and how. */
export interface VirtualClientLink {
  readonly url: string;
  readonly token: string;
  readonly transport: ClientTransport;
}

/** Client number `clientNumber` of `config`, holding `train`'s examples at `indices`. */
export function virtualClient(config: ShoalConfig, train: Dataset, indices: Int32Array, clientNumber: number, link: VirtualClientLink): ShoalClient {
  const data = subset(train, indices);
  return new ShoalClient({
    url: link.url,
    token: link.token,
    transport: link.transport,
    data: { x: data.x, y: data.y, featureShape: data.featureShape },
    shuffleSeed: config.seed * 100_003 + clientNumber, // reproducible local training
    prepare: async () => {}, // the host chooses the backend once for all its virtual clients
  });
}
