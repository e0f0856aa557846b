import { Packr } from 'msgpackr';
import { ShoalError } from './errors.js';

// Encoding: one configured msgpackr Packr for every frame: plain msgpack maps (no msgpackr record
// extension, which other msgpack implementations cannot read) and typed arrays as the `0x74`
// extension. Decoding does not use msgpackr: its decoder also understands records, structured-clone
// references, bundled strings and more, so a small hostile frame could make it do unbounded work.

const packr = new Packr({ useRecords: false, moreTypes: true });

/** Encodes one message object as one binary frame. */
export function encodeFrame(message: object): Uint8Array {
  return packr.pack(message);
}

/**
 * The deepest nesting of arrays and maps `decodeFrame` accepts. The deepest message is a `welcome`
 * carrying Keras JSON (welcome → model → topology, then Keras's own levels: 8 for a functional
 * model), about a dozen in all; 64 leaves ample room and bounds the decoder's recursion.
 */
export const MAX_NESTING_DEPTH = 64;

/**
 * Decodes one frame to an unvalidated value, accepting exactly one value of the msgpack subset
 * the protocol defines (docs/protocol.md, "Transport"): nil, booleans, every integer encoding (as a
 * number; a 64-bit value outside ±(2^53 − 1) becomes the nearest number, which the validators'
 * safe-integer checks refuse), float32/64, UTF-8 strings, bin (as a fresh Uint8Array), arrays,
 * maps with string keys (as plain objects), and typed arrays (ext `0x74`) of the kinds below.
 * Anything else throws a ShoalError MALFORMED_MESSAGE naming the byte or type and its offset.
 *
 * The work is linear in the frame: one pass, each byte read once, nothing shared or referenced,
 * and a length or entry count is checked against the bytes left before anything is allocated.
 * Callers on untrusted input use the validating decoders in `validate.ts`, which never throw.
 */
export function decodeFrame(bytes: Uint8Array): unknown {
  const reader = new FrameReader(bytes);
  const value = reader.value(0);
  const trailing = bytes.byteLength - reader.offset;
  if (trailing > 0) refuse(`${trailing} trailing byte(s) at offset ${reader.offset}`);
  return value;
}

/** The ext type msgpackr's `moreTypes` writes a typed array with ('t'). */
const TYPED_ARRAY_EXT = 0x74;

interface TypedArrayKind {
  readonly bytesPerElement: number;
  readonly fromBuffer: (buffer: ArrayBuffer) => ArrayBufferView;
}

/**
 * The typed-array kinds accepted, keyed by the kind byte that starts the ext data: its index in
 * msgpackr's list (node_modules/msgpackr/unpack.js `typedArrays`): Int8, Uint8, Uint8Clamped,
 * Int16, Uint16, Int32, Uint32, Float32, Float64, BigInt64, BigUint64. Messages use Uint8 (keys,
 * boxes, shares), Uint32 (masked inputs) and Float32 (weights, deltas); Float64 only because
 * checkpoints keep strategy state in it (no message field takes one, so validators refuse it).
 * The elements are little-endian; like msgpackr, this assumes a little-endian host.
 */
const TYPED_ARRAY_KINDS: ReadonlyMap<number, TypedArrayKind> = new Map<number, TypedArrayKind>([
  [1, { bytesPerElement: 1, fromBuffer: (buffer) => new Uint8Array(buffer) }],
  [6, { bytesPerElement: 4, fromBuffer: (buffer) => new Uint32Array(buffer) }],
  [7, { bytesPerElement: 4, fromBuffer: (buffer) => new Float32Array(buffer) }],
  [8, { bytesPerElement: 8, fromBuffer: (buffer) => new Float64Array(buffer) }],
]);

// ignoreBOM keeps a leading U+FEFF as part of the string (by default TextDecoder drops it).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Strings up to this many bytes are tried as ASCII by hand first: faster than TextDecoder for keys and ids. */
const SHORT_STRING_BYTES = 32;

