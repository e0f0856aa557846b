import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';

/**
 * Raw 32-byte X25519 and Ed25519 keys as node:crypto KeyObjects, imported as JWK, which
 * node:crypto parses ~10× faster than DER (~30 µs against ~400 µs here): on the client's round
 * and in the coordinator's unmasking. Node-only, like its users (`x25519-node.ts`, `signing-node.ts`).
 */

type Curve = 'X25519' | 'Ed25519';

/** 32 zero bytes, base64url: the `x` of a private JWK whose public key OpenSSL derives from `d`. */
const PLACEHOLDER_X = 'A'.repeat(43);

const base64url = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');

/**
 * The private key with these 32 secret bytes. A private JWK must carry some `x` (the public key);
 * OpenSSL derives the public key from `d` alone, so the placeholder does, and `publicKey` may pass
 * the real one. A Node that checked `x` would throw here, and one that trusted it would derive
 * wrong public keys: the tests that compare these keys and results with tweetnacl's fail either way.
 */
export function okpPrivateKey(curve: Curve, secret: Uint8Array, publicKey?: Uint8Array): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: curve, d: base64url(secret), x: publicKey === undefined ? PLACEHOLDER_X : base64url(publicKey) }, format: 'jwk' });
}

/** The public key with these 32 bytes; throws for bytes that are not a point (Ed25519). */
export function okpPublicKey(curve: Curve, publicKey: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: curve, x: base64url(publicKey) }, format: 'jwk' });
}

/** The raw 32 bytes of a key's public part. */
export function rawPublicKey(key: KeyObject): Uint8Array {
  return new Uint8Array(Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url'));
}
