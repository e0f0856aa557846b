import { createCipheriv } from 'node:crypto';
import type { MaskPrg } from './prg.js';
import { ZERO_COUNTER, checkKeystreamArguments, checkWords, wordsOfKeystream } from './prg.js';

/**
 * The mask PRG on node:crypto: the same bytes as `webCryptoMaskPrg`, several times faster in
 * Node. In its own module so browser bundles never pull in node:crypto.
 */

/**
 * The keystream is produced in 64 KiB pieces copied into one output buffer: one huge
 * `cipher.update` allocates a fresh native buffer per call, which measured several times slower
 * than recycled 64 KiB pieces on the hosts this was tuned on.
 */
const PIECE_BYTES = 64 * 1024;
const ZERO_PIECE = new Uint8Array(PIECE_BYTES); // only ever read

/** The AES-128-CTR keystream of `bytes` bytes from `counter` (a 16-byte block, 128-bit big-endian counter). */
export function nodeKeystream(key: Uint8Array, counter: Uint8Array, bytes: number): Uint8Array {
  checkKeystreamArguments(key, counter, bytes);
  const cipher = createCipheriv('aes-128-ctr', key, counter);
  const output = new Uint8Array(bytes);
  for (let offset = 0; offset < bytes; offset += PIECE_BYTES) {
    const length = Math.min(PIECE_BYTES, bytes - offset);
    output.set(cipher.update(ZERO_PIECE.subarray(0, length)), offset);
  }
  return output;
}

/** The mask PRG on node:crypto. `addTo` adds each 64 KiB piece as it comes, never holding the whole mask. */
export const nodeMaskPrg: MaskPrg = {
  async expand(key, words) {
    checkWords(words);
    return wordsOfKeystream(nodeKeystream(key, ZERO_COUNTER, 4 * words));
  },
  async addTo(sum, key, sign) {
    const bytes = 4 * sum.length;
    checkKeystreamArguments(key, ZERO_COUNTER, bytes);
    const cipher = createCipheriv('aes-128-ctr', key, ZERO_COUNTER);
    for (let offset = 0; offset < bytes; offset += PIECE_BYTES) {
      const length = Math.min(PIECE_BYTES, bytes - offset);
      sum.addBytes(cipher.update(ZERO_PIECE.subarray(0, length)), sign, offset / 4);
    }
  },
};