/** One pass over one frame; `offset` is the next byte to read. */
class FrameReader {
  offset = 0;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(frame: Uint8Array) {
    // A plain Uint8Array over the frame's memory: `slice` on a Node Buffer would return a view.
    this.bytes = new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength);
    this.view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  }

  /** Reads one value; `depth` counts the arrays and maps around it. */
  value(depth: number): unknown {
    const start = this.offset;
    const byte = this.uint8();
    if (byte <= 0x7f) return byte; // positive fixint
    if (byte >= 0xe0) return byte - 0x100; // negative fixint
    if (byte <= 0x8f) return this.map(start, byte & 0x0f, depth);
    if (byte <= 0x9f) return this.array(start, byte & 0x0f, depth);
    if (byte <= 0xbf) return this.string(start, byte & 0x1f);
    switch (byte) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(start, this.uint8());
      case 0xc5: return this.bin(start, this.uint16());
      case 0xc6: return this.bin(start, this.uint32());
      case 0xc7: return this.ext(start, this.uint8());
      case 0xc8: return this.ext(start, this.uint16());
      case 0xc9: return this.ext(start, this.uint32());
      case 0xca: return this.view.getFloat32(this.advance(4));
      case 0xcb: return this.view.getFloat64(this.advance(8));
      case 0xcc: return this.uint8();
      case 0xcd: return this.uint16();
      case 0xce: return this.uint32();
      case 0xcf: {
        const high = this.uint32();
        return high * 2 ** 32 + this.uint32();
      }
      case 0xd0: return this.view.getInt8(this.advance(1));
      case 0xd1: return this.view.getInt16(this.advance(2));
      case 0xd2: return this.view.getInt32(this.advance(4));
      case 0xd3: {
        const high = this.view.getInt32(this.advance(4));
        return high * 2 ** 32 + this.uint32();
      }
      case 0xd4:
        // msgpackr writes an `undefined` property as fixext 1, type 0, data 0 (notepack's
        // convention); the validators treat an undefined field as absent.
        if (this.bytes[this.offset] === 0 && this.bytes[this.offset + 1] === 0) {
          this.advance(2);
          return undefined;
        }
        return this.ext(start, 1);
      case 0xd5: return this.ext(start, 2);
      case 0xd6: return this.ext(start, 4);
      case 0xd7: return this.ext(start, 8);
      case 0xd8: return this.ext(start, 16);
      case 0xd9: return this.string(start, this.uint8());
      case 0xda: return this.string(start, this.uint16());
      case 0xdb: return this.string(start, this.uint32());
      case 0xdc: return this.array(start, this.uint16(), depth);
      case 0xdd: return this.array(start, this.uint32(), depth);
      case 0xde: return this.map(start, this.uint16(), depth);
      case 0xdf: return this.map(start, this.uint32(), depth);
      default: return refuse(`reserved byte 0x${hex(byte)} at offset ${start}`); // only 0xc1 is left
    }
  }

  private array(start: number, count: number, depth: number): unknown[] {
    this.checkContainer('array', start, count, 1, depth);
    // Sized up front (the count is bounded by the bytes left): growing by push is ~4× slower.
    const array = new Array<unknown>(count);
    for (let index = 0; index < count; index++) array[index] = this.value(depth + 1);
    return array;
  }

  /**
   * A plain object (prototype Object.prototype, as validators expect). Assigning the key
   * `__proto__` would set the prototype instead of a property, so it is refused; every other key,
   * `constructor` and `prototype` included, becomes an own property that shadows nothing shared.
   */
  private map(start: number, count: number, depth: number): Record<string, unknown> {
    this.checkContainer('map', start, count, 2, depth);
    const map: Record<string, unknown> = {};
    for (let index = 0; index < count; index++) {
      const keyStart = this.offset;
      const key = this.key();
      if (key === '__proto__') refuse(`map key "__proto__" at offset ${keyStart} is refused`);
      if (Object.hasOwn(map, key)) refuse(`duplicate map key ${quote(key)} at offset ${keyStart}`);
      map[key] = this.value(depth + 1);
    }
    return map;
  }

  /** Refuses a container nested too deep, or claiming more entries than the bytes left could hold (each entry takes ≥ 1 byte per value). */
  private checkContainer(kind: 'array' | 'map', start: number, count: number, minBytesPerEntry: number, depth: number): void {
    if (depth >= MAX_NESTING_DEPTH) refuse(`nesting deeper than ${MAX_NESTING_DEPTH} at offset ${start}`);
    const remaining = this.bytes.length - this.offset;
    if (count * minBytesPerEntry > remaining) refuse(`${kind} at offset ${start} claims ${count} entries; ${remaining} byte(s) remain`);
  }

  private key(): string {
    const start = this.offset;
    const byte = this.uint8();
    if (byte >= 0xa0 && byte <= 0xbf) return this.string(start, byte & 0x1f);
    if (byte === 0xd9) return this.string(start, this.uint8());
    if (byte === 0xda) return this.string(start, this.uint16());
    if (byte === 0xdb) return this.string(start, this.uint32());
    return refuse(`map key at offset ${start} is not a string (byte 0x${hex(byte)})`);
  }

  private string(start: number, length: number): string {
    const begin = this.payload('str', start, length);
    const end = begin + length;
    if (length <= SHORT_STRING_BYTES) {
      let text = '';
      let index = begin;
      for (; index < end && this.bytes[index]! < 0x80; index++) text += String.fromCharCode(this.bytes[index]!);
      if (index === end) return text;
    }
    try {
      return utf8.decode(this.bytes.subarray(begin, end));
    } catch {
      return refuse(`invalid UTF-8 in the string at offset ${start}`);
    }
  }

  private bin(start: number, length: number): Uint8Array {
    const begin = this.payload('bin', start, length);
    return this.bytes.slice(begin, begin + length); // a copy: the transport may reuse the frame's memory
  }

  private ext(start: number, length: number): ArrayBufferView {
    const type = this.uint8();
    if (type !== TYPED_ARRAY_EXT) refuse(`ext type 0x${hex(type)} at offset ${start} is not accepted`);
    const begin = this.payload('ext', start, length);
    if (length === 0) refuse(`typed array at offset ${start} has no kind byte`);
    const kindByte = this.bytes[begin]!;
    const kind = TYPED_ARRAY_KINDS.get(kindByte);
    if (kind === undefined) return refuse(`typed array kind ${kindByte} at offset ${start} is not accepted`);
    const byteLength = length - 1;
    if (byteLength % kind.bytesPerElement !== 0) {
      refuse(`typed array at offset ${start}: ${byteLength} bytes is not a multiple of ${kind.bytesPerElement}`);
    }
    // A copy with its own aligned buffer: the elements sit at any offset inside the frame.
    return kind.fromBuffer(this.bytes.slice(begin + 1, begin + length).buffer);
  }

  /** Claims `length` bytes of a str, bin or ext payload; refuses a claim beyond the frame before anything is allocated. */
  private payload(kind: 'str' | 'bin' | 'ext', start: number, length: number): number {
    const remaining = this.bytes.length - this.offset;
    if (length > remaining) refuse(`${kind} at offset ${start} claims ${length} bytes; ${remaining} byte(s) remain`);
    return this.advance(length);
  }

  /** Moves past `count` bytes, returning where they start. */
  private advance(count: number): number {
    const at = this.offset;
    if (count > this.bytes.length - at) refuse(`frame ends at offset ${this.bytes.length}`);
    this.offset = at + count;
    return at;
  }

  private uint8(): number {
    return this.bytes[this.advance(1)]!;
  }

  private uint16(): number {
    return this.view.getUint16(this.advance(2));
  }

  private uint32(): number {
    return this.view.getUint32(this.advance(4));
  }
}

function refuse(reason: string): never {
  throw new ShoalError('MALFORMED_MESSAGE', reason);
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

/** Peer-controlled text in a reason, shortened so the reason fits in a close frame. */
function quote(text: string): string {
  return JSON.stringify(text.length > 24 ? `${text.slice(0, 24)}…` : text);
}
