// One virtual client: a real ShoalClient holding its share of the simulation's data. Every host of
// virtual clients (the runner, its worker threads, `shoal swarm`) builds them here, so a client is
// the same whichever process runs it.
import { setMaxListeners } from 'node:events';
import { ShoalClient, initBackend, wsTransport, type ClientTransport } from '@shoal/client';
import { createSeededRandom } from '@shoal/protocol';
import type { ShoalConfig } from './config.js';
import { subset, type Dataset } from './datasets.js';
import { HELD_OUT_DEFAULT, splitHeldOut } from './held-out.js';
import { clientData, type ClientData } from './client-data.js';
import { faultRandom, straggling, withFaults } from './faults.js';

/** Where a virtual client connects, and how. */
export interface VirtualClientLink {
  readonly url: string;
  readonly token: string;
  readonly transport: ClientTransport;
}

/**
 * Client number `clientNumber` of `config`, holding `train`'s examples at `indices`. With
 * `federatedEvaluation` on, `simulation.heldOut` of them (seeded per client) are held out as its
 * evaluation data and not trained on.
 */
export function virtualClient(config: ShoalConfig, train: Dataset, indices: Int32Array, clientNumber: number, link: VirtualClientLink): ShoalClient {
  const split = config.federatedEvaluation ? splitHeldOut(indices, config.simulation.heldOut ?? HELD_OUT_DEFAULT, config.seed * 100_003 + clientNumber + 0x4e1d) : undefined;
  const data = subset(train, split?.train ?? indices);
  const evaluationData = split && split.heldOut.length > 0 ? subset(train, split.heldOut) : undefined;
  return new ShoalClient({
    ...(evaluationData ? { evaluationData: { x: evaluationData.x, y: evaluationData.y, featureShape: evaluationData.featureShape } } : {}),
    url: link.url,
    token: link.token,
    transport: link.transport,
    data: { x: data.x, y: data.y, featureShape: data.featureShape },
    shuffleSeed: config.seed * 100_003 + clientNumber, // reproducible local training
    roundingSeed: config.seed * 100_003 + clientNumber + 0x5ec, // and reproducible SecAgg encodings
    ...(partialWork(config) ? { localEpochs: (round: number, epochs: number) => straggling(config.seed, clientNumber, round, config.faults.stragglers).epochs(epochs) } : {}),
    prepare: async () => {}, // the host chooses the backend once for all its virtual clients
    // Most virtual clients sit idle in any round: a model each would dominate a large simulation's memory.
    releaseModelBetweenRounds: true,
  });
}

/** Whether the config's stragglers train part of the epochs (rather than vanish, or there being none). */
function partialWork(config: ShoalConfig): boolean {
  return config.faults.stragglers > 0 && config.faults.stragglerPolicy === 'partial';
}

/** The config's data divided among its clients, as every host derives it (the first fork of the seed's generator). */
export function simulationData(config: ShoalConfig): ClientData {
  return clientData(config, createSeededRandom(config.seed).fork());
}

/**
 * Client numbers `clientNumbers` of `config`, each connecting through its own fault injection
 * (drawn from the seed and its number), so a client drops out in the same rounds wherever it runs.
 */
export function virtualClients(config: ShoalConfig, data: ClientData, clientNumbers: readonly number[], link: VirtualClientLink): Map<number, ShoalClient> {
  return new Map(
    clientNumbers.map((k) => {
      const straggles = (round: number) => straggling(config.seed, k, round, config.faults.stragglers).straggles;
      const transport = withFaults(link.transport, config.faults, faultRandom(config.seed, k), straggles);
      return [k, virtualClient(config, data.train, data.partitions[k]!, k, { ...link, transport })];
    }),
  );
}

/**
 * Runs a set of virtual clients until training ends or `close()`: every host of virtual clients (the
 * runner's thread, a worker thread, `shoal swarm`) starts and ends them through one of these.
 */
export class VirtualClientHost {
  private readonly stopping = new AbortController();
  private readonly running: Promise<void>[] = [];

  constructor(readonly clients: ReadonlyMap<number, ShoalClient>) {
    setMaxListeners(4 * clients.size + 10, this.stopping.signal); // every client listens on it
  }

  /** Whether `stop()` or `close()` was called. */
  get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  /**
   * Runs client `clientNumber` (`done`: its run). `joined` resolves when the coordinator first
   * welcomes it, or when it stops before that: hosts start the next client only then, so a fresh
   * coordinator admits clients in client-number order and client k is `c${k + 1}` in every run,
   * whichever thread or process hosts it.
   */
  start(clientNumber: number): { readonly joined: Promise<void>; readonly done: Promise<void> } {
    const client = this.clients.get(clientNumber);
    if (client === undefined) throw new RangeError(`this host does not hold client ${clientNumber}`);
    let stopListening = () => {};
    const joined = new Promise<void>((resolve) => (stopListening = client.on('connected', () => resolve())));
    const done = client.run({ signal: this.stopping.signal });
    const settled = done.then(
      () => {},
      () => {},
    );
    this.running.push(settled);
    return { joined: Promise.race([joined, settled]).finally(stopListening), done };
  }

  /** Starts every client, in client-number order, each once the one before has joined. */
  async startClients(): Promise<void> {
    for (const clientNumber of [...this.clients.keys()].sort((a, b) => a - b)) {
      if (this.stopped) return;
      await this.start(clientNumber).joined;
    }
  }

  /** Resolves once every started client's run has ended (training over, or stopped). */
  async finished(): Promise<void> {
    await Promise.all(this.running);
  }

  /** Stops every client without waiting. */
  stop(): void {
    this.stopping.abort();
  }

  /** Stops every client and waits until each has ended. */
  async close(): Promise<void> {
    this.stop();
    await this.finished();
  }
}

/**
 * Client numbers `clientNumbers` of `config`, on the fastest tfjs backend here, connecting over
 * WebSockets to the coordinator at `url` with `token`: the clients of `shoal swarm`.
 */
export async function remoteVirtualClients(config: ShoalConfig, clientNumbers: readonly number[], url: string, token: string): Promise<{ readonly clients: Map<number, ShoalClient>; readonly backend: string }> {
  const backend = await initBackend();
  return { clients: virtualClients(config, simulationData(config), clientNumbers, { url, token, transport: wsTransport }), backend: backend.name };
}
