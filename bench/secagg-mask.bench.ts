// Client mask generation: `nodeMaskPrg.addTo` into a WordSum (what SecAggClient.mask does per mask:
// the AES-128-CTR keystream in 64 KiB pieces, each added into the vector mod 2^32) against the
// bare keystream of the same length from node:crypto, produced in the same pieces and discarded
// (no copy, no add): the cheapest possible source of those bytes. Target (issue #13): ≥ 0.9× its throughput.
// Also shown, without a target: the same with the JavaScript add loop instead of the SIMD kernel,
// and `expand` (the whole mask as one array) followed by an add.
// Correctness (exit 1 on failure): the three ways give the same sum word for word, a mask added and
// subtracted cancels exactly, and node:crypto's and WebCrypto's PRGs expand the same key to the same words.
import { createCipheriv, randomBytes } from 'node:crypto';
import { WordSum, webCryptoMaskPrg } from '@shoal/secagg';
import { nodeMaskPrg } from '@shoal/secagg/node';
import { check, checkSame, compare, exitOnFailedChecks, report, sized } from './lib.js';

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

/** All MASKS masks, signs alternating, added to a fresh sum in one of the three ways the bench times. */
async function sumOfMasks(words: number, way: 'simd' | 'plain' | 'expand'): Promise<Uint32Array> {
  const sum = new WordSum(words, { simd: way !== 'plain' });
  for (const [i, key] of keys.entries()) {
    const sign = i % 2 === 0 ? 1 : -1;
    if (way === 'expand') sum.add(await nodeMaskPrg.expand(key, words), sign);
    else await nodeMaskPrg.addTo(sum, key, sign);
  }
  return sum.toUint32Array();
}

for (const words of sized([100_001, 1_000_001], [10_001])) {
  const reference = await sumOfMasks(words, 'expand');
  checkSame(await sumOfMasks(words, 'simd'), reference, `${words} words: addTo with the SIMD kernel gives the same sum as expand + add`);
  checkSame(await sumOfMasks(words, 'plain'), reference, `${words} words: addTo with the JavaScript loop gives the same sum as expand + add`);
  const cancelled = new WordSum(words);
  await nodeMaskPrg.addTo(cancelled, keys[0]!, 1);
  await nodeMaskPrg.addTo(cancelled, keys[0]!, -1);
  check(cancelled.toUint32Array().every((word) => word === 0), `${words} words: a mask added then subtracted cancels to zero`);
  checkSame(await webCryptoMaskPrg().expand(keys[1]!, words), await nodeMaskPrg.expand(keys[1]!, words), `${words} words: WebCrypto and node:crypto expand a key to the same mask`);

  const baseline = () => {
    for (const key of keys) bareKeystream(key, 4 * words);
  };
  const variants: [string, () => Promise<void>, { op: '>=' | '<='; value: number } | undefined][] = [];
  const simd = new WordSum(words);
  variants.push(['addTo, SIMD kernel', async () => {
    for (const [i, key] of keys.entries()) await nodeMaskPrg.addTo(simd, key, i % 2 === 0 ? 1 : -1);
  }, { op: '>=', value: 0.9 }]);
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
exitOnFailedChecks();
