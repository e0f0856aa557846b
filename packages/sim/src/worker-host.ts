// The program of one simulation worker thread (started by `ClientWorkers`): it hosts a share of
// the config's virtual clients, built exactly as the main thread would build them (same data
// split, same fault draws, same backend), and starts each when the main thread says so.
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, wsTransport, type ClientTransport } from '@shoal/client';
import { portTransport, type CoordinatorSideMessage } from './worker-link.js';
import { VirtualClientHost, simulationData, virtualClients } from './virtual-client.js';
import type { FromWorker, ToWorker, WorkerSetup } from './worker-pool.js';

const port = parentPort;
if (port === null) throw new Error('worker-host runs only as a worker thread started by ClientWorkers');
const setup = workerData as WorkerSetup;

// The main thread's backend: another one would round differently and change the metrics.
await initBackend({ prefer: setup.backend });
const link = setup.link.kind === 'memory' ? portTransport(port) : undefined;
const transport: ClientTransport = link?.transport ?? wsTransport;
const url = setup.link.kind === 'ws' ? setup.link.url : 'memory://coordinator';
// The main thread ends this thread (terminate) when the run is over; until then the clients run.
const host = new VirtualClientHost(virtualClients(setup.config, simulationData(setup.config), setup.clientNumbers, { url, token: setup.token, transport }));

port.on('message', (message: ToWorker | CoordinatorSideMessage) => {
  switch (message.kind) {
    case 'start': {
      const { joined, done } = host.start(message.clientNumber);
      // A client that gives up is left alone, as in the main thread; the coordinator sees it leave.
      done.catch(() => {});
      void joined.then(() => port.postMessage({ kind: 'joined', clientNumber: message.clientNumber } satisfies FromWorker));
      return;
    }
    default:
      link?.receive(message);
  }
});
