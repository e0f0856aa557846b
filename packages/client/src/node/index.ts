import { ShoalClient as CommonShoalClient, type ShoalClientOptions } from '../common/client.js';
import { initBackend } from './backend.js';
import { wsTransport } from './ws-transport.js';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '@shoal/secagg/node';

export * from '../common/index.js';
export { initBackend, type BackendChoice, type BackendName } from './backend.js';
export { wsTransport, nodeWsTransport, type NodeWsTransportOptions } from './ws-transport.js';

/** Options of the Node client: the transport and backend preparation have Node defaults. */
export type NodeClientOptions = Omit<ShoalClientOptions, 'transport'> & Partial<Pick<ShoalClientOptions, 'transport'>>;

/**
 * The client SDK for Node: WebSockets via `ws`, and tfjs on the fastest backend available
 * (tfjs-node when installed, else WASM, else CPU) unless `prepare` says otherwise, and the
 * node:crypto AES-CTR mask PRG for secure aggregation. `consent` defaults to `true` here: a Node
 * process is started by its operator, who consents by running it.
 */
export class ShoalClient extends CommonShoalClient {
  constructor(options: NodeClientOptions) {
    super({ transport: wsTransport, prepare: () => initBackend(), maskPrg: nodeMaskPrg, keyAgreement: nodeKeyAgreement, signing: nodeSigning, ...options, consent: options.consent ?? true });
  }
}
