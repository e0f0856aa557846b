import { deriveKey } from './keys.js';
import type { RoundContext } from './keys.js';
import type { WordSum } from './word-sum.js';

/**
 * The mask PRG: an AES-128-CTR keystream (all-zero initial counter block) under a 16-byte key
 * derived from the seed or agreed secret, read as little-endian 32-bit words, uniform in Z_{2^32}.
 * Two implementations give identical bytes (tests pin them to a NIST SP 800-38A vector and to each
 * other): WebCrypto here, for browsers and workers, and node:crypto in `prg-node.ts`, faster in
 * Node. Never a non-cryptographic generator.
 */
export interface MaskPrg {
  /** `words` keystream words under the 16-byte `key`. */
  expand(key: Uint8Array, words: number): Promise<Uint32Array>;
  /**
   * sum ± the first sum.length keystream words under `key`, mod 2^32, in place: the same result as
   * `expand` then `sum.add`, but an implementation may stream the keystream in pieces.
   */
  addTo(sum: WordSum, key: Uint8Array, sign: 1 | -1): Promise<void>;
}

/** Bytes of an AES-128 mask key. */
export const MASK_KEY_BYTES = 16;

/** The initial counter block of every mask keystream: each key is used for one mask only. */
export const ZERO_COUNTER = new Uint8Array(16);

/** The key of client u's self mask PRG(b_u). */
export function selfMaskKey(seed: Uint8Array, context: RoundContext): Uint8Array {
  return deriveKey('mask/self', context, seed, MASK_KEY_BYTES);
}

/**
 * The key of the pairwise mask PRG(s_uv) of clients u and v, from s_uv = X25519(s_u^SK, s_v^PK).
 * Both indices are bound (smaller first), so a coordinator that hands one key to two neighbours
 * still gets two different masks.
 */
export function pairMaskKey(agreed: Uint8Array, u: number, v: number, context: RoundContext): Uint8Array {
  return deriveKey('mask/pair', context, agreed, MASK_KEY_BYTES, [Math.min(u, v), Math.max(u, v)]);
}

type Subtle = typeof globalThis.crypto.subtle;

/** The AES-128-CTR keystream of `bytes` bytes from `counter` (a 16-byte block), with WebCrypto. */
export async function webCryptoKeystream(key: Uint8Array, counter: Uint8Array, bytes: number, subtle: Subtle = globalThis.crypto.subtle): Promise<Uint8Array> {
  checkKeystreamArguments(key, counter, bytes);
  // Copies (32 bytes in all): WebCrypto refuses views of a SharedArrayBuffer, which a Uint8Array may be.
  const cryptoKey = await subtle.importKey('raw', new Uint8Array(key), 'AES-CTR', false, ['encrypt']);
  // `length: 64`: the low 64 bits of the block count up, as node:crypto's 128-bit counter does for
  // any stream shorter than 2^64 blocks from a counter whose low half does not wrap.
  const stream = await subtle.encrypt({ name: 'AES-CTR', counter: new Uint8Array(counter), length: 64 }, cryptoKey, new Uint8Array(bytes));
  return new Uint8Array(stream);
}

/** The mask PRG on WebCrypto (`globalThis.crypto.subtle` by default): browsers, workers, Node ≥ 20. */
export function webCryptoMaskPrg(subtle: Subtle = globalThis.crypto.subtle): MaskPrg {
  const expand = async (key: Uint8Array, words: number) => {
    checkWords(words);
    return wordsOfKeystream(await webCryptoKeystream(key, ZERO_COUNTER, 4 * words, subtle));
  };
  return {
    expand,
    async addTo(sum, key, sign) {
      sum.add(await expand(key, sum.length), sign);
    },
  };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Keystream bytes as little-endian 32-bit words, on any platform. */
export function wordsOfKeystream(bytes: Uint8Array): Uint32Array {
  if (bytes.length % 4 !== 0) throw new RangeError('a keystream of words has a multiple of 4 bytes');
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Uint32Array.from({ length: bytes.length / 4 }, (_, i) => view.getUint32(4 * i, true));
}

export function checkKeystreamArguments(key: Uint8Array, counter: Uint8Array, bytes: number): void {
  if (key.length !== MASK_KEY_BYTES) throw new RangeError(`an AES-128 key has ${MASK_KEY_BYTES} bytes, got ${key.length}`);
  if (counter.length !== 16) throw new RangeError(`a counter block has 16 bytes, got ${counter.length}`);
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`keystream length must be a non-negative integer, got ${bytes}`);
}

export function checkWords(words: number): void {
  if (!Number.isSafeInteger(words) || words < 0) throw new RangeError(`words must be a non-negative integer, got ${words}`);
}
