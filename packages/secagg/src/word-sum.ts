/**
 * A vector of 32-bit words that masks and masked inputs are added into, mod 2^32: a client's
 * masked input while it is being built, the coordinator's running sum.
 *
 * Adding dominates the cost of masking once the keystream is fast (node:crypto's AES-CTR makes
 * ~5 GB/s here), and a plain JavaScript loop over typed arrays reaches only ~1 GB/s. So where the
 * runtime has WebAssembly with SIMD (Node ≥ 16, current browsers), the words live in a WebAssembly
 * memory and a 4-lane `i32x4.add` / `i32x4.sub` kernel does the arithmetic; elsewhere the same loop
 * runs in JavaScript. Both give identical words (tests compare them).
 */

/**
 * The kernel, hand-assembled (WebAssembly binary format, with the SIMD proposal's opcodes). Each
 * turn of the loop does four 16-byte lanes (one 64-byte block): unrolled, the loop's own
 * bookkeeping is a quarter of what it was with one lane per turn, which measured ~1.4× faster.
 *
 * ```wat
 * (module
 *   (memory (export "memory") 1)
 *   (func (export "add") (param $dst i32) (param $src i32) (param $end i32)
 *     (loop $next   ;; do { mem[dst..dst+64) = mem[dst..) + mem[src..) as i32x4 ×4; dst += 64; src += 64 } while (dst < end)
 *       (v128.store offset=0 (local.get $dst) (i32x4.add (v128.load offset=0 (local.get $dst)) (v128.load offset=0 (local.get $src))))
 *       …the same at offset=16, 32 and 48…
 *       (local.set $dst (i32.add (local.get $dst) (i32.const 64)))
 *       (local.set $src (i32.add (local.get $src) (i32.const 64)))
 *       (br_if $next (i32.lt_u (local.get $dst) (local.get $end)))))
 *   (func (export "sub") …the same with i32x4.sub…))
 * ```
 */
const BLOCK_BYTES = 64;

function kernelBody(laneOp: readonly number[]): number[] {
  const lane = (offset: number) => [
    0x20, 0x00, // local.get $dst (the store address)
    0x20, 0x00, 0xfd, 0x00, 0x04, offset, // v128.load [$dst + offset]
    0x20, 0x01, 0xfd, 0x00, 0x04, offset, // v128.load [$src + offset]
    0xfd, ...laneOp, // i32x4.add or i32x4.sub
    0xfd, 0x0b, 0x04, offset, // v128.store [$dst + offset]
  ];
  return [
    0x00, // no locals
    0x03, 0x40, // loop (no result)
    ...lane(0), ...lane(16), ...lane(32), ...lane(48),
    0x20, 0x00, 0x41, 0xc0, 0x00, 0x6a, 0x21, 0x00, // $dst += 64 (i32.const 64 is two bytes of signed LEB128)
    0x20, 0x01, 0x41, 0xc0, 0x00, 0x6a, 0x21, 0x01, // $src += 64
    0x20, 0x00, 0x20, 0x02, 0x49, 0x0d, 0x00, // br_if $next ($dst < $end, unsigned)
    0x0b, // end loop
    0x0b, // end func
  ];
}
/** An unsigned integer in LEB128, as the binary format writes sizes. */
function unsignedLeb128(value: number): number[] {
  const bytes: number[] = [];
  do {
    const low = value & 0x7f;
    value >>>= 7;
    bytes.push(value === 0 ? low : low | 0x80);
  } while (value !== 0);
  return bytes;
}

const ADD = kernelBody([0xae, 0x01]); // i32x4.add = 0xfd 174
const SUB = kernelBody([0xb1, 0x01]); // i32x4.sub = 0xfd 177
const KERNEL = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
  0x01, 0x07, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00, // types: (i32 i32 i32) → ()
  0x03, 0x03, 0x02, 0x00, 0x00, // functions: two of type 0
  0x05, 0x03, 0x01, 0x00, 0x01, // memory: one, at least 1 page
  0x07, 0x16, 0x03, // exports: three
  0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, // "memory" → memory 0
  0x03, 0x61, 0x64, 0x64, 0x00, 0x00, // "add" → func 0
  0x03, 0x73, 0x75, 0x62, 0x00, 0x01, // "sub" → func 1
  // code: its byte size (one byte each for the count and the two body sizes, each < 128, then the bodies), two bodies
  0x0a, ...unsignedLeb128(3 + ADD.length + SUB.length), 0x02, ADD.length, ...ADD, SUB.length, ...SUB,
]);

