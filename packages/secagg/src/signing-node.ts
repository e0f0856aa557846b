import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { checkLength } from './bytes.js';
import type { Signing } from './signing.js';
import { SIGNATURE_BYTES, SIGNING_KEY_BYTES, SIGNING_SEED_BYTES } from './signing.js';

/**
 * Ed25519 on node:crypto (OpenSSL): the same bytes as tweetnacl (Ed25519 is deterministic; a test
 * checks random keys and messages), ~0.1 ms per signature or check instead of ~10 ms. Keys are
 * imported as JWK, which node:crypto parses ~10× faster than DER. In its own module so browser
 * bundles never pull in node:crypto.
 */

/** 32 zero bytes, base64url: the `x` of a private JWK whose public key OpenSSL derives from `d`. */
const PLACEHOLDER_X = 'A'.repeat(43);

const base64url = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');

export const nodeSigning: Signing = {
  keyPair(seed) {
    checkLength('signing seed', seed, SIGNING_SEED_BYTES);
    // A private JWK must carry some `x`; OpenSSL derives the public key from `d` alone (so a
    // placeholder does), ~15× faster than parsing the seed as PKCS#8 DER. A Node that checked `x`
    // would throw here, and one that trusted it would export the placeholder: the test that
    // compares these keys with tweetnacl's fails either way.
    const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: base64url(seed), x: PLACEHOLDER_X }, format: 'jwk' });
    const { x } = createPublicKey(privateKey).export({ format: 'jwk' });
    return { seed, publicKey: new Uint8Array(Buffer.from(x!, 'base64url')) };
  },
  sign({ seed, publicKey }, message) {
    checkLength('signing seed', seed, SIGNING_SEED_BYTES);
    checkLength('signing public key', publicKey, SIGNING_KEY_BYTES);
    const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: base64url(seed), x: base64url(publicKey) }, format: 'jwk' });
    return new Uint8Array(sign(null, message, privateKey));
  },
  verify(publicKey, message, signature) {
    if (publicKey.length !== SIGNING_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
    try {
      const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: base64url(publicKey) }, format: 'jwk' });
      return verify(null, message, key, signature);
    } catch {
      return false; // not a point on the curve
    }
  },
};
