import { checkLength, equalBytes, isAllZero } from './bytes.js';
import type { AsyncKeyAgreement } from './keys.js';
import { KEY_BYTES, naclKeyAgreement } from './keys.js';
import { fromHex, importPrivateKey, type Subtle, type SubtleKey, type WebCryptoImplementation } from './okp-webcrypto.js';

/**
 * X25519 on WebCrypto (`crypto.subtle`, algorithm 'X25519'): native code in browsers that have it
 * (Chromium measured ~80 µs per agreement against tweetnacl's ~1 ms) and in Node ≥ 20. Byte-identical
 * to tweetnacl; where WebCrypto lacks X25519 or gets the probe wrong, it is tweetnacl.
 *
 * WebCrypto cannot import a raw X25519 secret, only PKCS#8 (RFC 8410: a fixed 16-byte DER header,
 * then the 32 secret bytes), and has no "public key of this secret" call; X25519(k, 9) is that
 * public key (9 is the curve's base point), so `deriveBits` computes both.
 */

/** Which implementation an agreement from `webCryptoKeyAgreement` runs on. */
export type X25519Implementation = WebCryptoImplementation;

export interface WebCryptoKeyAgreement extends AsyncKeyAgreement {
  /** The implementation it runs on, decided by one probe at the first call (or this one), then fixed. */
  implementation(): Promise<X25519Implementation>;
}

/** u = 9, the base point: X25519(k, 9) is k's public key. */
const BASE_POINT = Uint8Array.from({ length: KEY_BYTES }, (_, i) => (i === 0 ? 9 : 0));


/** RFC 7748 §6.1: Alice's secret, Bob's public key and their shared secret; the probe's expected answer. */
const PROBE = {
  secretKey: fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'),
  publicKey: fromHex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f'),
  shared: fromHex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742'),
};

const ALGORITHM = { name: 'X25519' } as const;

/**
 * X25519 on `subtle` (default `globalThis.crypto.subtle`; `null` where there is none, e.g. a page
 * outside a secure context), with tweetnacl as the
 * fallback. At the first call it computes RFC 7748 §6.1's shared secret once: WebCrypto is used only
 * when that succeeds with the right bytes, tweetnacl otherwise (no X25519, no secure context, or a
 * wrong answer). A later call that WebCrypto refuses (it throws for a small-order public key, whose
 * result is all zero) is answered by tweetnacl for that key, so small-order keys give `null` as in
 * the synchronous agreements. Holds no secret between calls; each agreement object probes once.
 */
export function webCryptoKeyAgreement(subtle: Subtle | null = globalThis.crypto?.subtle ?? null): WebCryptoKeyAgreement {
  let decided: Promise<X25519Implementation> | undefined;
  const implementation = () => (decided ??= probe(subtle));

  const agreeMany = async (secretKey: Uint8Array, publicKeys: readonly Uint8Array[]): Promise<(Uint8Array | null)[]> => {
    checkLength('secret key', secretKey, KEY_BYTES);
    for (const publicKey of publicKeys) checkLength('public key', publicKey, KEY_BYTES);
    if (subtle === null || (await implementation()) === 'tweetnacl') return naclKeyAgreement.agreeMany(secretKey, publicKeys);
    const privateKey = await importSecret(subtle, secretKey);
    // All at once: the browser runs WebCrypto off the main thread and overlaps the calls.
    return Promise.all(
      publicKeys.map(async (publicKey) => {
        try {
          const shared = await deriveShared(subtle, privateKey, publicKey);
          return isAllZero(shared) ? null : shared;
        } catch {
          // Refused: a small-order key (the spec's all-zero case), or this browser dislikes the encoding.
          return naclKeyAgreement.agreeMany(secretKey, [publicKey])[0]!;
        }
      }),
    );
  };

  return {
    implementation,
    agreeMany,
    async publicKey(secretKey) {
      // Never null: a clamped scalar times the base point (of prime order) is never the identity.
      return (await agreeMany(secretKey, [BASE_POINT]))[0]!;
    },
  };
}

/** 'webcrypto' when `subtle` computes RFC 7748's vector exactly, else 'tweetnacl'. */
async function probe(subtle: Subtle | null): Promise<X25519Implementation> {
  if (subtle === null) return 'tweetnacl';
  try {
    const shared = await deriveShared(subtle, await importSecret(subtle, PROBE.secretKey), PROBE.publicKey);
    return equalBytes(shared, PROBE.shared) ? 'webcrypto' : 'tweetnacl';
  } catch {
    return 'tweetnacl';
  }
}

function importSecret(subtle: Subtle, secretKey: Uint8Array): Promise<SubtleKey> {
  return importPrivateKey(subtle, 'X25519', secretKey, false, 'deriveBits');
}

async function deriveShared(subtle: Subtle, privateKey: SubtleKey, publicKey: Uint8Array): Promise<Uint8Array> {
  // A copy: WebCrypto refuses views of a SharedArrayBuffer, which a Uint8Array may be.
  const peer = await subtle.importKey('raw', new Uint8Array(publicKey), ALGORITHM, false, []);
  return new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: peer }, privateKey, 8 * KEY_BYTES));
}
