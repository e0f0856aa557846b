import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FIELD_PRIME, Reconstructor, SHARE_BYTES, SecAggError, decodeShare, elementToSecret, encodeShare, splitSecret } from '../src/index.js';
import { SECAGG_LIMITS } from '@shoal/protocol';
import { seededRandomBytes } from './harness.js';

const random = seededRandomBytes('shamir');
const secretOf = (bytes: Uint8Array) => BigInt(`0x${Buffer.from(bytes).toString('hex')}`);

/** Miller–Rabin with the first 20 primes as bases (error ≤ 4^−20 for a composite). */
function isProbablePrime(n: bigint): boolean {
  const bases = [2n, 3n, 5n, 7n, 11n, 13n, 17n, 19n, 23n, 29n, 31n, 37n, 41n, 43n, 47n, 53n, 59n, 61n, 67n, 71n];
  if (n < 2n) return false;
  for (const p of bases) if (n % p === 0n) return n === p;
  let d = n - 1n;
  let s = 0;
  while (d % 2n === 0n) {
    d /= 2n;
    s++;
  }
  const power = (base: bigint, exponent: bigint): bigint => {
    let result = 1n;
    base %= n;
    while (exponent > 0n) {
      if (exponent & 1n) result = (result * base) % n;
      base = (base * base) % n;
      exponent >>= 1n;
    }
    return result;
  };
  witness: for (const a of bases) {
    let x = power(a, d);
    if (x === 1n || x === n - 1n) continue;
    for (let r = 1; r < s; r++) {
      x = (x * x) % n;
      if (x === n - 1n) continue witness;
    }
    return false;
  }
  return true;
}

describe('the field', () => {
  it('is the smallest prime above 2^256: 2^256 + 297', () => {
    expect(FIELD_PRIME).toBe(2n ** 256n + 297n);
    expect(isProbablePrime(FIELD_PRIME)).toBe(true);
    for (let k = 1n; k < 297n; k += 2n) expect(isProbablePrime(2n ** 256n + k), `2^256 + ${k}`).toBe(false);
    expect(isProbablePrime(2n ** 255n - 19n)).toBe(true); // the test itself recognises a known prime
  });

  it('shares serialise to 33 bytes and back; out-of-field bytes are refused', () => {
    expect(SHARE_BYTES).toBeLessThanOrEqual(SECAGG_LIMITS.maxShareBytes);
    for (const y of [0n, 1n, FIELD_PRIME - 1n, 2n ** 256n]) expect(decodeShare(encodeShare(y))).toBe(y);
    expect(decodeShare(new Uint8Array(33).fill(0xff))).toBeNull();
    expect(decodeShare(new Uint8Array(32))).toBeNull();
    expect(() => encodeShare(FIELD_PRIME)).toThrow(RangeError);
    expect(elementToSecret(2n ** 256n)).toBeNull();
    expect(elementToSecret(2n ** 256n - 1n)).toEqual(new Uint8Array(32).fill(0xff));
  });
});

