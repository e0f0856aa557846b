import nacl from 'tweetnacl';
import { checkLength } from './bytes.js';
import type { RoundContext } from './keys.js';
import { boundBytes } from './keys.js';

/**
 * Ed25519 signatures of the consistency round (Bonawitz et al. CCS'17 §4): a client signs its
 * advertisement and the one survivor set it agrees to, so a coordinator cannot show two honest
 * clients two different sets without forging a signature.
 *
 * A signing key is its 32-byte seed (RFC 8032); Ed25519 is deterministic, so every
 * implementation gives the same signature bytes.
 */

export const SIGNING_SEED_BYTES = 32;
export const SIGNING_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

/** An Ed25519 key pair: the 32-byte seed and its 32-byte public key. */
export interface SigningKeyPair {
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** Ed25519, injected like X25519: tweetnacl everywhere, node:crypto (`nodeSigning`) ~100× faster in Node. */
export interface Signing {
  /** The key pair with this 32-byte seed. */
  keyPair(seed: Uint8Array): SigningKeyPair;
  /** A 64-byte signature of `message` by `keyPair` (made by `keyPair()`, so seed and public key match). */
  sign(keyPair: SigningKeyPair, message: Uint8Array): Uint8Array;
  /** Whether `signature` is a valid signature of `message` under `publicKey`; false for wrong sizes. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

/**
 * Ed25519 whose calls may be asynchronous (WebCrypto runs them off the main thread):
 * `webCryptoSigning` (ed25519-webcrypto.ts). `SecAggClient`'s asynchronous steps (`advertiseAsync`,
 * `shareAsync`, `confirmAsync`, `revealAsync`) accept it, and a synchronous `Signing` too.
 */
export interface AsyncSigning {
  keyPair(seed: Uint8Array): Promise<SigningKeyPair>;
  sign(keyPair: SigningKeyPair, message: Uint8Array): Promise<Uint8Array>;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

/** Ed25519 with tweetnacl: runs everywhere; ~10 ms per signature or check in Node (JIT-warm). */
export const naclSigning: Signing = {
  keyPair(seed) {
    checkLength('signing seed', seed, SIGNING_SEED_BYTES);
    return { seed, publicKey: nacl.sign.keyPair.fromSeed(seed).publicKey };
  },
  sign({ seed, publicKey }, message) {
    checkLength('signing seed', seed, SIGNING_SEED_BYTES);
    checkLength('signing public key', publicKey, SIGNING_KEY_BYTES);
    // tweetnacl's 64-byte secret key is seed ‖ public key.
    const secretKey = new Uint8Array(SIGNING_SEED_BYTES + SIGNING_KEY_BYTES);
    secretKey.set(seed);
    secretKey.set(publicKey, SIGNING_SEED_BYTES);
    return nacl.sign.detached(message, secretKey);
  },
  verify(publicKey, message, signature) {
    if (publicKey.length !== SIGNING_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
    return nacl.sign.detached.verify(message, signature, publicKey);
  },
};

/** What a client's advertisement signature covers: its index and its three public keys, bound to the session and round. */
export function advertisementMessage(context: RoundContext, index: number, keys: { encryptionKey: Uint8Array; maskKey: Uint8Array; signingKey: Uint8Array }): Uint8Array {
  return boundBytes('sign/advertise', context, [index], [keys.encryptionKey, keys.maskKey, keys.signingKey]);
}

/**
 * What a survivor signs in the consistency round: the survivor set U3, ascending, bound to the
 * session and round. An honest client signs one such message per round.
 */
export function survivorsMessage(context: RoundContext, survivors: readonly number[]): Uint8Array {
  return boundBytes('sign/survivors', context, survivors, []);
}
