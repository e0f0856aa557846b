import type { ErrorCode } from './errors.js';
import { PROTOCOL_VERSION } from './messages.js';

/**
 * The field checkers of `validate.ts`: each returns the checked value or throws a Rejection, which
 * `decodeWith` turns into the error code the connection closes with. Internal to this package.
 */

/** Thrown by the field checkers and caught in `decodeWith`; never escapes the package. */
export class Rejection extends Error {
  constructor(readonly code: ErrorCode, readonly reason: string) {
    super(reason);
  }
}

export type RawMessage = Record<string, unknown>;

export function reject(code: ErrorCode, reason: string): never {
  throw new Rejection(code, reason);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Rejects missing required keys and any key the schema does not name (strict). */
export function fields(path: string, raw: RawMessage, required: readonly string[], optionalKeys: readonly string[]): void {
  for (const key of required) {
    if (raw[key] === undefined) reject('INVALID_MESSAGE', `${path}.${key} is missing`);
  }
  for (const key of Object.keys(raw)) {
    if (!required.includes(key) && !optionalKeys.includes(key)) reject('INVALID_MESSAGE', `${path} has an unknown field ${quote(key)}`);
  }
}

export function object(path: string, value: unknown, required: readonly string[], optionalKeys: readonly string[]): RawMessage {
  if (!isPlainObject(value)) return reject('INVALID_MESSAGE', `${path} is not an object`);
  fields(path, value, required, optionalKeys);
  return value;
}

/** `{ [key]: check(value) }` when the key is present, `{}` when absent; undefined counts as absent. */
export function optional<K extends string, T>(raw: RawMessage, key: K, check: (value: unknown) => T): { [P in K]?: T } {
  const value = raw[key];
  return value === undefined ? {} : ({ [key]: check(value) } as { [P in K]?: T });
}

/** Any number; NaN and ±Infinity are NON_FINITE wherever they appear. */
export function finite(path: string, value: unknown): number {
  if (typeof value !== 'number') return reject('INVALID_MESSAGE', `${path} is not a number`);
  if (!Number.isFinite(value)) return reject('NON_FINITE', `${path} is ${value}`);
  return value;
}

export function inRange(path: string, value: unknown, min: number, max: number): number {
  const number = finite(path, value);
  if (number < min || number > max) reject('INVALID_MESSAGE', `${path} is ${number}; it must be in [${min}, ${max}]`);
  return number;
}

export function integer(path: string, value: unknown, min: number): number {
  const number = finite(path, value);
  if (!Number.isSafeInteger(number) || number < min) reject('INVALID_MESSAGE', `${path} is ${number}; it must be an integer ≥ ${min}`);
  return number;
}

export function boolean(path: string, value: unknown): boolean {
  if (typeof value !== 'boolean') reject('INVALID_MESSAGE', `${path} must be a boolean`);
  return value;
}

export function positive(path: string, value: unknown): number {
  const number = finite(path, value);
  if (number <= 0) reject('INVALID_MESSAGE', `${path} is ${number}; it must be > 0`);
  return number;
}

export function version(path: string, value: unknown): number {
  const number = integer(`${path}.protocolVersion`, value, 0);
  if (number !== PROTOCOL_VERSION) {
    reject('UNSUPPORTED_VERSION', `${path}.protocolVersion is ${number}; this peer speaks ${PROTOCOL_VERSION}`);
  }
  return number;
}

export function string(path: string, value: unknown, maxLength: number, options: { allowEmpty?: boolean } = {}): string {
  if (typeof value !== 'string') return reject('INVALID_MESSAGE', `${path} is not a string`);
  if (value.length > maxLength) reject('INVALID_MESSAGE', `${path} has ${value.length} characters; the limit is ${maxLength}`);
  if (value.length === 0 && options.allowEmpty !== true) reject('INVALID_MESSAGE', `${path} is empty`);
  return value;
}

export function oneOf<const T extends string>(path: string, value: unknown, options: readonly T[]): T {
  if (!options.includes(value as T)) reject('INVALID_MESSAGE', `${path} is not one of ${options.join(', ')}`);
  return value as T;
}

export function array<T>(path: string, value: unknown, maxLength: number, check: (entry: unknown, path: string) => T): T[] {
  if (!Array.isArray(value)) return reject('INVALID_MESSAGE', `${path} is not an array`);
  if (value.length > maxLength) reject('INVALID_MESSAGE', `${path} has ${value.length} entries; the limit is ${maxLength}`);
  return value.map((entry, index) => check(entry, `${path}[${index}]`));
}

/**
 * A weight vector: a Float32Array of `numParams` finite values (any length when numParams is not
 * yet known). `decodeFrame` already gave it a buffer of its own, so it is returned as is.
 */
export function vector(path: string, value: unknown, numParams: number | undefined): Float32Array {
  if (!(value instanceof Float32Array)) return reject('INVALID_MESSAGE', `${path} is not a Float32Array`);
  if (numParams !== undefined && value.length !== numParams) {
    reject('LENGTH_MISMATCH', `${path} has ${value.length} values; the model has ${numParams}`);
  }
  for (let index = 0; index < value.length; index++) {
    const entry = value[index]!;
    if (!Number.isFinite(entry)) reject('NON_FINITE', `${path}[${index}] is ${entry}`);
  }
  return value;
}

/** Rejects a list naming one index twice; `key` names the field the indices came from. */
export function distinct(path: string, indices: readonly number[], key: string | undefined): void {
  const seen = new Set<number>();
  for (const [position, value] of indices.entries()) {
    if (seen.has(value)) reject('INVALID_MESSAGE', `${path}[${position}]${key === undefined ? '' : `.${key}`} repeats ${value}`);
    seen.add(value);
  }
}

/**
 * Opaque bytes (keys, boxes, shares): a Uint8Array of minLength..maxLength bytes. `decodeFrame`
 * returns every bin and typed array as a fresh, plain array of its own, so no copy is made here.
 */
export function bytes(path: string, value: unknown, minLength: number, maxLength: number): Uint8Array {
  if (!(value instanceof Uint8Array)) return reject('INVALID_MESSAGE', `${path} is not a Uint8Array`);
  if (value.length < minLength || value.length > maxLength) {
    const limit = minLength === maxLength ? `exactly ${minLength}` : `${minLength} to ${maxLength}`;
    reject('INVALID_MESSAGE', `${path} has ${value.length} bytes; it must have ${limit}`);
  }
  return value;
}

/** A masked SecAgg input: a Uint32Array of exactly `length` words (any 32-bit value is valid). */
export function words(path: string, value: unknown, length: number): Uint32Array {
  if (!(value instanceof Uint32Array)) return reject('INVALID_MESSAGE', `${path} is not a Uint32Array`);
  if (value.length !== length) reject('LENGTH_MISMATCH', `${path} has ${value.length} words; it must have ${length} (the model's parameters and the weight)`);
  return value;
}

/** Peer-controlled text in a reason, shortened: WebSocket close reasons hold at most 123 bytes. */
export function quote(text: string): string {
  return JSON.stringify(text.length > 24 ? `${text.slice(0, 24)}…` : text);
}

export function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > 80 ? `${message.slice(0, 80)}…` : message;
}
