import { describe, expect, it } from 'vitest';
import { WordSum, ZERO_COUNTER, pairMaskKey, selfMaskKey, webCryptoKeystream, webCryptoMaskPrg, wordsOfKeystream } from '../src/index.js';
import { nodeKeystream, nodeMaskPrg } from '../src/node.js';
import { seededRandomBytes } from './harness.js';

const random = seededRandomBytes('prg');
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const fromHex = (text: string) => Uint8Array.from(Buffer.from(text, 'hex'));

// NIST SP 800-38A, F.5.1 CTR-AES128.Encrypt: key, initial counter block, plaintext, ciphertext.
const NIST = {
  key: fromHex('2b7e151628aed2a6abf7158809cf4f3c'),
  counter: fromHex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff'),
  plaintext: fromHex('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710'),
  ciphertext: fromHex('874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee'),
};
const nistKeystream = NIST.plaintext.map((byte, i) => byte ^ NIST.ciphertext[i]!);

describe('AES-128-CTR keystream', () => {
  it('matches NIST SP 800-38A F.5.1 with node:crypto and with WebCrypto', async () => {
    expect(hex(nodeKeystream(NIST.key, NIST.counter, 64))).toBe(hex(nistKeystream));
    expect(hex(await webCryptoKeystream(NIST.key, NIST.counter, 64))).toBe(hex(nistKeystream));
  });

  it('is identical in node:crypto and WebCrypto for random keys and lengths across the 64 KiB pieces', async () => {
    for (const words of [0, 1, 3, 4096, 16_384, 16_385, 40_000]) {
      const key = random(16);
      const [web, node] = await Promise.all([webCryptoMaskPrg().expand(key, words), nodeMaskPrg.expand(key, words)]);
      expect(node).toHaveLength(words);
      expect(Buffer.from(node.buffer, node.byteOffset, node.byteLength).equals(Buffer.from(web.buffer, web.byteOffset, web.byteLength))).toBe(true);
    }
  });

  it('reads words little-endian from the zero-counter keystream (pinned bytes)', async () => {
    const key = fromHex('000102030405060708090a0b0c0d0e0f');
    const stream = nodeKeystream(key, ZERO_COUNTER, 16);
    const words = await nodeMaskPrg.expand(key, 4);
    expect(Array.from(words)).toEqual([0, 1, 2, 3].map((i) => Buffer.from(stream).readUInt32LE(4 * i)));
    // AES-128 of the zero block under key 000102…0f (checked with `openssl enc -aes-128-ecb`).
    expect(hex(stream)).toBe('c6a13b37878f5b826f4f8162a1c8d879');
    expect(Array.from(wordsOfKeystream(Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0x80)))).toEqual([1, 0x80000000]);
  });

  it('refuses bad keys, counters and lengths', async () => {
    expect(() => nodeKeystream(new Uint8Array(15), ZERO_COUNTER, 16)).toThrow(RangeError);
    expect(() => nodeKeystream(new Uint8Array(16), new Uint8Array(8), 16)).toThrow(RangeError);
    await expect(nodeMaskPrg.expand(new Uint8Array(16), -1)).rejects.toThrow(RangeError);
    await expect(webCryptoMaskPrg().expand(new Uint8Array(16), 1.5)).rejects.toThrow(RangeError);
  });
});

describe('mask keys', () => {
  const context = { sessionId: 'session-a', round: 2 };
  const secret = random(32);

  it('pin the mask PRG end to end (key derivation + keystream)', async () => {
    const fixed = new Uint8Array(32).fill(7);
    const words = await nodeMaskPrg.expand(selfMaskKey(fixed, { sessionId: 's', round: 1 }), 4);
    // Regression pin: changing the KDF encoding, labels or word order breaks old clients; bump
    // the label version (shoal/secagg/v2) instead of editing this value.
    expect(Array.from(words, (word) => word.toString(16).padStart(8, '0')).join('')).toBe(PINNED_SELF_MASK);
  });

  it('a pair key is the same from either side and differs per pair, purpose, round and session', () => {
    expect(pairMaskKey(secret, 3, 9, context)).toEqual(pairMaskKey(secret, 9, 3, context));
    const keys = [
      pairMaskKey(secret, 3, 9, context),
      pairMaskKey(secret, 3, 10, context),
      pairMaskKey(secret, 3, 9, { ...context, round: 3 }),
      pairMaskKey(secret, 3, 9, { ...context, sessionId: 'session-b' }),
      selfMaskKey(secret, context),
    ];
    expect(new Set(keys.map(hex)).size).toBe(keys.length);
    for (const key of keys) expect(key).toHaveLength(16);
  });
});

describe('addTo', () => {
  it.each([
    ['node:crypto', nodeMaskPrg],
    ['WebCrypto', webCryptoMaskPrg()],
  ])('%s: equals expand then add, over lengths that cross the 64 KiB pieces, both signs', async (_name, prg) => {
    for (const words of [0, 1, 5, 16_384, 16_385, 50_003]) {
      const key = random(16);
      const start = Uint32Array.from({ length: words }, (_, i) => (i * 2654435761) >>> 0);
      const mask = await prg.expand(key, words);
      for (const sign of [1, -1] as const) {
        const sum = new WordSum(words);
        sum.add(start);
        await prg.addTo(sum, key, sign);
        const expected = start.map((word, i) => word + sign * mask[i]!); // Uint32Array.map wraps mod 2^32
        expect(Buffer.from(sum.toUint32Array().buffer).equals(Buffer.from(expected.buffer))).toBe(true);
      }
    }
  });
});

const PINNED_SELF_MASK = '40fdaa52a09eaf444213d553ae806270';
