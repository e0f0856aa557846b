import { ShoalError } from '@shoal/protocol';
import { SecAggError } from './errors.js';

/**
 * Fixed-point encoding of a weighted update into Z_{2^32}, so that masks can be added mod 2^32 and
 * the coordinator's modular sum is the true integer sum (no wrap-around).
 *
 * A value v (already multiplied by the client's weight) is clamped to [−bound, bound] and encoded
 * as q = floor((v + bound)·scale + u) with u ~ U[0, 1): unbiased stochastic rounding, E[q] =
 * (v + bound)·scale. Each q lies in [0, ceil(2·bound·scale)], so a sum over n clients cannot wrap
 * when n·ceil(2·bound·scale) < 2^32; the weight travels as one more word, an integer ≤ maxWeight,
 * which needs n·maxWeight < 2^32. Decoding a sum of `count` inputs subtracts count·bound; each
 * input is off by less than one step 1/scale, so |decoded − Σv| < count/scale per coordinate.
 */
export interface EncodingParams {
  /** Every weighted value is clamped to [−bound, bound]. */
  readonly bound: number;
  /** Steps per unit: v ↦ floor((v + bound)·scale + u). */
  readonly scale: number;
  /** The largest weight a client may send. */
  readonly maxWeight: number;
}

const MODULUS = 2 ** 32;
/** crypto.getRandomValues fills at most 65,536 bytes per call; ask `randomBytes` for no more. */
const MAX_RANDOM_REQUEST = 65_536;

export interface ChooseScaleOptions {
  readonly bound: number;
  /** The most clients whose inputs are ever summed (the cohort size). */
  readonly maxClients: number;
  readonly maxWeight: number;
  /** Bits of the 32 kept free in values and weight, e.g. for sums across groups (DESIGN.md §10). Default 0. */
  readonly headroomBits?: number;
}

/**
 * The largest scale with maxClients·(2·bound·scale + 1) < 2^(32 − headroomBits), i.e. the finest
 * step whose sums of maxClients inputs cannot wrap. Throws ShoalError INVALID_CONFIG naming the
 * limit when no scale fits: maxClients·maxWeight ≥ 2^32, or so many clients that each would get
 * fewer than two levels.
 */
export function chooseScale(options: ChooseScaleOptions): number {
  const { bound, maxClients, maxWeight, headroomBits = 0 } = options;
  checkCommon(bound, maxClients, maxWeight, headroomBits);
  const limit = 2 ** (32 - headroomBits);
  const span = (limit - 1) / maxClients - 1; // 2·bound·scale
  if (span < 1) {
    const most = Math.floor((limit - 1) / 2);
    throw new ShoalError(
      'INVALID_CONFIG',
      `secagg cohort of ${maxClients} clients is too large for 32-bit sums${headroomBits > 0 ? ` with ${headroomBits} headroom bits` : ''}: ` +
        `each client would get fewer than 2 encoding levels (at most ${most} clients)`,
    );
  }
  const scale = span / (2 * bound);
  checkEncoding({ bound, scale, maxWeight }, maxClients, headroomBits);
  return scale;
}

/**
 * Throws ShoalError INVALID_CONFIG unless sums of `maxClients` encoded inputs fit in
 * 32 − headroomBits bits: maxClients·ceil(2·bound·scale) and maxClients·maxWeight both below
 * 2^(32 − headroomBits). (Exact integer arithmetic; chooseScale's condition implies it.)
 */
export function checkEncoding(params: EncodingParams, maxClients: number, headroomBits = 0): void {
  checkCommon(params.bound, maxClients, params.maxWeight, headroomBits);
  if (!(Number.isFinite(params.scale) && params.scale > 0)) throw new ShoalError('INVALID_CONFIG', `secagg scale must be a finite number > 0, got ${params.scale}`);
  const limit = 2 ** (32 - headroomBits);
  const worstSum = maxClients * maxEncoded(params);
  if (worstSum >= limit) {
    throw new ShoalError(
      'INVALID_CONFIG',
      `secagg scale ${params.scale} with bound ${params.bound} lets ${maxClients} clients' sums reach ${worstSum} ≥ 2^${32 - headroomBits}: ` +
        `lower the scale to at most ${chooseScaleUnchecked(params.bound, maxClients, headroomBits)}`,
    );
  }
}

function chooseScaleUnchecked(bound: number, maxClients: number, headroomBits: number): number {
  return ((2 ** (32 - headroomBits) - 1) / maxClients - 1) / (2 * bound);
}

