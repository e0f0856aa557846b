/**
 * What X25519 and Ed25519 on WebCrypto share (`x25519-webcrypto.ts`, `ed25519-webcrypto.ts`), as
 * `okp-node.ts` is for node:crypto: the types of `crypto.subtle` without the DOM typings, and the
 * import of a raw 32-byte private key. WebCrypto imports one only as PKCS#8 (RFC 8410: a fixed
 * 16-byte DER header naming the curve, then the 32 bytes).
 */

export type Subtle = typeof globalThis.crypto.subtle;
/** WebCrypto's CryptoKey (the package compiles without DOM types). */
export type SubtleKey = Awaited<ReturnType<Subtle['importKey']>>;

/** Which implementation a WebCrypto port runs on: decided by one probe against an RFC vector, then fixed. */
export type WebCryptoImplementation = 'webcrypto' | 'tweetnacl';

type Curve = 'X25519' | 'Ed25519';

/** The last byte of each curve's OID (1.3.101.110 X25519, 1.3.101.112 Ed25519). */
const OID_LAST_BYTE: Readonly<Record<Curve, number>> = { X25519: 0x6e, Ed25519: 0x70 };

/** RFC 8410's PKCS#8 `OneAsymmetricKey` up to the key: SEQUENCE, version 0, the curve's OID, OCTET STRING(OCTET STRING(32 bytes)). */
function pkcs8Prefix(curve: Curve): Uint8Array {
  return Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, OID_LAST_BYTE[curve], 0x04, 0x22, 0x04, 0x20);
}

/** The private key with these 32 bytes (an X25519 secret, or an Ed25519 seed). */
export async function importPrivateKey(subtle: Subtle, curve: Curve, secret: Uint8Array, extractable: boolean, usage: 'deriveBits' | 'sign'): Promise<SubtleKey> {
  const prefix = pkcs8Prefix(curve);
  const pkcs8 = new Uint8Array(prefix.length + secret.length);
  pkcs8.set(prefix);
  pkcs8.set(secret, prefix.length);
  try {
    return await subtle.importKey('pkcs8', pkcs8, { name: curve }, extractable, [usage]);
  } finally {
    pkcs8.fill(0); // the only copy of the secret this module made
  }
}

/** Bytes from lowercase hex (the RFC vectors the probes check). */
export const fromHex = (text: string): Uint8Array => Uint8Array.from(text.match(/../g) ?? [], (byte) => parseInt(byte, 16));
