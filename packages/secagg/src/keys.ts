import nacl from 'tweetnacl';
import { checkLength, isAllZero } from './bytes.js';

/**
 * X25519 key agreement and the one key-derivation function of the package.
 *
 * KDF choice: SHA-512 (tweetnacl's synchronous `nacl.hash`), truncated to the bytes needed. It is
 * synchronous, so sealing and opening share boxes needs no `await`, and it is available in every
 * runtime tweetnacl runs in (WebCrypto's SHA-256 is async only). Every derived key is bound to a
 * purpose label, the session id and the round, with unambiguous length-prefixed encoding (see
 * `deriveKey`), so no two uses can ever share a key.
 */

/** Bytes of X25519 public keys, secret keys and shared secrets. */
export const KEY_BYTES = 32;

export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/** The X25519 key pair of 32 secret bytes (X25519 clamps the scalar itself). */
export function keyPairFromSecret(secretKey: Uint8Array): KeyPair {
  checkLength('secret key', secretKey, KEY_BYTES);
  return nacl.box.keyPair.fromSecretKey(secretKey);
}

/**
 * X25519 of one secret key with many public keys. Injected, so the coordinator can use a faster
 * implementation (`nodeKeyAgreement` in `x25519-node.ts`) that gives identical bytes.
 */
export interface KeyAgreement {
  /** The X25519 public key of 32 secret bytes (the same bytes as `keyPairFromSecret`). */
  publicKey(secretKey: Uint8Array): Uint8Array;
  /**
   * `X25519(secretKey, publicKeys[i])` for each i, or `null` where the result is all zero: the
   * public key is a small-order point, which would make the "shared" secret public.
   */
  agreeMany(secretKey: Uint8Array, publicKeys: readonly Uint8Array[]): (Uint8Array | null)[];
}

/**
 * The same X25519 as `KeyAgreement`, asynchronous: WebCrypto's `deriveBits` only comes as a promise.
 * `webCryptoKeyAgreement` (x25519-webcrypto.ts) implements it; `SecAggClient.advertiseAsync()` and
 * `shareAsync()` accept it (and a synchronous `KeyAgreement` too).
 */
export interface AsyncKeyAgreement {
  /** The X25519 public key of 32 secret bytes (the same bytes as `keyPairFromSecret`). */
  publicKey(secretKey: Uint8Array): Promise<Uint8Array>;
  /** `X25519(secretKey, publicKeys[i])` for each i, or `null` where the result is all zero (a small-order public key). */
  agreeMany(secretKey: Uint8Array, publicKeys: readonly Uint8Array[]): Promise<(Uint8Array | null)[]>;
}

/** X25519 with tweetnacl: runs everywhere (browsers, workers, Node), ~0.6 ms per agreement. */
export const naclKeyAgreement: KeyAgreement = {
  publicKey(secretKey) {
    checkLength('secret key', secretKey, KEY_BYTES);
    return nacl.scalarMult.base(secretKey);
  },
  agreeMany(secretKey, publicKeys) {
    checkLength('secret key', secretKey, KEY_BYTES);
    return publicKeys.map((publicKey) => {
      checkLength('public key', publicKey, KEY_BYTES);
      // tweetnacl's scalarMult returns the raw X25519 output and does not reject all zero itself.
      const shared = nacl.scalarMult(secretKey, publicKey);
      return isAllZero(shared) ? null : shared;
    });
  },
};

/**
 * Any scalar works as a probe: X25519 clamps it to a multiple of 8, and 8 times a point of order
 * dividing 8 is the identity, which X25519 encodes as all zero. Points of large order never give zero.
 */
const SMALL_ORDER_PROBE = new Uint8Array(KEY_BYTES).fill(0x5a);

/** True when `publicKey` is a small-order point: every agreement with it yields a public secret. */
export function isSmallOrder(publicKey: Uint8Array, agreement: KeyAgreement = naclKeyAgreement): boolean {
  return agreement.agreeMany(SMALL_ORDER_PROBE, [publicKey])[0] === null;
}

/** What a derived key is for; each purpose has its own label, so keys never cross purposes. */
export type KeyPurpose =
  /** secretbox key of the share boxes between two clients, from X25519(c_u, c_v). */
  | 'enc'
  /** AES key of a client's self mask, from its seed b_u. */
  | 'mask/self'
  /** AES key of the pairwise mask of two clients, from X25519(s_u, s_v) and both indices. */
  | 'mask/pair'
  /** A digest of the session id, bound inside every share box. */
  | 'session';

/** Binds derived keys to one coordinator session and one round. */
export interface RoundContext {
  readonly sessionId: string;
  readonly round: number;
}

const LABEL_PREFIX = 'shoal/secagg/v1/';
const utf8 = new TextEncoder();

/**
 * `length` (≤ 64) bytes of SHA-512 over `boundBytes(purpose, context, indices, [secret])`.
 */
export function deriveKey(
  purpose: KeyPurpose,
  context: RoundContext,
  secret: Uint8Array,
  length: number,
  indices: readonly number[] = [],
): Uint8Array {
  if (!Number.isInteger(length) || length < 1 || length > 64) throw new RangeError(`derived key length must be 1..64 bytes, got ${length}`);
  return nacl.hash(boundBytes(purpose, context, indices, [secret])).slice(0, length);
}

/**
 * Bytes bound to one purpose, session and round, with an unambiguous encoding:
 * `field(label) ‖ field(sessionId) ‖ u64(round) ‖ u32(#indices) ‖ u32(index)… ‖ field(f)…`,
 * where `field(x) = u32(byte length of x) ‖ x`, integers big-endian, and the label is
 * `shoal/secagg/v1/<purpose>`. Key derivation hashes them; signatures sign them.
 */
export function boundBytes(purpose: string, context: RoundContext, indices: readonly number[], fields: readonly Uint8Array[]): Uint8Array {
  checkRound(context.round);
  const label = utf8.encode(LABEL_PREFIX + purpose);
  const session = utf8.encode(context.sessionId);
  const fieldBytes = fields.reduce((total, field) => total + 4 + field.length, 0);
  const input = new Uint8Array(4 + label.length + 4 + session.length + 8 + 4 + 4 * indices.length + fieldBytes);
  const view = new DataView(input.buffer);
  let offset = 0;
  const writeU32 = (value: number) => {
    view.setUint32(offset, value);
    offset += 4;
  };
  const writeField = (bytes: Uint8Array) => {
    writeU32(bytes.length);
    input.set(bytes, offset);
    offset += bytes.length;
  };
  writeField(label);
  writeField(session);
  writeU32(Math.floor(context.round / 2 ** 32));
  writeU32(context.round % 2 ** 32);
  writeU32(indices.length);
  for (const index of indices) {
    if (!Number.isInteger(index) || index < 0 || index >= 2 ** 32) throw new RangeError(`bound index must be a 32-bit integer, got ${index}`);
    writeU32(index);
  }
  for (const field of fields) writeField(field);
  return input;
}

export function checkRound(round: number): void {
  if (!Number.isSafeInteger(round) || round < 0) throw new RangeError(`round must be a safe integer ≥ 0, got ${round}`);
}