function checkCommon(bound: number, maxClients: number, maxWeight: number, headroomBits: number): void {
  if (!Number.isInteger(headroomBits) || headroomBits < 0 || headroomBits > 30) {
    throw new ShoalError('INVALID_CONFIG', `secagg headroomBits must be an integer in 0..30, got ${headroomBits}`);
  }
  if (!(Number.isFinite(bound) && bound > 0)) throw new ShoalError('INVALID_CONFIG', `secagg bound must be a finite number > 0, got ${bound}`);
  if (!Number.isSafeInteger(maxClients) || maxClients < 1) throw new ShoalError('INVALID_CONFIG', `secagg maxClients must be an integer ≥ 1, got ${maxClients}`);
  if (!Number.isSafeInteger(maxWeight) || maxWeight < 1) throw new ShoalError('INVALID_CONFIG', `secagg maxWeight must be an integer ≥ 1, got ${maxWeight}`);
  if (maxWeight > maxWeightFor(maxClients, headroomBits)) {
    throw new ShoalError(
      'INVALID_CONFIG',
      `secagg maxWeight ${maxWeight} × ${maxClients} clients = ${maxClients * maxWeight} ≥ 2^${32 - headroomBits}: the summed weight would wrap; ` +
        `lower maxWeight to at most ${maxWeightFor(maxClients, headroomBits)}`,
    );
  }
}

/** The largest weight `maxClients` clients can each send without their summed weight wrapping: maxClients·maxWeight < 2^(32 − headroomBits). */
export function maxWeightFor(maxClients: number, headroomBits = 0): number {
  return Math.floor((2 ** (32 - headroomBits) - 1) / maxClients);
}

/** The largest word one client's value can encode to: ceil(2·bound·scale). */
export function maxEncoded(params: Pick<EncodingParams, 'bound' | 'scale'>): number {
  return Math.ceil(2 * params.bound * params.scale);
}

/**
 * Encodes `values` (weighted, any finite numbers; clamped to ±bound) and the integer `weight` into
 * `values.length + 1` words, the weight last. `randomBytes` drives the stochastic rounding
 * (4 bytes per value, asked for in pieces of at most 65,536 bytes).
 */
export function encodeUpdate(values: Float32Array, weight: number, params: EncodingParams, randomBytes: (n: number) => Uint8Array): Uint32Array {
  if (!Number.isSafeInteger(weight) || weight < 0 || weight > params.maxWeight) {
    throw new SecAggError('INVALID_INPUT', `weight must be an integer in 0..${params.maxWeight}, got ${weight}`);
  }
  const { bound, scale } = params;
  const top = maxEncoded(params);
  const encoded = new Uint32Array(values.length + 1);
  for (let start = 0; start < values.length; start += MAX_RANDOM_REQUEST / 4) {
    const end = Math.min(values.length, start + MAX_RANDOM_REQUEST / 4);
    const random = randomBytes(4 * (end - start));
    const uniforms = new DataView(random.buffer, random.byteOffset, random.byteLength);
    for (let i = start; i < end; i++) {
      const value = values[i]!;
      if (!Number.isFinite(value)) throw new SecAggError('INVALID_INPUT', `values[${i}] is ${value}`);
      const clamped = Math.min(bound, Math.max(-bound, value));
      const u = uniforms.getUint32(4 * (i - start)) / MODULUS;
      encoded[i] = Math.min(top, Math.floor((clamped + bound) * scale + u));
    }
  }
  encoded[values.length] = weight;
  return encoded;
}

/** The decoded sum of `count` encoded inputs: Σ v per coordinate and the total weight. */
export interface DecodedSum {
  readonly sum: Float64Array;
  readonly totalWeight: number;
}

/** Decodes the unmasked sum (values then the weight word) of `count` clients' inputs. */
export function decodeSum(sum: Uint32Array, count: number, params: Pick<EncodingParams, 'bound' | 'scale'>): DecodedSum {
  if (sum.length < 1) throw new RangeError('an encoded sum has at least the weight word');
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`count must be an integer ≥ 0, got ${count}`);
  const numParams = sum.length - 1;
  const decoded = new Float64Array(numParams);
  const offset = count * params.bound;
  for (let i = 0; i < numParams; i++) decoded[i] = sum[i]! / params.scale - offset;
  return { sum: decoded, totalWeight: sum[numParams]! };
}

/** A secure-aggregation group's unmasked result before decoding: the encoded inputs' sum mod 2^32, and how many clients it holds. */
export interface ModularSum {
  readonly encodedSum: Uint32Array;
  readonly count: number;
}

/**
 * The modular sum of two disjoint groups (e.g. one SecAgg instance per gateway, DESIGN.md §10):
 * word-wise addition mod 2^32, counts add. Decoding the result with `decodeSum` gives the cohort's
 * sum, provided the encoding's bit width covers the whole cohort (`checkEncoding` with its size).
 */
export function addModularSums(a: ModularSum, b: ModularSum): ModularSum {
  if (a.encodedSum.length !== b.encodedSum.length) throw new RangeError(`cannot add modular sums of ${a.encodedSum.length} and ${b.encodedSum.length} words`);
  const encodedSum = new Uint32Array(a.encodedSum.length);
  for (let i = 0; i < encodedSum.length; i++) encodedSum[i] = (a.encodedSum[i]! + b.encodedSum[i]!) >>> 0;
  return { encodedSum, count: a.count + b.count };
}
