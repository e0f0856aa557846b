import { SecAggError } from './errors.js';

/**
 * t-of-n Shamir secret sharing over the prime field of p = 2^256 + 297, the smallest prime above
 * 2^256 (a test checks it with Miller–Rabin), so any 32-byte secret (a mask seed b_u or an X25519
 * secret key s_u^SK) is one field element. BigInt arithmetic keeps the code short; a share is one
 * 33-byte element. Google's FCP instead splits secrets into 31-bit sub-secrets over 2^31 + 11,
 * which is faster but needs nine sharings per secret; here share generation and reconstruction
 * cost milliseconds per client even for full SecAgg of a few hundred clients (see the benchmarks).
 */
export const FIELD_PRIME = (1n << 256n) + 297n;

/** Bytes of one serialised share (a field element, big-endian). */
export const SHARE_BYTES = 33;

/** Bytes of a secret: one field element below 2^256. */
export const SECRET_BYTES = 32;

/** One point of the sharing polynomial: the holder's index x and f(x). */
export interface Share {
  readonly x: number;
  readonly y: bigint;
}

/**
 * Shares of `secret` for the holders `xs` (distinct positive integers, such as client indices):
 * f(0) = secret, f of degree threshold − 1 with coefficients uniform in the field from
 * `randomBytes` (48 bytes each, reduced mod p: bias below 2^−128).
 */
export function splitSecret(secret: Uint8Array, threshold: number, xs: readonly number[], randomBytes: (n: number) => Uint8Array): Share[] {
  if (secret.length !== SECRET_BYTES) throw new SecAggError('INVALID_INPUT', `a secret must have ${SECRET_BYTES} bytes, got ${secret.length}`);
  checkXs(xs);
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > xs.length) {
    throw new SecAggError('INVALID_INPUT', `threshold must be an integer in 1..${xs.length} (the number of holders), got ${threshold}`);
  }
  const coefficients = [bytesToBigInt(secret)];
  for (let i = 1; i < threshold; i++) coefficients.push(bytesToBigInt(randomBytes(48)) % FIELD_PRIME);
  return xs.map((x) => ({ x, y: evaluate(coefficients, BigInt(x)) }));
}

/** Horner's rule, reducing at every step. */
function evaluate(coefficients: readonly bigint[], x: bigint): bigint {
  let y = 0n;
  for (let i = coefficients.length - 1; i >= 0; i--) y = (y * x + coefficients[i]!) % FIELD_PRIME;
  return y;
}

/** A field element as 33 big-endian bytes. */
export function encodeShare(y: bigint): Uint8Array {
  if (y < 0n || y >= FIELD_PRIME) throw new RangeError('a share must be a field element');
  return bigIntToBytes(y, SHARE_BYTES);
}

/** The field element of 33 bytes from a peer, or null when the length is wrong or the value ≥ p. */
export function decodeShare(bytes: Uint8Array): bigint | null {
  if (bytes.length !== SHARE_BYTES) return null;
  const y = bytesToBigInt(bytes);
  return y < FIELD_PRIME ? y : null;
}

/** The 32-byte secret of a reconstructed element, or null when it is ≥ 2^256 (the shares were inconsistent). */
export function elementToSecret(y: bigint): Uint8Array | null {
  return y >= 0n && y < 1n << 256n ? bigIntToBytes(y, SECRET_BYTES) : null;
}

/**
 * Reconstructs secrets from `threshold` shares with Lagrange coefficients at 0, cached per sorted
 * set of x-coordinates: in full SecAgg every secret is rebuilt from the same survivors, so one set
 * of coefficients serves them all. The cache is owned by the instance (one per round), bounded,
 * and evicts the least recently used set.
 */
export class Reconstructor {
  private readonly cache = new Map<string, readonly bigint[]>();

  /**
   * @param threshold shares needed per secret.
   * @param cacheSize coefficient sets kept (default 64).
   */
  constructor(
    readonly threshold: number,
    private readonly cacheSize = 64,
  ) {
    if (!Number.isInteger(threshold) || threshold < 1) throw new RangeError(`threshold must be a positive integer, got ${threshold}`);
  }

