import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { MAX_NESTING_DEPTH, ShoalError, decodeClientMessage, decodeFrame, encodeFrame } from '../src/index.js';
import { NUM_PARAMS, validMessages } from './fixtures.js';
import { be16, be32, be64, frame, fixstr, refusalOf } from './codec-helpers.js';

/**
 * The strict decoder, by example: every msgpack encoding it accepts, and every msgpackr extension
 * it refuses. `codec.property.test.ts` generates the hostile frames.
 */

describe('decodeFrame accepts the protocol subset', () => {
  it('decodes nil, booleans and both float widths', () => {
    expect(decodeFrame(frame(0xc0))).toBe(null);
    expect(decodeFrame(frame(0xc2))).toBe(false);
    expect(decodeFrame(frame(0xc3))).toBe(true);
    expect(decodeFrame(frame(0xca, 0x3f, 0xc0, 0x00, 0x00))).toBe(1.5);
    expect(decodeFrame(frame(0xcb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a))).toBe(0.1);
  });

  it.each([
    ['positive fixint', frame(0x05)],
    ['uint8', frame(0xcc, 5)],
    ['uint16', frame(0xcd, be16(5))],
    ['uint32', frame(0xce, be32(5))],
    ['uint64', frame(0xcf, be64(5n))],
    ['int8', frame(0xd0, 5)],
    ['int16', frame(0xd1, be16(5))],
    ['int32', frame(0xd2, be32(5))],
    ['int64', frame(0xd3, be64(5n))],
  ])('decodes 5 written as %s to the number 5', (_name, bytes) => {
    expect(decodeFrame(bytes)).toBe(5);
  });

  it('decodes negative integers of every width, and 64-bit values to the nearest number', () => {
    expect(decodeFrame(frame(0xff))).toBe(-1);
    expect(decodeFrame(frame(0xe0))).toBe(-32);
    expect(decodeFrame(frame(0xd0, 0x80))).toBe(-128);
    expect(decodeFrame(frame(0xd1, 0x80, 0x00))).toBe(-32768);
    expect(decodeFrame(frame(0xd2, 0x80, 0x00, 0x00, 0x00))).toBe(-(2 ** 31));
    expect(decodeFrame(frame(0xd3, be64(-(2n ** 53n) + 1n)))).toBe(Number.MIN_SAFE_INTEGER);
    expect(decodeFrame(frame(0xcf, be64(2n ** 64n - 1n)))).toBe(2 ** 64);
    expect(decodeFrame(frame(0xd3, be64(-(2n ** 63n))))).toBe(-(2 ** 63));
  });

  it('accepts a 64-bit integer in a message when it is a safe integer, and refuses it when not', () => {
    // msgpackr writes a BigInt as int64/uint64: 3n is the integer 3 on the wire.
    const update = validMessages().update;
    expect(decodeClientMessage(encodeFrame({ ...update, round: 3n }), { numParams: NUM_PARAMS })).toEqual({ ok: true, message: update });
    expect(decodeClientMessage(encodeFrame({ ...update, round: 2n ** 60n }), { numParams: NUM_PARAMS })).toMatchObject({ ok: false, code: 'INVALID_MESSAGE' });
  });

  it('decodes every string, bin, array and map header width', () => {
    const ab = [0x61, 0x62];
    for (const bytes of [frame(0xa2, ab), frame(0xd9, 2, ab), frame(0xda, be16(2), ab), frame(0xdb, be32(2), ab)]) {
      expect(decodeFrame(bytes)).toBe('ab');
    }
    for (const bytes of [frame(0xc4, 2, ab), frame(0xc5, be16(2), ab), frame(0xc6, be32(2), ab)]) {
      expect(decodeFrame(bytes)).toEqual(new Uint8Array(ab));
    }
    for (const bytes of [frame(0x92, 1, 2), frame(0xdc, be16(2), 1, 2), frame(0xdd, be32(2), 1, 2)]) {
      expect(decodeFrame(bytes)).toEqual([1, 2]);
    }
    for (const bytes of [frame(0x81, fixstr('a'), 1), frame(0xde, be16(1), fixstr('a'), 1), frame(0xdf, be32(1), fixstr('a'), 1)]) {
      expect(decodeFrame(bytes)).toEqual({ a: 1 });
    }
  });

  it('keeps a leading byte-order mark and decodes multi-byte UTF-8', () => {
    const text = '\uFEFFé€😀';
    expect(decodeFrame(encodeFrame([text]))).toEqual([text]);
  });

  it('returns bin and typed arrays as fresh, aligned copies that do not alias the frame', () => {
    const message = { bin: Buffer.from([1, 2, 3]), bytes: new Uint8Array([4, 5]), floats: new Float32Array([0.5, -2]), words: new Uint32Array([7, 2 ** 32 - 1]) };
    // An odd offset inside a larger buffer, as a transport hands it over.
    const encoded = encodeFrame(message);
    const backing = new Uint8Array(encoded.length + 1);
    backing.set(encoded, 1);
    const bytes = backing.subarray(1);
    const decoded = decodeFrame(bytes) as Record<string, Uint8Array | Float32Array | Uint32Array>;
    for (const [key, Type] of [['bin', Uint8Array], ['bytes', Uint8Array], ['floats', Float32Array], ['words', Uint32Array]] as const) {
      const value = decoded[key]!;
      expect(value.constructor).toBe(Type); // a plain Uint8Array, never a Node Buffer
      expect(value.byteOffset).toBe(0);
      expect(value.buffer.byteLength).toBe(value.byteLength);
      expect(value.buffer).not.toBe(backing.buffer);
    }
    backing.fill(0);
    expect(decoded).toEqual({ bin: new Uint8Array([1, 2, 3]), bytes: new Uint8Array([4, 5]), floats: new Float32Array([0.5, -2]), words: new Uint32Array([7, 2 ** 32 - 1]) });
  });

  it('decodes a typed array written in any ext format, fixext included', () => {
    // fixext 4 (0xd6): type 't', kind 1 (Uint8Array), three bytes.
    expect(decodeFrame(frame(0xd6, 0x74, 1, 9, 8, 7))).toEqual(new Uint8Array([9, 8, 7]));
    expect(decodeFrame(frame(0xc8, be16(5), 0x74, 7, 0x00, 0x00, 0xc0, 0x3f))).toEqual(new Float32Array([1.5]));
  });

  it("decodes a Float64Array (kind 8): no message takes one, but checkpoints keep strategy state in it", () => {
    expect(decodeFrame(encodeFrame({ velocity: new Float64Array([Math.PI, -0]) }))).toEqual({ velocity: new Float64Array([Math.PI, -0]) });
    const update = validMessages().update;
    expect(decodeClientMessage(encodeFrame({ ...update, delta: new Float64Array(NUM_PARAMS) }), { numParams: NUM_PARAMS })).toMatchObject({ ok: false, code: 'INVALID_MESSAGE' });
  });

  it("decodes msgpackr's undefined (fixext 1, type 0, data 0) so that a field set to undefined stays absent", () => {
    expect(decodeFrame(encodeFrame({ a: undefined }))).toEqual({ a: undefined });
    expect(refusalOf(frame(0xd4, 0x00, 0x01))).toMatch(/ext type 0x00 at offset 0/);
    expect(refusalOf(frame(0xd5, 0x00, 0x00, 0x00))).toMatch(/ext type 0x00 at offset 0/);
  });

  it('decodes a map with constructor and prototype keys to a plain object with an unchanged prototype', () => {
    const value = decodeFrame(frame(0x82, fixstr('constructor'), 1, fixstr('prototype'), fixstr('x'))) as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(['constructor', 'prototype']);
    expect(value.constructor).toBe(1);
    expect(({} as Record<string, unknown>).constructor).toBe(Object);
  });

  it(`accepts ${MAX_NESTING_DEPTH} nested containers and refuses one more`, () => {
    const nested = (depth: number) => frame(new Array<number>(depth).fill(0x91), 0xc0);
    expect(MAX_NESTING_DEPTH).toBe(64);
    expect(() => decodeFrame(nested(MAX_NESTING_DEPTH))).not.toThrow();
    expect(refusalOf(nested(MAX_NESTING_DEPTH + 1))).toMatch(new RegExp(`nesting deeper than ${MAX_NESTING_DEPTH} at offset ${MAX_NESTING_DEPTH}`));
  });
});