/** The part of the WebAssembly JavaScript API used here (the project compiles without lib "dom"). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
interface KernelExports {
  readonly memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  add(dst: number, src: number, end: number): void;
  sub(dst: number, src: number, end: number): void;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** Compiled once per process (it is immutable); undefined where WebAssembly SIMD is missing. */
const KERNEL_MODULE = compileKernel();

function compileKernel(): object | undefined {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  // WebAssembly memory is little-endian; typed-array views are in the host's order.
  if (wasm === undefined || !LITTLE_ENDIAN || !wasm.validate(KERNEL)) return undefined;
  return new wasm.Module(KERNEL);
}

const PAGE_BYTES = 65_536;
/** Bytes copied into the kernel's memory per call: one 64 KiB piece, the size keystreams come in. */
const SCRATCH_BYTES = 65_536;

export class WordSum {
  readonly length: number;
  /** The words, in WebAssembly memory (SIMD path) or on the JavaScript heap (fallback). */
  private readonly words: Uint32Array;
  private readonly kernel: { exports: KernelExports; bytes: Uint8Array; scratch: number } | undefined;

  /** `length` words, all zero. `simd: false` forces the JavaScript loop (for tests). */
  constructor(length: number, options: { simd?: boolean } = {}) {
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`a WordSum length must be an integer ≥ 0, got ${length}`);
    this.length = length;
    const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    if (KERNEL_MODULE === undefined || wasm === undefined || options.simd === false) {
      this.words = new Uint32Array(length);
      this.kernel = undefined;
      return;
    }
    const exports = new wasm.Instance(KERNEL_MODULE, {}).exports as KernelExports;
    // The sum, rounded up to whole 64-byte blocks plus one spare block, then the scratch piece.
    const scratch = BLOCK_BYTES * (Math.ceil((4 * length) / BLOCK_BYTES) + 1);
    const needed = scratch + SCRATCH_BYTES;
    exports.memory.grow(Math.ceil(needed / PAGE_BYTES) - 1);
    this.words = new Uint32Array(exports.memory.buffer, 0, length);
    this.kernel = { exports, bytes: new Uint8Array(exports.memory.buffer), scratch };
  }

  /** Whether the SIMD kernel does the arithmetic. */
  get simd(): boolean {
    return this.kernel !== undefined;
  }

  /** sum[offset + i] ± words[i] for each i (mod 2^32). */
  add(words: Uint32Array, sign: 1 | -1 = 1, offset = 0): void {
    this.addBytes(new Uint8Array(words.buffer, words.byteOffset, words.byteLength), sign, offset);
  }

  /** The same for little-endian words given as bytes, such as a keystream piece, at any alignment. */
  addBytes(bytes: Uint8Array, sign: 1 | -1, offset: number): void {
    if (bytes.length % 4 !== 0) throw new RangeError('words as bytes come in multiples of 4');
    const count = bytes.length / 4;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + count > this.length) {
      throw new RangeError(`${count} words at offset ${offset} do not fit a sum of ${this.length}`);
    }
    if (this.kernel === undefined) {
      addInJavaScript(this.words, offset, bytes, sign);
      return;
    }
    const { exports, bytes: memory, scratch } = this.kernel;
    const apply = sign === 1 ? exports.add : exports.sub;
    for (let start = 0; start < bytes.length; start += SCRATCH_BYTES) {
      const piece = bytes.subarray(start, Math.min(bytes.length, start + SCRATCH_BYTES));
      memory.set(piece, scratch);
      // The kernel works in whole blocks: zero the rest of the last block so it changes nothing.
      const blocks = Math.ceil(piece.length / BLOCK_BYTES) * BLOCK_BYTES;
      memory.fill(0, scratch + piece.length, scratch + blocks);
      const dst = 4 * offset + start;
      apply(dst, scratch, dst + blocks);
    }
  }

  /** A copy of the words. */
  toUint32Array(): Uint32Array {
    return this.words.slice();
  }
}

function addInJavaScript(target: Uint32Array, offset: number, bytes: Uint8Array, sign: 1 | -1): void {
  const count = bytes.length / 4;
  const words = LITTLE_ENDIAN && bytes.byteOffset % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, count) : littleEndianWords(bytes);
  // Storing into a Uint32Array reduces mod 2^32, negative values included.
  if (sign === 1) for (let i = 0; i < count; i++) target[offset + i] = target[offset + i]! + words[i]!;
  else for (let i = 0; i < count; i++) target[offset + i] = target[offset + i]! - words[i]!;
}

function littleEndianWords(bytes: Uint8Array): Uint32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Uint32Array.from({ length: bytes.length / 4 }, (_, i) => view.getUint32(4 * i, true));
}
