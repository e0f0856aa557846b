// Worker threads hosting a simulation's virtual clients (`simulation.workers`): tfjs trains on one
// core per thread, so spreading the clients over threads spreads the training over cores. The
// coordinator stays in the main thread; each worker's clients reach it over the worker's port
// (`worker-link.ts`) or, with `simulation.transport` ws, over real WebSockets.
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startModuleWorker, type Coordinator } from '@shoal/coordinator';
import type { BackendName } from '@shoal/client';
import type { ShoalConfig } from './config.js';
import { coordinatorPort, type ClientSideMessage } from './worker-link.js';

/** How many threads host the clients: `simulation.workers`, else the machine's cores; never more than the clients. */
export function simulationWorkers(config: ShoalConfig): number {
  return Math.max(1, Math.min(config.simulation.workers ?? availableParallelism(), config.simulation.numClients));
}

/** What a worker is started with (its `workerData`). */
export interface WorkerSetup {
  readonly config: ShoalConfig;
  /** The client numbers it hosts. */
  readonly clientNumbers: readonly number[];
  readonly backend: BackendName;
  readonly token: string;
  readonly link: { readonly kind: 'memory' } | { readonly kind: 'ws'; readonly url: string };
}

/** Control messages to a worker (besides the connections' own, `worker-link.ts`): start one of your clients. */
export type ToWorker = { readonly kind: 'start'; readonly clientNumber: number };
/** Control messages from a worker: one of its clients was welcomed (or stopped before). */
export type FromWorker = { readonly kind: 'joined'; readonly clientNumber: number };

export interface ClientWorkersOptions {
  readonly config: ShoalConfig;
  readonly workers: number;
  /** The main thread's tfjs backend; every worker uses it too, so the numbers are the same. */
  readonly backend: BackendName;
  readonly token: string;
  /** An in-process coordinator the workers' frames cross to, or the URL their clients dial. */
  readonly target: { readonly coordinator: Coordinator } | { readonly url: string };
  /** Called once, with the first worker failure: a throw at start-up, a crash, an exit nobody asked for. */
  readonly onFailure: (error: Error) => void;
  /** Caps each worker's heap, in MiB (`resourceLimits.maxOldGenerationSizeMb`); a worker over it crashes. Default: Node's. */
  readonly maxHeapMb?: number;
}

/** This module's own extension says whether it runs from the TypeScript sources or from dist. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const HOST_ENTRY = new URL(FROM_SOURCE ? './worker-host.ts' : './worker-host.js', import.meta.url);

interface Host {
  readonly worker: Worker;
  readonly name: string;
  readonly clientNumbers: readonly number[];
}

/**
 * `workers` threads, thread w hosting the clients whose number is w modulo `workers`. Start the
 * clients with `startClients` and end the threads with `close` (also after a failure).
 */
export class ClientWorkers {
  private readonly hosts: Host[] = [];
  private failed = false;
  private closing = false;
  /** The client whose welcome `startClients` waits for, and how to wake it. */
  private awaiting: { readonly clientNumber: number; readonly wake: () => void } | undefined;

  constructor(private readonly options: ClientWorkersOptions) {
    const { config, workers } = options;
    for (let w = 0; w < workers; w++) {
      const clientNumbers = Array.from({ length: config.simulation.numClients }, (_, k) => k).filter((k) => k % workers === w);
      const setup: WorkerSetup = {
        config,
        clientNumbers,
        backend: options.backend,
        token: options.token,
        link: 'coordinator' in options.target ? { kind: 'memory' } : { kind: 'ws', url: options.target.url },
      };
      const worker = startModuleWorker(HOST_ENTRY, setup, options.maxHeapMb !== undefined ? { resourceLimits: { maxOldGenerationSizeMb: options.maxHeapMb } } : {});
      const host: Host = { worker, name: `simulation worker ${w + 1} of ${workers} (clients ${describeNumbers(clientNumbers)})`, clientNumbers };
      this.hosts.push(host);
      this.attach(host);
    }
  }

  /**
   * Starts every client, in client-number order, each once the one before has been welcomed, so
   * the coordinator numbers them as a single thread would. Returns early after a failure or `close`.
   */
  async startClients(): Promise<void> {
    for (let k = 0; k < this.options.config.simulation.numClients; k++) {
      if (this.failed || this.closing) return;
      const host = this.hosts[k % this.hosts.length]!;
      const joined = new Promise<void>((wake) => (this.awaiting = { clientNumber: k, wake }));
      host.worker.postMessage({ kind: 'start', clientNumber: k } satisfies ToWorker);
      await joined;
    }
    this.awaiting = undefined;
  }

  /** Ends every thread and waits until they are gone. */
  async close(): Promise<void> {
    this.closing = true;
    this.awaiting?.wake();
    await Promise.all(this.hosts.map((host) => host.worker.terminate()));
  }

  private attach(host: Host): void {
    const { worker } = host;
    const connections = 'coordinator' in this.options.target ? coordinatorPort(worker, this.options.target.coordinator, [this.options.token]) : undefined;
    worker.on('message', (message: FromWorker | ClientSideMessage) => {
      switch (message.kind) {
        case 'joined':
          if (this.awaiting?.clientNumber === message.clientNumber) this.awaiting.wake();
          return;
        default:
          connections?.receive(message);
      }
    });
    worker.on('error', (error) => this.fail(host, error));
    worker.on('messageerror', (error) => this.fail(host, error));
    worker.on('exit', (code) => {
      // Its clients are gone: the coordinator hears each connection close, as after a crash on a device.
      connections?.closeAll();
      if (!this.closing) this.fail(host, new Error(`exited with code ${code}`));
    });
  }

  private fail(host: Host, cause: Error): void {
    if (this.failed || this.closing) return;
    this.failed = true;
    this.awaiting?.wake();
    this.options.onFailure(new Error(`${host.name} failed: ${cause.message}`, { cause }));
  }
}

/** `0, 2, 4` or, for many, `0, 2, 4, … (50 clients)`. */
function describeNumbers(numbers: readonly number[]): string {
  return numbers.length <= 6 ? numbers.join(', ') : `${numbers.slice(0, 3).join(', ')}, … (${numbers.length} clients)`;
}
