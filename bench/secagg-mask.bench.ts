// Client mask generation: `nodeMaskPrg.addTo` into a WordSum (what SecAggClient.mask does per mask:
// the AES-128-CTR keystream in 64 KiB pieces, each added into the vector mod 2^32) against the
// bare keystream of the same length from node:crypto, produced in the same pieces and discarded
// (no copy, no add): the cheapest possible source of those bytes. Target: ≥ 0.8× its throughput.
// Also shown, without a target: the same with the JavaScript add loop instead of the SIMD kernel,
// and `expand` (the whole mask as one array) followed by an add.
import { createCipheriv, randomBytes } from 'node:crypto';
import { WordSum } from '@shoal/secagg';
import { nodeMaskPrg } from '@shoal/secagg/node';
import { compare, report } from './lib.js';

const PIECE = 64 * 1024;
const zeroPiece = new Uint8Array(PIECE);
const MASKS = 8;
const keys = Array.from({ length: MASKS }, () => new Uint8Array(randomBytes(16)));

function bareKeystream(key: Uint8Array, bytes: number): number {
  const cipher = createCipheriv('aes-128-ctr', key, new Uint8Array(16));
  let check = 0;
  for (let offset = 0; offset < bytes; offset += PIECE) {
    const piece = cipher.update(zeroPiece.subarray(0, Math.min(PIECE, bytes - offset)));
    check ^= piece[0]!; // read the output so the call cannot be skipped
  }
  return check;
}

for (const words of [100_001, 1_000_001]) {
  const baseline = () => {
    for (const key of keys) bareKeystream(key, 4 * words);
  };
  const variants: [string, () => Promise<void>, { op: '>=' | '<='; value: number } | undefined][] = [];
  const simd = new WordSum(words);
  variants.push(['addTo, SIMD kernel', async () => {
    for (const [i, key] of keys.entries()) await nodeMaskPrg.addTo(simd, key, i % 2 === 0 ? 1 : -1);
  }, { op: '>=', value: 0.8 }]);
  const plain = new WordSum(words, { simd: false });
  variants.push(['addTo, JavaScript loop', async () => {
    for (const [i, key] of keys.entries()) await nodeMaskPrg.addTo(plain, key, i % 2 === 0 ? 1 : -1);
  }, undefined]);
  variants.push(['expand + add, SIMD kernel', async () => {
    for (const [i, key] of keys.entries()) simd.add(await nodeMaskPrg.expand(key, words), i % 2 === 0 ? 1 : -1);
  }, undefined]);
  for (const [name, candidate, target] of variants) {
    const { candidate: c, baseline: b } = await compare(candidate, baseline, 5, 400);
    const perMaskMs = c.medianMs / MASKS;
    report(
      `mask generation (${name}), ${words.toLocaleString('en')} words, vs bare AES-CTR keystream`,
      b.medianMs / c.medianMs,
      `${perMaskMs.toFixed(3)} ms/mask (${((4 * words) / perMaskMs / 1e6).toFixed(2)} GB/s), bare keystream ${(b.medianMs / MASKS).toFixed(3)} ms/mask`,
      target,
    );
  }
}