describe('splitting and reconstructing', () => {
  const xs = [3, 5, 8, 13, 21, 34, 55];
  const threshold = 4;

  it('any t of n shares give the secret back', () => {
    const secret = random(32);
    const shares = splitSecret(secret, threshold, xs, random);
    const reconstructor = new Reconstructor(threshold);
    for (let mask = 0; mask < 1 << xs.length; mask++) {
      const subset = shares.filter((_, i) => mask & (1 << i));
      if (subset.length < threshold) continue;
      expect(reconstructor.reconstruct(subset)).toBe(secretOf(secret));
    }
  });

  it('t − 1 shares say nothing: interpolating them gives another value, which changes with the unused share', () => {
    const secret = random(32);
    const shares = splitSecret(secret, threshold, xs, random);
    const short = new Reconstructor(threshold - 1);
    const guesses = new Set<bigint>();
    for (let start = 0; start + threshold - 1 <= xs.length; start++) guesses.add(short.reconstruct(shares.slice(start, start + threshold - 1)));
    expect(guesses.has(secretOf(secret))).toBe(false);
    expect(guesses.size).toBe(xs.length - threshold + 2); // every subset points somewhere else
    expect(() => new Reconstructor(threshold).reconstruct(shares.slice(0, threshold - 1))).toThrow(SecAggError);
  });

  it('property: random secrets, thresholds and holder subsets', () => {
    const scenario = fc
      .record({
        secret: fc.uint8Array({ minLength: 32, maxLength: 32 }),
        holders: fc.uniqueArray(fc.integer({ min: 1, max: 100_000 }), { minLength: 2, maxLength: 12 }),
        thresholdFraction: fc.double({ min: 0, max: 1, noNaN: true }),
        pick: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
      })
      .map(({ secret, holders, thresholdFraction, pick }) => ({
        secret,
        holders,
        threshold: 1 + Math.floor(thresholdFraction * (holders.length - 1)),
        pick,
      }));
    fc.assert(
      fc.property(scenario, ({ secret, holders, threshold, pick }) => {
        const shares = splitSecret(secret, threshold, holders, random);
        expect(shares.map((share) => share.x)).toEqual(holders);
        for (const share of shares) expect(share.y >= 0n && share.y < FIELD_PRIME).toBe(true);
        const chosen = shares.filter((_, i) => pick[i]);
        const subset = chosen.length >= threshold ? chosen : shares;
        expect(elementToSecret(new Reconstructor(threshold).reconstruct(subset))).toEqual(secret);
      }),
      { numRuns: 150 },
    );
  });

  it('caches coefficients per sorted x-set: a hit gives the same results, in any share order', () => {
    const reconstructor = new Reconstructor(threshold, 2);
    const secrets = [random(32), random(32), random(32)];
    const sharings = secrets.map((secret) => splitSecret(secret, threshold, xs, random));
    expect(reconstructor.reconstruct(sharings[0]!.slice(0, 4))).toBe(secretOf(secrets[0]!));
    expect(reconstructor.cachedSets).toBe(1);
    expect(reconstructor.reconstruct([...sharings[1]!.slice(0, 4)].reverse())).toBe(secretOf(secrets[1]!)); // hit
    expect(reconstructor.cachedSets).toBe(1);
    expect(reconstructor.reconstruct(sharings[2]!.slice(1, 5))).toBe(secretOf(secrets[2]!));
    expect(reconstructor.reconstruct(sharings[2]!.slice(2, 6))).toBe(secretOf(secrets[2]!));
    expect(reconstructor.cachedSets).toBe(2); // bounded: the least recently used set was evicted
    expect(reconstructor.reconstruct(sharings[0]!.slice(0, 4))).toBe(secretOf(secrets[0]!)); // recomputed after eviction
  });

  it('uses the t shares of smallest x when given more, so supersets hit the cache', () => {
    const reconstructor = new Reconstructor(threshold);
    const secret = random(32);
    const shares = splitSecret(secret, threshold, xs, random);
    expect(reconstructor.reconstruct(shares)).toBe(secretOf(secret));
    expect(reconstructor.reconstruct(shares.slice(0, 5))).toBe(secretOf(secret));
    expect(reconstructor.cachedSets).toBe(1);
  });

  it('rejects duplicate x, x = 0 or negative, and too few shares', () => {
    const reconstructor = new Reconstructor(2);
    expect(() => reconstructor.reconstruct([{ x: 1, y: 5n }, { x: 1, y: 5n }])).toThrow(/appears twice/);
    expect(() => reconstructor.reconstruct([{ x: 0, y: 5n }, { x: 1, y: 5n }])).toThrow(/positive integer/);
    expect(() => reconstructor.reconstruct([{ x: -2, y: 5n }, { x: 1, y: 5n }])).toThrow(/positive integer/);
    expect(() => reconstructor.reconstruct([{ x: 1, y: 5n }])).toThrow(/1 shares cannot reconstruct/);
    expect(() => splitSecret(random(32), 2, [1, 0], random)).toThrow(SecAggError);
    expect(() => splitSecret(random(32), 3, [1, 2], random)).toThrow(/threshold must be an integer in 1..2/);
    expect(() => splitSecret(random(31), 1, [1], random)).toThrow(/32 bytes/);
  });
});
