/**
 * The browser entry of `@shoal/client`: the isomorphic SDK plus the native WebSocket transport and
 * browser backend selection. Nothing here (or in ../common) may import `node:*`, `ws` or
 * `@shoal/secagg/node`; test/browser-bundle.test.ts checks the bundle for it.
 */
import { webCryptoKeyAgreement, webCryptoSigning } from '@shoal/secagg';
import { ShoalClient as CommonShoalClient, type ShoalClientOptions } from '../common/client.js';
import { initBrowserBackend } from './backend.js';
import { webSocketTransport } from './websocket-transport.js';

export * from '../common/index.js';
export {
  initBrowserBackend,
  type BrowserBackendChoice,
  type BrowserBackendName,
  type InitBrowserBackendOptions,
  type WasmBackendModule,
} from './backend.js';
export { webSocketTransport, type WebSocketConstructor, type WebSocketLike } from './websocket-transport.js';

/** Options of the browser client: the transport and backend preparation have browser defaults. */
export type BrowserClientOptions = Omit<ShoalClientOptions, 'transport'> & Partial<Pick<ShoalClientOptions, 'transport'>>;

/**
 * The client SDK for browsers: the native `WebSocket` (token in the `?token=` query parameter) and
 * tfjs on WASM, else WebGL, else CPU (`initBrowserBackend()` with no options; pass
 * `prepare: () => initBrowserBackend({ wasmPaths })` to say where the app serves the `.wasm` files),
 * and WebCrypto for secure aggregation: AES-CTR masks, and X25519 and Ed25519 where the browser
 * has them (one probe each per client; tweetnacl otherwise).
 */
export class ShoalClient extends CommonShoalClient {
  constructor(options: BrowserClientOptions) {
    super({ transport: webSocketTransport(), prepare: () => initBrowserBackend(), keyAgreement: webCryptoKeyAgreement(), signing: webCryptoSigning(), ...options });
  }
}