describe('decodeFrame refuses everything else, naming the byte and its offset', () => {
  it.each<[string, Uint8Array, RegExp]>([
    ['empty frame', frame(), /frame ends at offset 0/],
    ['reserved byte 0xc1', frame(0x92, 0x01, 0xc1), /reserved byte 0xc1 at offset 2/],
    ['truncated str', frame(0xa5, 0x61), /str at offset 0 claims 5 bytes; 1 byte\(s\) remain/],
    ['truncated uint32', frame(0xce, 0x00, 0x00), /frame ends at offset 3/],
    ['trailing byte', frame(0xc0, 0xc0), /1 trailing byte\(s\) at offset 1/],
    ['integer map key', frame(0x81, 0x01, 0x02), /map key at offset 1 is not a string \(byte 0x01\)/],
    ['nil map key', frame(0x81, 0xc0, 0x02), /map key at offset 1 is not a string \(byte 0xc0\)/],
    ['duplicate map key', frame(0x82, fixstr('a'), 1, fixstr('a'), 2), /duplicate map key "a" at offset 4/],
    ['__proto__ key', frame(0x81, fixstr('__proto__'), 0x80), /map key "__proto__" at offset 1/],
    ['invalid UTF-8', frame(0xa2, 0xc3, 0x28), /invalid UTF-8 in the string at offset 0/],
    ['UTF-8 surrogate', frame(0xa3, 0xed, 0xa0, 0x80), /invalid UTF-8 in the string at offset 0/],
    ['array32 claiming 2^31 entries', frame(0xdd, be32(2 ** 31), 0xc0), /array at offset 0 claims 2147483648 entries; 1 byte\(s\) remain/],
    ['map32 claiming 2^31 entries', frame(0xdf, be32(2 ** 31), 0xc0, 0xc0), /map at offset 0 claims 2147483648 entries; 2 byte\(s\) remain/],
    ['map16 claiming more entries than fit', frame(0xde, be16(3), fixstr('a'), 1, 0xc0), /map at offset 0 claims 3 entries; 4 byte\(s\) remain/],
    ['bin32 claiming 4 GiB', frame(0xc6, be32(2 ** 32 - 1)), /bin at offset 0 claims 4294967295 bytes; 0 byte\(s\) remain/],
    ['str32 claiming 4 GiB', frame(0xdb, be32(2 ** 32 - 1), 0x61), /str at offset 0 claims 4294967295 bytes; 1 byte\(s\) remain/],
    ['ext32 claiming 4 GiB', frame(0xc9, be32(2 ** 32 - 1), 0x74), /ext at offset 0 claims 4294967295 bytes; 0 byte\(s\) remain/],
    ['typed array without a kind byte', frame(0xc7, 0, 0x74), /typed array at offset 0 has no kind byte/],
    ['Float32Array of 5 bytes', frame(0xc7, 6, 0x74, 7, 1, 2, 3, 4, 5), /typed array at offset 0: 5 bytes is not a multiple of 4/],
  ])('%s', (_name, bytes, reason) => {
    expect(refusalOf(bytes)).toMatch(reason);
  });

  const stock = new Packr({ useRecords: false, moreTypes: true });
  const kinds = ['Int8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'BigInt64Array', 'BigUint64Array'] as const;
  it.each<[string, Uint8Array, RegExp]>([
    // Every extension in node_modules/msgpackr/unpack.js (currentExtensions, the record and bundle readers).
    ['Date (timestamp, ext -1)', stock.pack(new Date(0)), /ext type 0xff at offset 0/],
    ['Set (0x73)', stock.pack(new Set([1])), /ext type 0x73 at offset 0/],
    ['RegExp (0x78)', stock.pack(/a/g), /ext type 0x78 at offset 0/],
    ['Error (0x65)', stock.pack(new Error('x')), /ext type 0x65 at offset 0/],
    ['BigInt beyond 64 bits (0x42)', new Packr({ useBigIntExtension: true }).pack(2n ** 70n), /ext type 0x42 at offset 0/],
    ['record definition (0x72)', new Packr({ useRecords: true }).pack({ type: 'update', round: 1 }), /ext type 0x72 at offset 0/],
    // A shared-structure record has no definition in the frame: its id byte 0x40 reads as the integer 64.
    ['shared-structure record (0x40)', new Packr({ structures: [] }).pack({ type: 'update', round: 1 }), /trailing byte\(s\) at offset 1/],
    ['bundled strings (0x62)', new Packr({ bundleStrings: true, useRecords: false }).pack(['hello', 'world']), /ext type 0x62 at offset 1/],
    ['bundled strings in a map key (0x62)', new Packr({ bundleStrings: true, useRecords: false }).pack({ type: 'update' }), /map key at offset 3 is not a string \(byte 0xd6\)/],
    ['structured-clone pointer (0x70)', frame(0xd6, 0x70, be32(1)), /ext type 0x70 at offset 0/],
    ['ArrayBuffer (typed-array kind 16)', stock.pack(new ArrayBuffer(4)), /typed array kind 16 at offset 0/],
    ['DataView (typed-array kind 17)', stock.pack(new DataView(new ArrayBuffer(4))), /typed array kind 17 at offset 0/],
    ...kinds.map((name): [string, Uint8Array, RegExp] => [name, stock.pack(new globalThis[name](2)), /typed array kind \d+ at offset 0/]),
    ['a Map with an integer key', stock.pack(new Map([[1, 'a']])), /map key at offset 1 is not a string \(byte 0x01\)/],
  ])('msgpackr extension: %s', (_name, bytes, reason) => {
    expect(refusalOf(bytes)).toMatch(reason);
  });
});

describe('the structured-clone bomb', () => {
  /**
   * Shared sub-trees referenced many times: `levels` nested pairs of the same array, 2^levels
   * leaves when expanded, written by msgpackr's own structured-clone encoder in under 500 bytes,
   * with one trailing byte (msgpackr's decoder then stringified the whole tree for its error).
   */
  function structuredCloneBomb(levels: number): Uint8Array {
    let shared: unknown = { loss: 1 };
    for (let level = 0; level < levels; level++) shared = [shared, shared];
    const message = { type: 'update', round: 1, modelVersion: 'v', numExamples: 1, delta: new Float32Array(NUM_PARAMS), metrics: shared };
    const encoded = new Packr({ structuredClone: true, useRecords: false }).pack(message);
    return frame(encoded, 0xc0);
  }

  it('is refused at its first reference marker, before any reference is followed', () => {
    const bomb = structuredCloneBomb(30);
    expect(bomb.length).toBeLessThan(500);
    // The first structured-clone id marker (fixext 4, type 'i'): nothing past it may be read.
    const firstMarker = bomb.findIndex((byte, index) => byte === 0xd6 && bomb[index + 1] === 0x69);
    expect(firstMarker).toBeGreaterThan(0);
    const result = decodeClientMessage(bomb, { numParams: NUM_PARAMS });
    expect(result).toMatchObject({ ok: false, code: 'MALFORMED_MESSAGE' });
    if (!result.ok) expect(result.reason).toContain(`ext type 0x69 at offset ${firstMarker}`);
  });
});

describe('decodeFrame errors', () => {
  it('are ShoalErrors with the code MALFORMED_MESSAGE', () => {
    expect(() => decodeFrame(frame(0xc1))).toThrow(ShoalError);
    expect(() => decodeFrame(frame(0xc1))).toThrow(expect.objectContaining({ code: 'MALFORMED_MESSAGE' }));
  });
});
