import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ERROR_CODES,
  MAX_NESTING_DEPTH,
  decodeClientMessage,
  decodeCoordinatorMessage,
  decodeFrame,
  encodeFrame,
} from '../src/index.js';
import type { Decoded } from '../src/index.js';
import { be16, be32, be64, fixstr, frame, integerEncodings, refusalOf } from './codec-helpers.js';
import { NUM_PARAMS, validMessages } from './fixtures.js';

/**
 * Properties of the strict decoder: what `encodeFrame` writes comes back equal, and hostile frames
 * are refused with MALFORMED_MESSAGE (or, once decoded, a schema code) without ever throwing out of
 * the validating decoders. The last test checks that at least 10,000 frames were tried.
 */

let framesChecked = 0;

/** A client frame may be 4·numParams + 16 KiB: this numParams lets every frame below reach the decoder. */
const ROOMY_LIMITS = { numParams: 1 << 20 };

/** Every answer of a validating decoder: no throw (we got here), ok or a 4xxx code, no checker crash. */
function expectDocumentedAnswer(result: Decoded<unknown>): void {
  if (result.ok) return;
  const closeCode = ERROR_CODES[result.code].closeCode;
  expect(closeCode).toBeGreaterThanOrEqual(4000);
  expect(closeCode).toBeLessThanOrEqual(4999);
  expect(result.reason).not.toMatch(/^internal/);
}

/** Runs both validating decoders on a hostile frame; both must refuse it as malformed. */
function expectMalformedEverywhere(bytes: Uint8Array): void {
  framesChecked++;
  for (const result of [decodeClientMessage(bytes, ROOMY_LIMITS), decodeCoordinatorMessage(bytes)]) {
    expectDocumentedAnswer(result);
    expect(result).toMatchObject({ ok: false, code: 'MALFORMED_MESSAGE' });
  }
}

// ---- round trip ----

/** A pair [value to encode, value the decoder must return]: they differ for BigInt, Buffer and -0. */
type Case = readonly [unknown, unknown];
const same = (value: unknown): Case => [value, value];

const key = fc.string({ unit: 'binary', maxLength: 12 }).filter((text) => text !== '__proto__');
const leaf: fc.Arbitrary<Case> = fc.oneof(
  fc.constantFrom(null, true, false).map(same),
  fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }).map(same),
  fc.maxSafeInteger().map(same),
  fc.double().map((x): Case => [x, Object.is(x, -0) ? 0 : x]), // msgpackr writes -0 as the integer 0
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }).map((n): Case => [n, Number(n)]),
  fc.string({ unit: 'binary', maxLength: 40 }).map(same),
  fc.constantFrom('\uFEFFbyte-order mark', 'é'.repeat(200), 'x'.repeat(70_000)).map(same), // str8, str16, str32
  fc.float32Array({ maxLength: 16 }).map(same),
  fc.uint32Array({ maxLength: 16 }).map(same),
  fc.uint8Array({ maxLength: 300 }).map(same),
  fc.float64Array({ maxLength: 8 }).map(same),
  fc.uint8Array({ maxLength: 300 }).map((bytes): Case => [Buffer.from(bytes), bytes]), // msgpack bin
);
const { tree } = fc.letrec<{ tree: Case }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', maxDepth: 8 },
    leaf,
    fc.array(tie('tree'), { maxLength: 6 }).map((cases): Case => [cases.map(([value]) => value), cases.map(([, expected]) => expected)]),
    fc
      .uniqueArray(fc.tuple(key, tie('tree')), { selector: ([name]) => name, maxLength: 6 })
      .map((entries): Case => [
        Object.fromEntries(entries.map(([name, [value]]) => [name, value])),
        Object.fromEntries(entries.map(([name, [, expected]]) => [name, expected])),
      ]),
  ),
}));

describe('round trip', () => {
  it('decodes whatever encodeFrame writes for values of the accepted types to an equal value', () => {
    fc.assert(
      fc.property(tree, ([value, expected]) => {
        expect(decodeFrame(encodeFrame(value as object))).toEqual(expected);
      }),
      { numRuns: 1000 },
    );
  });

  it('decodes a safe integer written in any integer width to the same number', () => {
    const integer = fc.oneof(
      fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }),
      fc.maxSafeInteger(),
      fc.constantFrom(0, 127, 128, -32, -33, 255, 256, -128, -129, 65535, 65536, -32768, -32769, 2 ** 32, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER),
    );
    fc.assert(
      fc.property(integer, (n) => {
        for (const bytes of integerEncodings(n)) expect(decodeFrame(bytes)).toBe(n);
      }),
      { numRuns: 500 },
    );
  });

  it('decodes any 64-bit integer to the nearest number, which validators refuse when it is not a safe integer', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }), (n) => {
        const bytes = n < 2n ** 63n ? frame(0xd3, be64(n)) : frame(0xcf, be64(n));
        const value = decodeFrame(bytes) as number;
        expect(value).toBe(Number(n));
        const safe = n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER);
        expect(Number.isSafeInteger(value)).toBe(safe);
      }),
      { numRuns: 500 },
    );
  });
});

