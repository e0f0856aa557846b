import { sign, verify } from 'node:crypto';
import { checkLength } from './bytes.js';
import { okpPrivateKey, okpPublicKey, rawPublicKey } from './okp-node.js';
import type { Signing } from './signing.js';
import { SIGNATURE_BYTES, SIGNING_KEY_BYTES, SIGNING_SEED_BYTES } from './signing.js';

/**
 * Ed25519 on node:crypto (OpenSSL): the same bytes as tweetnacl (Ed25519 is deterministic; a test
 * checks random keys and messages), ~0.1 ms per signature or check instead of ~10 ms. In its own
 * module so browser bundles never pull in node:crypto.
 */
export const nodeSigning: Signing = {
  keyPair(seed) {
    checkLength('signing seed', seed, SIGNING_SEED_BYTES);
    return { seed, publicKey: rawPublicKey(okpPrivateKey('Ed25519', seed)) };
  },
  sign({ seed, publicKey }, message) {
    checkLength('signing seed', seed, SIGNING_SEED_BYTES);
    checkLength('signing public key', publicKey, SIGNING_KEY_BYTES);
    return new Uint8Array(sign(null, message, okpPrivateKey('Ed25519', seed, publicKey)));
  },
  verify(publicKey, message, signature) {
    if (publicKey.length !== SIGNING_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
    try {
      return verify(null, message, okpPublicKey('Ed25519', publicKey), signature);
    } catch {
      return false; // not a point on the curve
    }
  },
};
