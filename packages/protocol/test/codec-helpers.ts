import { expect } from 'vitest';
import { ShoalError, decodeFrame } from '../src/index.js';

/** Helpers to write msgpack frames byte by byte, for the decoder tests. */

type Part = number | readonly number[] | Uint8Array;

/** The bytes of `parts` in order: single bytes, byte lists and byte arrays. */
export function frame(...parts: Part[]): Uint8Array {
  const bytes: number[] = [];
  for (const part of parts) {
    if (typeof part === 'number') bytes.push(part);
    else bytes.push(...part);
  }
  return Uint8Array.from(bytes);
}

export const be16 = (n: number): number[] => [(n >>> 8) & 0xff, n & 0xff];
export const be32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

/** A 64-bit big-endian integer, two's complement for negative values. */
export function be64(n: bigint): number[] {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt.asUintN(64, n));
  return [...new Uint8Array(view.buffer)];
}

/** A fixstr (at most 31 UTF-8 bytes). */
export function fixstr(text: string): number[] {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length > 31) throw new RangeError(`${text} is too long for a fixstr`);
  return [0xa0 | bytes.length, ...bytes];
}

/** Every msgpack encoding of the integer `n` (a safe integer): each width that can hold it. */
export function integerEncodings(n: number): Uint8Array[] {
  const encodings: Uint8Array[] = [];
  if (n >= 0 && n <= 0x7f) encodings.push(frame(n));
  if (n >= -32 && n < 0) encodings.push(frame(n & 0xff));
  if (n >= 0) {
    if (n <= 0xff) encodings.push(frame(0xcc, n));
    if (n <= 0xffff) encodings.push(frame(0xcd, be16(n)));
    if (n <= 0xffffffff) encodings.push(frame(0xce, be32(n)));
    encodings.push(frame(0xcf, be64(BigInt(n))));
  }
  if (n >= -0x80 && n <= 0x7f) encodings.push(frame(0xd0, n & 0xff));
  if (n >= -0x8000 && n <= 0x7fff) encodings.push(frame(0xd1, be16(n)));
  if (n >= -0x80000000 && n <= 0x7fffffff) encodings.push(frame(0xd2, be32(n)));
  encodings.push(frame(0xd3, be64(BigInt(n))));
  return encodings;
}

/** The reason decodeFrame gives for refusing `bytes`; fails the test if it accepts them or throws anything but MALFORMED_MESSAGE. */
export function refusalOf(bytes: Uint8Array): string {
  let value: unknown;
  try {
    value = decodeFrame(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(ShoalError);
    expect((error as ShoalError).code).toBe('MALFORMED_MESSAGE');
    return (error as ShoalError).message;
  }
  return expect.fail(`expected a refusal, decoded ${String(value)}`);
}
