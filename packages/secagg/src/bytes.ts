/** Small byte helpers shared by the modules of this package. */

export function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const byte of bytes) acc |= byte;
  return acc === 0;
}

/** Constant-time for equal lengths; false for null or another length. */
export function equalBytes(a: Uint8Array | null | undefined, b: Uint8Array): boolean {
  if (a == null || a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}

/** Lowercase hex, for using keys as Map and Set keys. */
export function toHex(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += byte.toString(16).padStart(2, '0');
  return text;
}

/** Throws a RangeError (a caller bug) unless `bytes` is a Uint8Array of `length` bytes. */
export function checkLength(what: string, bytes: Uint8Array, length: number): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new RangeError(`${what} must be a Uint8Array of ${length} bytes`);
  }
}
