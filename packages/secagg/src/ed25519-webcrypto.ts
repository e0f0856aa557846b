import { checkLength, equalBytes } from './bytes.js';
import { fromHex, importPrivateKey, type Subtle, type SubtleKey, type WebCryptoImplementation } from './okp-webcrypto.js';
import { SIGNATURE_BYTES, SIGNING_KEY_BYTES, SIGNING_SEED_BYTES, naclSigning, type AsyncSigning, type SigningKeyPair } from './signing.js';

/**
 * Ed25519 on WebCrypto (`crypto.subtle`, algorithm 'Ed25519'): native code in browsers that have it
 * (Chromium since 137, Firefox since 129, Safari since 17) and in Node ≥ 20, where tweetnacl spends
 * milliseconds per signature or check. Ed25519 is deterministic (RFC 8032), so the signatures are
 * byte for byte tweetnacl's; where WebCrypto lacks Ed25519 or gets the probe wrong, it is tweetnacl.
 *
 * WebCrypto imports a signing seed only as PKCS#8 (RFC 8410: a fixed 16-byte DER header, then the
 * 32-byte seed) and has no "public key of this seed" call; the private key's JWK export carries it
 * (`x`), so the seed is imported extractable for that one export.
 *
 * Verification: both refuse every signature that does not verify. On malformed ones they may
 * differ: WebCrypto also refuses a non-canonical S (≥ the group order), which tweetnacl accepts. An
 * honest peer never produces one, so this only decides whether a client facing a malformed
 * signature refuses the step, which it may do either way.
 */

/** Which implementation a `webCryptoSigning` runs on. */
export type Ed25519Implementation = WebCryptoImplementation;

export interface WebCryptoSigning extends AsyncSigning {
  /** The implementation it runs on, decided by one probe at the first call (or this one), then fixed. */
  implementation(): Promise<Ed25519Implementation>;
}

const ALGORITHM = { name: 'Ed25519' } as const;


/** RFC 8032 §7.1, TEST 1: a seed, its public key, and its signature of the empty message. */
const PROBE = {
  seed: fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'),
  publicKey: fromHex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'),
  signature: fromHex('e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b'),
};

/**
 * Ed25519 on `subtle` (default `globalThis.crypto.subtle`; `null` where there is none, e.g. a page
 * outside a secure context), with tweetnacl as the fallback. At the first call it derives RFC 8032's
 * TEST 1 public key and signature and checks that they verify: WebCrypto is used only when all three
 * come out right, tweetnacl otherwise. A public key WebCrypto refuses to import (not a point
 * encoding it accepts) is checked by tweetnacl. Holds no secret between calls; each object probes once.
 */
export function webCryptoSigning(subtle: Subtle | null = globalThis.crypto?.subtle ?? null): WebCryptoSigning {
  let decided: Promise<Ed25519Implementation> | undefined;
  const implementation = () => (decided ??= probe(subtle));
  const native = async (): Promise<Subtle | null> => (subtle !== null && (await implementation()) === 'webcrypto' ? subtle : null);

  return {
    implementation,
    async keyPair(seed) {
      checkLength('signing seed', seed, SIGNING_SEED_BYTES);
      const webCrypto = await native();
      return webCrypto ? { seed, publicKey: await publicKeyOf(webCrypto, seed) } : naclSigning.keyPair(seed);
    },
    async sign(keyPair: SigningKeyPair, message) {
      checkLength('signing seed', keyPair.seed, SIGNING_SEED_BYTES);
      checkLength('signing public key', keyPair.publicKey, SIGNING_KEY_BYTES);
      const webCrypto = await native();
      return webCrypto ? signWith(webCrypto, await importSeed(webCrypto, keyPair.seed, false), message) : naclSigning.sign(keyPair, message);
    },
    async verify(publicKey, message, signature) {
      if (publicKey.length !== SIGNING_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
      const webCrypto = await native();
      if (webCrypto === null) return naclSigning.verify(publicKey, message, signature);
      let key: SubtleKey;
      try {
        // Copies: WebCrypto refuses views of a SharedArrayBuffer, which a Uint8Array may be.
        key = await webCrypto.importKey('raw', new Uint8Array(publicKey), ALGORITHM, false, ['verify']);
      } catch {
        return naclSigning.verify(publicKey, message, signature);
      }
      return webCrypto.verify(ALGORITHM, key, new Uint8Array(signature), new Uint8Array(message));
    },
  };
}

/** 'webcrypto' when `subtle` derives RFC 8032's TEST 1 public key and signature exactly, and verifies it; else 'tweetnacl'. */
async function probe(subtle: Subtle | null): Promise<Ed25519Implementation> {
  if (subtle === null) return 'tweetnacl';
  try {
    const publicKey = await publicKeyOf(subtle, PROBE.seed);
    const signature = await signWith(subtle, await importSeed(subtle, PROBE.seed, false), new Uint8Array(0));
    const key = await subtle.importKey('raw', new Uint8Array(publicKey), ALGORITHM, false, ['verify']);
    const verifies = await subtle.verify(ALGORITHM, key, new Uint8Array(signature), new Uint8Array(0));
    return equalBytes(publicKey, PROBE.publicKey) && equalBytes(signature, PROBE.signature) && verifies ? 'webcrypto' : 'tweetnacl';
  } catch {
    return 'tweetnacl';
  }
}

function importSeed(subtle: Subtle, seed: Uint8Array, extractable: boolean): Promise<SubtleKey> {
  return importPrivateKey(subtle, 'Ed25519', seed, extractable, 'sign');
}

async function signWith(subtle: Subtle, privateKey: SubtleKey, message: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle.sign(ALGORITHM, privateKey, new Uint8Array(message)));
}

/** The seed's public key: the `x` of its private key's JWK. */
async function publicKeyOf(subtle: Subtle, seed: Uint8Array): Promise<Uint8Array> {
  const jwk = (await subtle.exportKey('jwk', await importSeed(subtle, seed, true))) as { readonly x?: string };
  const publicKey = fromBase64Url(jwk.x ?? '');
  checkLength('WebCrypto Ed25519 public key', publicKey, SIGNING_KEY_BYTES);
  return publicKey;
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Unpadded base64url (RFC 4648 §5), as JWK writes key bytes. */
function fromBase64Url(text: string): Uint8Array {
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const char of text) {
    const digit = BASE64URL.indexOf(char);
    if (digit < 0) throw new RangeError(`not base64url: ${JSON.stringify(char)}`);
    value = ((value << 6) | digit) & 0x3fff; // at most 13 bits are pending
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >> bits) & 0xff);
    }
  }
  return Uint8Array.from(bytes);
}