  /**
   * f(0) from at least `threshold` shares with distinct positive x. With more, the `threshold`
   * shares of smallest x are used, so equal share sets always hit the same cache entry.
   */
  reconstruct(shares: readonly Share[]): bigint {
    if (shares.length < this.threshold) {
      throw new SecAggError('INVALID_INPUT', `${shares.length} shares cannot reconstruct a secret of threshold ${this.threshold}`);
    }
    checkXs(shares.map((share) => share.x));
    const chosen = [...shares].sort((a, b) => a.x - b.x).slice(0, this.threshold);
    const coefficients = this.coefficientsAtZero(chosen.map((share) => share.x));
    let secret = 0n;
    for (const [i, share] of chosen.entries()) secret = (secret + coefficients[i]! * share.y) % FIELD_PRIME;
    return secret;
  }

  /** Cache entries currently held (for tests). */
  get cachedSets(): number {
    return this.cache.size;
  }

  private coefficientsAtZero(xs: readonly number[]): readonly bigint[] {
    const key = xs.join(',');
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.cache.delete(key); // re-insert: a Map iterates in insertion order, so the oldest entry is first
      this.cache.set(key, cached);
      return cached;
    }
    const coefficients = lagrangeAtZero(xs);
    this.cache.set(key, coefficients);
    if (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    return coefficients;
  }
}

/**
 * λ_i = Π_{j≠i} x_j / (x_j − x_i) mod p, so that f(0) = Σ λ_i f(x_i). Written as
 * λ_i = X / (x_i · Π_{j≠i} (x_j − x_i)) with X = Π x_j, so all t divisions share one modular
 * inversion (Montgomery's batch trick): inversions cost far more than multiplications here.
 */
function lagrangeAtZero(xs: readonly number[]): bigint[] {
  let product = 1n;
  for (const x of xs) product = (product * BigInt(x)) % FIELD_PRIME;
  const divisors = xs.map((xi) => {
    let divisor = BigInt(xi);
    for (const xj of xs) if (xj !== xi) divisor = (divisor * mod(BigInt(xj - xi))) % FIELD_PRIME;
    return divisor;
  });
  return batchInverse(divisors).map((inverse) => (product * inverse) % FIELD_PRIME);
}

/** The inverses of non-zero elements with one modular inversion and 3(n − 1) multiplications. */
function batchInverse(values: readonly bigint[]): bigint[] {
  const prefix: bigint[] = [];
  let running = 1n;
  for (const value of values) {
    running = (running * value) % FIELD_PRIME;
    prefix.push(running);
  }
  let inverse = modInverse(running); // (v_0 · … · v_{n−1})^−1
  const inverses = new Array<bigint>(values.length);
  for (let i = values.length - 1; i >= 0; i--) {
    inverses[i] = i === 0 ? inverse : (inverse * prefix[i - 1]!) % FIELD_PRIME;
    inverse = (inverse * values[i]!) % FIELD_PRIME;
  }
  return inverses;
}

function mod(a: bigint): bigint {
  const r = a % FIELD_PRIME;
  return r < 0n ? r + FIELD_PRIME : r;
}

/** a^−1 mod p by the extended Euclidean algorithm (a ≠ 0 mod p). */
function modInverse(a: bigint): bigint {
  let [oldR, r] = [mod(a), FIELD_PRIME];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const quotient = oldR / r;
    [oldR, r] = [r, oldR - quotient * r];
    [oldS, s] = [s, oldS - quotient * s];
  }
  return mod(oldS);
}

function checkXs(xs: readonly number[]): void {
  const seen = new Set<number>();
  for (const x of xs) {
    if (!Number.isSafeInteger(x) || x <= 0) throw new SecAggError('INVALID_INPUT', `share x-coordinate must be a positive integer, got ${x}`);
    if (seen.has(x)) throw new SecAggError('INVALID_INPUT', `share x-coordinate ${x} appears twice`);
    seen.add(x);
  }
}

// Big-endian bytes ⇄ BigInt through hex text: one BigInt parse instead of a BigInt operation per
// byte, several times faster for the ~10^5 shares a coordinator parses per round.
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

function bytesToBigInt(bytes: Uint8Array): bigint {
  let hex = '0x0';
  for (const byte of bytes) hex += HEX[byte]!;
  return BigInt(hex);
}

function bigIntToBytes(value: bigint, length: number): Uint8Array {
  const hex = value.toString(16).padStart(2 * length, '0');
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}
