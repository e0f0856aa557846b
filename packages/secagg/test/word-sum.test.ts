import { describe, expect, it } from 'vitest';
import { WordSum } from '../src/index.js';
import { seededRandomBytes } from './harness.js';

const random = seededRandomBytes('word-sum');
const randomWords = (count: number) => {
  const bytes = random(4 * count);
  return new Uint32Array(bytes.buffer, bytes.byteOffset, count).slice();
};

describe('WordSum', () => {
  it('uses the WebAssembly SIMD kernel in Node', () => {
    expect(new WordSum(10).simd).toBe(true);
    expect(new WordSum(10, { simd: false }).simd).toBe(false);
  });

  it('adds and subtracts mod 2^32', () => {
    for (const simd of [true, false]) {
      const sum = new WordSum(5, { simd });
      sum.add(Uint32Array.of(0, 1, 2 ** 32 - 1, 5, 7));
      sum.add(Uint32Array.of(1, 2 ** 32 - 1, 1, 0, 1));
      expect(Array.from(sum.toUint32Array())).toEqual([1, 0, 0, 5, 8]);
      sum.add(Uint32Array.of(2, 0, 1, 6, 8), -1);
      expect(Array.from(sum.toUint32Array())).toEqual([2 ** 32 - 1, 0, 2 ** 32 - 1, 2 ** 32 - 1, 0]);
    }
  });

  it('gives the SIMD and JavaScript paths identical words, at every offset, length, sign and byte alignment', () => {
    for (const length of [0, 1, 3, 4, 7, 16_383, 16_385, 70_001]) {
      const simd = new WordSum(length);
      const plain = new WordSum(length, { simd: false });
      for (let step = 0; step < 6; step++) {
        const offset = step === 0 ? 0 : Math.floor(length * (step / 7));
        const count = Math.min(length - offset, Math.floor(length / (step + 1)) + (step % 2));
        const words = randomWords(Math.max(count, 0));
        const sign = step % 3 === 0 ? -1 : 1;
        // A keystream piece may sit at any byte offset of its buffer.
        const unaligned = new Uint8Array(4 * words.length + 1).subarray(1);
        unaligned.set(new Uint8Array(words.buffer));
        for (const sum of [simd, plain]) sum.addBytes(step % 2 === 0 ? unaligned : new Uint8Array(words.buffer), sign, offset);
      }
      expect(Buffer.from(simd.toUint32Array().buffer).equals(Buffer.from(plain.toUint32Array().buffer))).toBe(true);
    }
  });

  it('touches only the words it is given (the lane padding adds zero)', () => {
    const sum = new WordSum(9);
    sum.add(Uint32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9));
    sum.add(Uint32Array.of(10, 10, 10), 1, 2);
    expect(Array.from(sum.toUint32Array())).toEqual([1, 2, 13, 14, 15, 6, 7, 8, 9]);
  });

  it('refuses words that do not fit, bytes that are not whole words, and bad lengths', () => {
    const sum = new WordSum(4);
    expect(() => sum.add(new Uint32Array(5))).toThrow(RangeError);
    expect(() => sum.add(new Uint32Array(2), 1, 3)).toThrow(RangeError);
    expect(() => sum.addBytes(new Uint8Array(3), 1, 0)).toThrow(RangeError);
    expect(() => new WordSum(-1)).toThrow(RangeError);
  });
});
