/**
 * The globals that browsers, web workers and Node ≥ 20 all provide, and nothing else. Only
 * `tsconfig.common.json` includes this file: `src/common` (and the isomorphic packages it imports)
 * are type-checked against ES2022 plus these declarations, without the DOM or Node typings, so
 * code that reaches for `window`, `document`, `process`, `Buffer` or `setImmediate` fails to compile
 * there. Each declaration is the subset of the real API that the shared code uses; widen one when
 * shared code needs more of it, never add a platform-only global.
 */

interface AbortSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { readonly once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
  throwIfAborted(): void;
}

declare class AbortController {
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
}

/** Opaque: a number in browsers, a Timeout object in Node. */
interface PortableTimerHandle {
  readonly __portableTimerHandle?: never;
}
declare function setTimeout(handler: () => void, ms?: number): PortableTimerHandle;
declare function clearTimeout(handle: PortableTimerHandle | undefined): void;

declare var performance: { now(): number };

declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { readonly fatal?: boolean; readonly ignoreBOM?: boolean });
  decode(input?: Uint8Array): string;
}

interface CryptoKey {
  readonly type: string;
}
interface SubtleCrypto {
  /** 'pkcs8' and `deriveBits`: X25519 secrets (@shoal/secagg's webCryptoKeyAgreement, which feature-detects X25519). */
  importKey(format: 'raw' | 'pkcs8', keyData: Uint8Array, algorithm: string | { readonly name: string }, extractable: boolean, usages: readonly string[]): Promise<CryptoKey>;
  encrypt(algorithm: { readonly name: string; readonly counter?: Uint8Array; readonly length?: number }, key: CryptoKey, data: Uint8Array): Promise<ArrayBuffer>;
  deriveBits(algorithm: { readonly name: string; readonly public: CryptoKey }, baseKey: CryptoKey, length: number): Promise<ArrayBuffer>;
  /** Ed25519 (@shoal/secagg's webCryptoSigning, which feature-detects it): a seed's public key is its private key's JWK `x`. */
  exportKey(format: 'jwk', key: CryptoKey): Promise<{ readonly x?: string }>;
  sign(algorithm: string | { readonly name: string }, key: CryptoKey, data: Uint8Array): Promise<ArrayBuffer>;
  verify(algorithm: string | { readonly name: string }, key: CryptoKey, signature: Uint8Array, data: Uint8Array): Promise<boolean>;
}
declare var crypto: {
  getRandomValues<T extends Uint8Array | Uint16Array | Uint32Array | Int32Array>(array: T): T;
  readonly subtle: SubtleCrypto;
};

/** Used to yield to the event loop without a timer's clamping (browsers, workers, Node ≥ 15). */
declare class MessageChannel {
  readonly port1: { onmessage: ((event: unknown) => void) | null; close(): void };
  readonly port2: { postMessage(message: unknown): void; close(): void };
}

/** The Fetch API subset `policy.ts` reads the coordinator's privacy promise with (browsers, workers, Node ≥ 18). */
declare function fetch(
  url: string,
  init?: { readonly signal?: AbortSignal; readonly headers?: Readonly<Record<string, string>> },
): Promise<{ readonly ok: boolean; readonly status: number; json(): Promise<unknown> }>;
