// The program of one unmasking worker thread (started by `UnmaskWorkers`): it runs the unmask jobs
// it is sent, one at a time, with the node:crypto PRG and X25519 (the same bytes as any other
// implementation), and answers each with its partial sum, the buffer transferred, not copied.
import { parentPort } from 'node:worker_threads';
import { SecAggAbort, unmaskPartial } from '@shoal/secagg';
import { nodeKeyAgreement, nodeMaskPrg } from '@shoal/secagg/node';
import type { FromUnmaskWorker, ToUnmaskWorker } from './unmask-workers.js';

const port = parentPort;
if (port === null) throw new Error('unmask-worker runs only as a worker thread started by UnmaskWorkers');

port.on('message', (message: ToUnmaskWorker) => {
  unmaskPartial(message.job, nodeMaskPrg, nodeKeyAgreement).then(
    (partial) => port.postMessage({ id: message.id, partial } satisfies FromUnmaskWorker, [partial.buffer as ArrayBuffer]), // a fresh copy (WordSum.toUint32Array), never shared
    (error: unknown) => {
      const reason = error instanceof SecAggAbort ? error.reason : error instanceof Error ? error.message : String(error);
      port.postMessage({ id: message.id, failure: reason } satisfies FromUnmaskWorker);
    },
  );
});