// ---- hostile frames ----

describe('hostile frames', () => {
  it('refuse a header claiming more entries or bytes than the frame holds, at once', () => {
    const headers = [
      { name: 'array', max: 0xffff, minBytesPerEntry: 1, write: (n: number) => frame(0xdc, be16(n)) },
      { name: 'array', max: 0xffffffff, minBytesPerEntry: 1, write: (n: number) => frame(0xdd, be32(n)) },
      { name: 'map', max: 0xffff, minBytesPerEntry: 2, write: (n: number) => frame(0xde, be16(n)) },
      { name: 'map', max: 0xffffffff, minBytesPerEntry: 2, write: (n: number) => frame(0xdf, be32(n)) },
      { name: 'str', max: 0xff, minBytesPerEntry: 1, write: (n: number) => frame(0xd9, n) },
      { name: 'str', max: 0xffff, minBytesPerEntry: 1, write: (n: number) => frame(0xda, be16(n)) },
      { name: 'str', max: 0xffffffff, minBytesPerEntry: 1, write: (n: number) => frame(0xdb, be32(n)) },
      { name: 'bin', max: 0xff, minBytesPerEntry: 1, write: (n: number) => frame(0xc4, n) },
      { name: 'bin', max: 0xffff, minBytesPerEntry: 1, write: (n: number) => frame(0xc5, be16(n)) },
      { name: 'bin', max: 0xffffffff, minBytesPerEntry: 1, write: (n: number) => frame(0xc6, be32(n)) },
      { name: 'ext', max: 0xff, minBytesPerEntry: 1, write: (n: number) => frame(0xc7, n, 0x74) },
      { name: 'ext', max: 0xffff, minBytesPerEntry: 1, write: (n: number) => frame(0xc8, be16(n), 0x74) },
      { name: 'ext', max: 0xffffffff, minBytesPerEntry: 1, write: (n: number) => frame(0xc9, be32(n), 0x74) },
    ];
    const claim = fc.oneof(fc.constantFrom(2 ** 31, 2 ** 32 - 1, 0xffff, 0xff), fc.integer({ min: 1, max: 2 ** 32 - 1 }));
    const hostile = fc
      .record({ header: fc.constantFrom(...headers), claim, tail: fc.uint8Array({ maxLength: 64 }), nested: fc.boolean() })
      .filter(({ header, claim, tail }) => claim <= header.max && claim * header.minBytesPerEntry > tail.length);
    fc.assert(
      fc.property(hostile, ({ header, claim, tail, nested }) => {
        // Nested inside a one-entry map {"k": …}, the header starts at offset 3.
        const bytes = nested ? frame(0x81, fixstr('k'), header.write(claim), tail) : frame(header.write(claim), tail);
        const unit = header.name === 'array' || header.name === 'map' ? 'entries' : 'bytes';
        expect(refusalOf(bytes)).toContain(`${header.name} at offset ${nested ? 3 : 0} claims ${claim} ${unit}; ${tail.length} byte(s) remain`);
        expectMalformedEverywhere(bytes);
      }),
      { numRuns: 1000 },
    );
  });

  it(`refuse nesting deeper than ${MAX_NESTING_DEPTH}, up to 100,000 levels`, () => {
    const depth = fc.oneof(fc.integer({ min: 1, max: 2 * MAX_NESTING_DEPTH }), fc.integer({ min: 1, max: 100_000 }), fc.constant(100_000));
    const container = fc.constantFrom(frame(0x91), frame(0x81, fixstr('a')), frame(0xdc, be16(1)), frame(0xdf, be32(1), fixstr('b')));
    fc.assert(
      fc.property(depth, fc.array(container, { minLength: 1, maxLength: 4 }), (levels, pattern) => {
        // The headers of `levels` containers, cycling through `pattern`, then nil.
        const headers = Array.from({ length: Math.min(levels, pattern.length) }, (_, level) => pattern[level]!);
        const cycle = frame(...headers);
        const bytes = new Uint8Array(lengthOfLevels(pattern, levels) + 1);
        bytes.set(cycle);
        // Fill by doubling: a copy of what is written so far, so 100,000 levels take ~17 copies.
        for (let written = cycle.length; written < bytes.length - 1; written *= 2) {
          bytes.copyWithin(written, 0, Math.min(written, bytes.length - 1 - written));
        }
        bytes[bytes.length - 1] = 0xc0;
        const offsetOfTooDeep = lengthOfLevels(pattern, MAX_NESTING_DEPTH);
        if (levels <= MAX_NESTING_DEPTH) {
          expect(() => decodeFrame(bytes)).not.toThrow();
          framesChecked++;
        } else {
          expect(refusalOf(bytes)).toContain(`nesting deeper than ${MAX_NESTING_DEPTH} at offset ${offsetOfTooDeep}`);
          expectMalformedEverywhere(bytes);
        }
      }),
      { numRuns: 300 },
    );
  });

  const EXT_FORMATS = [
    { name: 'fixext 1', write: (type: number, data: Uint8Array) => (data.length === 1 ? frame(0xd4, type, data) : undefined) },
    { name: 'fixext 2', write: (type: number, data: Uint8Array) => (data.length === 2 ? frame(0xd5, type, data) : undefined) },
    { name: 'fixext 4', write: (type: number, data: Uint8Array) => (data.length === 4 ? frame(0xd6, type, data) : undefined) },
    { name: 'fixext 8', write: (type: number, data: Uint8Array) => (data.length === 8 ? frame(0xd7, type, data) : undefined) },
    { name: 'fixext 16', write: (type: number, data: Uint8Array) => (data.length === 16 ? frame(0xd8, type, data) : undefined) },
    { name: 'ext 8', write: (type: number, data: Uint8Array) => frame(0xc7, data.length, type, data) },
    { name: 'ext 16', write: (type: number, data: Uint8Array) => frame(0xc8, be16(data.length), type, data) },
    { name: 'ext 32', write: (type: number, data: Uint8Array) => frame(0xc9, be32(data.length), type, data) },
  ];
  const FIXEXT_SIZES = [1, 2, 4, 8, 16];
  /** Typed-array kinds the decoder takes (msgpackr's list: 1 Uint8, 6 Uint32, 7 Float32, 8 Float64) and their element sizes. */
  const ACCEPTED_KINDS = new Map([[1, 1], [6, 4], [7, 4], [8, 8]]);

  it('refuse every ext type 0..255 (signed -128..-1 is the same byte) in every ext format', () => {
    // Exhaustive, with a data byte that is neither a typed-array kind nor msgpackr's undefined.
    for (let type = 0; type <= 0xff; type++) {
      for (const format of EXT_FORMATS) {
        const size = FIXEXT_SIZES[EXT_FORMATS.indexOf(format)] ?? 3;
        const data = new Uint8Array(size).fill(0x2a);
        const bytes = format.write(type, data)!;
        const reason = type === 0x74 ? 'typed array kind 42 at offset 0' : `ext type 0x${type.toString(16).padStart(2, '0')} at offset 0`;
        expect(refusalOf(bytes), `${format.name} type ${type}`).toContain(reason);
        expectMalformedEverywhere(bytes);
      }
    }
  });

  it('accept an ext only as a typed array of an accepted kind and whole elements, or as msgpackr undefined', () => {
    const data = fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.tuple(fc.integer({ min: 0, max: 17 }), fc.uint8Array({ maxLength: 40 })).map(([kind, rest]) => frame(kind, rest)),
    );
    const type = fc.oneof(fc.constantFrom(0x74, 0x00), fc.integer({ min: 0, max: 0xff }));
    fc.assert(
      fc.property(type, fc.constantFrom(...EXT_FORMATS), data, (extType, format, payload) => {
        const bytes = format.write(extType, payload);
        if (bytes === undefined) return; // a fixext of another size
        framesChecked++;
        const kindSize = ACCEPTED_KINDS.get(payload[0] ?? -1);
        const typedArray = extType === 0x74 && kindSize !== undefined && (payload.length - 1) % kindSize === 0;
        const undefinedValue = format.name === 'fixext 1' && extType === 0 && payload[0] === 0;
        if (typedArray) {
          const value = decodeFrame(bytes) as ArrayBufferView;
          expect(value.byteLength).toBe(payload.length - 1);
          expect(new Uint8Array(value.buffer)).toEqual(payload.subarray(1));
        } else if (undefinedValue) {
          expect(decodeFrame(bytes)).toBeUndefined();
        } else {
          expect(refusalOf(bytes)).toMatch(/at offset 0/);
        }
        // Not a message object either way.
        expectMalformedEverywhere(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  // Every typed field of every message, with the element type and lengths it takes.
  const TYPED_FIELDS = [
    { side: 'client', message: 'update', path: 'delta', type: Float32Array, lengths: [NUM_PARAMS] },
    { side: 'client', message: 'masked', path: 'masked', type: Uint32Array, lengths: [NUM_PARAMS + 1] },
    { side: 'client', message: 'advertise', path: 'encryptionKey', type: Uint8Array, lengths: [32] },
    { side: 'client', message: 'advertise', path: 'maskKey', type: Uint8Array, lengths: [32] },
    { side: 'client', message: 'advertise', path: 'signingKey', type: Uint8Array, lengths: [32] },
    { side: 'client', message: 'advertise', path: 'signature', type: Uint8Array, lengths: [64] },
    { side: 'client', message: 'helloIdentity', path: 'identityKey', type: Uint8Array, lengths: [32] },
    { side: 'client', message: 'confirm', path: 'signature', type: Uint8Array, lengths: [64] },
    { side: 'client', message: 'shares', path: 'ciphertexts.0.box', type: Uint8Array, lengths: [1, 192] },
    { side: 'client', message: 'reveal', path: 'selfMaskShares.0.share', type: Uint8Array, lengths: [1, 64] },
    { side: 'client', message: 'reveal', path: 'maskKeyShares.0.share', type: Uint8Array, lengths: [1, 64] },
    { side: 'coordinator', message: 'train', path: 'weights', type: Float32Array, lengths: [NUM_PARAMS] },
    { side: 'coordinator', message: 'keys', path: 'neighbours.0.encryptionKey', type: Uint8Array, lengths: [32] },
    { side: 'coordinator', message: 'keys', path: 'neighbours.1.maskKey', type: Uint8Array, lengths: [32] },
    { side: 'coordinator', message: 'keys', path: 'neighbours.0.signingKey', type: Uint8Array, lengths: [32] },
    { side: 'coordinator', message: 'keys', path: 'neighbours.1.signature', type: Uint8Array, lengths: [64] },
    { side: 'coordinator', message: 'unmask', path: 'signatures.0.signature', type: Uint8Array, lengths: [64] },
    { side: 'coordinator', message: 'inbox', path: 'ciphertexts.0.box', type: Uint8Array, lengths: [1, 192] },
  ] as const;
  const TYPED_ARRAYS = [
    Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
    Float32Array, Float64Array, BigInt64Array, BigUint64Array,
  ] as const;
  const DECODED_TYPES: readonly unknown[] = [Uint8Array, Uint32Array, Float32Array, Float64Array];

  it('refuse typed arrays of the wrong element type in every typed field of every message, with a code', () => {
    const messages = validMessages() as unknown as Record<string, Record<string, unknown>>;
    const field = fc.constantFrom(...TYPED_FIELDS);
    const length = fc.oneof(fc.constantFrom(0, 1, NUM_PARAMS, NUM_PARAMS + 1, 32, 64, 192), fc.nat(200));
    fc.assert(
      fc.property(field, fc.constantFrom(...TYPED_ARRAYS), length, (target, Type, count) => {
        const value = withPath(messages[target.message]!, target.path, new Type(count));
        const bytes = encodeFrame(value);
        framesChecked++;
        const result = target.side === 'client' ? decodeClientMessage(bytes, { numParams: NUM_PARAMS }) : decodeCoordinatorMessage(bytes, { numParams: NUM_PARAMS });
        expectDocumentedAnswer(result);
        const [min, max] = [target.lengths[0], target.lengths.at(-1)!];
        const fits = Type === target.type && count >= min && count <= max;
        expect(result.ok).toBe(fits);
        if (result.ok) return;
        if (!DECODED_TYPES.includes(Type)) {
          expect(result.code).toBe('MALFORMED_MESSAGE');
          expect(result.reason).toMatch(/typed array kind \d+ at offset \d+/);
        } else {
          expect(['INVALID_MESSAGE', 'LENGTH_MISMATCH']).toContain(result.code);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('never let __proto__, constructor or prototype keys at any level reach a prototype', () => {
    const messages = validMessages() as unknown as Record<string, object>;
    const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();
    const pathsOf = Object.fromEntries(Object.entries(messages).map(([name, message]) => [name, objectPaths(message)]));
    const hostile = fc.record({
      name: fc.constantFrom(...Object.keys(messages)),
      pathIndex: fc.nat(),
      key: fc.constantFrom('__proto__', 'constructor', 'prototype'),
      value: fc.constantFrom<unknown>({ polluted: 1 }, 1, 'x', [1], null, {}),
    });
    fc.assert(
      fc.property(hostile, ({ name, pathIndex, key, value }) => {
        const paths = pathsOf[name]!;
        const path = paths[pathIndex % paths.length]!;
        const copy = structuredClone(messages[name]!) as Record<string, unknown>;
        const target = path.reduce<Record<string, unknown>>((object, step) => object[step] as Record<string, unknown>, copy);
        // An own property named __proto__, as JSON.parse makes one: assignment would set the prototype.
        Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
        const bytes = encodeFrame(copy);
        framesChecked++;
        for (const result of [decodeClientMessage(bytes, { numParams: NUM_PARAMS }), decodeCoordinatorMessage(bytes, { numParams: NUM_PARAMS })]) {
          expectDocumentedAnswer(result);
          if (key === '__proto__') {
            expect(result).toMatchObject({ ok: false, code: 'MALFORMED_MESSAGE' });
            if (!result.ok) expect(result.reason).toMatch(/map key "__proto__" at offset \d+/);
          } else if (result.ok) {
            // Only Keras JSON (welcome.model.topology.modelTopology) takes keys Shoal does not know.
            expect(path).toContain('modelTopology');
            expect(Object.getPrototypeOf(result.message)).toBe(Object.prototype);
          }
        }
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeys);
      }),
      { numRuns: 1000 },
    );
  });

  it('never throw on random bytes, and refuse them as malformed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        framesChecked++;
        for (const result of [decodeClientMessage(bytes, { numParams: NUM_PARAMS }), decodeCoordinatorMessage(bytes)]) {
          expectDocumentedAnswer(result);
          // A random frame can be a map with a string `type` only by a wild chance: then it is INVALID_MESSAGE.
          expect(result.ok).toBe(false);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuse every valid frame cut at every offset', () => {
    for (const message of Object.values(validMessages())) {
      const bytes = encodeFrame(message);
      for (let cut = 0; cut < bytes.length; cut++) {
        const truncated = bytes.slice(0, cut);
        expect(refusalOf(truncated)).toMatch(/frame ends at offset|remain/);
        expectMalformedEverywhere(truncated);
      }
    }
  });

  it('refuse valid frames with trailing bytes', () => {
    const messages = Object.values(validMessages());
    fc.assert(
      fc.property(fc.constantFrom(...messages), fc.uint8Array({ minLength: 1, maxLength: 16 }), (message, tail) => {
        const encoded = encodeFrame(message);
        const bytes = frame(encoded, tail);
        expect(refusalOf(bytes)).toContain(`${tail.length} trailing byte(s) at offset ${encoded.length}`);
        expectMalformedEverywhere(bytes);
      }),
      { numRuns: 1000 },
    );
  });

  it('checked at least 10,000 hostile frames in all', () => {
    expect(framesChecked).toBeGreaterThanOrEqual(10_000);
  });
});

/** Bytes taken by the headers of the first `levels` containers, cycling through `pattern`. */
function lengthOfLevels(pattern: readonly Uint8Array[], levels: number): number {
  const cycleLength = pattern.reduce((sum, header) => sum + header.length, 0);
  const partial = pattern.slice(0, levels % pattern.length).reduce((sum, header) => sum + header.length, 0);
  return Math.floor(levels / pattern.length) * cycleLength + partial;
}

/** A structured clone of `message` with the value at a dotted path replaced (typed arrays survive structuredClone). */
function withPath(message: object, path: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(message) as Record<string, unknown>;
  const steps = path.split('.');
  const target = steps.slice(0, -1).reduce<Record<string, unknown>>((object, step) => object[step] as Record<string, unknown>, copy);
  target[steps.at(-1)!] = value;
  return copy;
}

/** The path of every plain object inside `value` (the root included), through objects and arrays. */
function objectPaths(value: unknown, path: string[] = []): string[][] {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return [];
  const own = Array.isArray(value) ? [] : [path];
  return [...own, ...Object.entries(value).flatMap(([step, child]) => objectPaths(child, [...path, step]))];
}
