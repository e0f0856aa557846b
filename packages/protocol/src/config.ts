// The readers every package's config schema is written with (@shoal/dp, @shoal/secagg,
// @shoal/strategy and @shoal/coordinator each own one section of the config file; the simulator
// owns two). One wording for every key: a bad value throws ShoalError INVALID_CONFIG whose message
// names the full key path, which the CLI prints as `shoal: config: <message>`.
import { ShoalError } from './errors.js';

/** The error of a bad config: INVALID_CONFIG, the message naming the key path and the rule broken. */
export function configError(message: string, options?: { cause?: unknown }): ShoalError {
  return new ShoalError('INVALID_CONFIG', message, options);
}

/** A rule for a number: its test and how a message states it (`positive`, `in [0, 1)`). Numbers are always finite. */
export interface NumberRule {
  readonly text: string;
  readonly test: (value: number) => boolean;
}

export const POSITIVE: NumberRule = { text: 'positive', test: (x) => x > 0 };
export const NON_NEGATIVE: NumberRule = { text: 'non-negative', test: (x) => x >= 0 };

/** The rule of an interval written as in maths, `[0, 0.5)` or `(0, 1]`: the text is the rule. */
export function interval(text: string): NumberRule {
  const match = /^([[(])(-?[\d.e+-]+), (-?[\d.e+-]+)([\])])$/.exec(text);
  if (!match) throw new RangeError(`interval: cannot read ${JSON.stringify(text)}; write it like [0, 1)`);
  const low = Number(match[2]);
  const high = Number(match[3]);
  const closedLow = match[1] === '[';
  const closedHigh = match[4] === ']';
  return { text: `in ${text}`, test: (x) => (closedLow ? x >= low : x > low) && (closedHigh ? x <= high : x < high) };
}

/** How a value appears in a message. */
export function shown(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/**
 * One object of a config: reads its keys with their defaults (a key that is absent or `null` takes
 * its default) and rejects a key it does not allow, naming the allowed ones. `path` is the object's
 * key path, `''` for the top level.
 */
export class ConfigSection {
  readonly path: string;
  private readonly raw: Readonly<Record<string, unknown>>;

  /** `raw` absent or `null` reads as `{}`; anything but an object throws. */
  constructor(raw: unknown, path: string, allowed: readonly string[]) {
    this.path = path;
    if (raw === undefined || raw === null) raw = {};
    if (typeof raw !== 'object' || Array.isArray(raw)) throw configError(`${path || '(config)'} must be an object`);
    this.raw = raw as Record<string, unknown>;
    for (const key of Object.keys(this.raw)) {
      if (!allowed.includes(key)) throw configError(`unknown key ${this.pathOf(key)} (allowed: ${allowed.filter((k) => !k.startsWith('$')).join(', ')})`);
    }
  }

  /** The full key path of `key`, e.g. `secagg.threshold`. */
  pathOf(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  /** Whether `key` is given (present and not null). */
  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  /** The raw value of `key`, undefined when absent or null. */
  value(key: string): unknown {
    return this.has(key) ? this.raw[key] : undefined;
  }

  /** `key` read by `check` (which throws naming the path), or `fallback` when it is not given. */
  read<T>(key: string, fallback: T, check: (value: unknown, path: string) => T): T {
    return this.has(key) ? check(this.raw[key], this.pathOf(key)) : fallback;
  }

  /** `{ [key]: value }` when `key` is given, else `{}`: for optional keys without a default. */
  optional<K extends string, T>(key: K, check: (value: unknown, path: string) => T): { [P in K]?: T } {
    return (this.has(key) ? { [key]: check(this.raw[key], this.pathOf(key)) } : {}) as { [P in K]?: T };
  }

  /** A nested object, e.g. `server.limits`. */
  section(key: string, allowed: readonly string[]): ConfigSection {
    return new ConfigSection(this.value(key), this.pathOf(key), allowed);
  }

  integer(key: string, fallback: number, min: number, max?: number): number {
    return this.read(key, fallback, (value, path) => integerAt(value, path, min, max));
  }

  number(key: string, fallback: number, rule: NumberRule): number {
    return this.read(key, fallback, (value, path) => numberAt(value, path, rule));
  }

  oneOf<T extends string>(key: string, fallback: T, options: readonly T[]): T {
    return this.read(key, fallback, (value, path) => oneOfAt(value, path, options));
  }

  string(key: string, fallback: string): string {
    return this.read(key, fallback, stringAt);
  }

  boolean(key: string, fallback: boolean): boolean {
    return this.read(key, fallback, booleanAt);
  }
}

/** An integer in [min, max] (max default: unbounded). */
export function integerAt(value: unknown, path: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw configError(`${path} must be an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}], got ${shown(value)}`);
  }
  return value;
}

/** A finite number passing `rule`. */
export function numberAt(value: unknown, path: string, rule: NumberRule): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !rule.test(value)) throw configError(`${path} must be a number ${rule.text}, got ${shown(value)}`);
  return value;
}

export function oneOfAt<T extends string>(value: unknown, path: string, options: readonly T[]): T {
  if (typeof value !== 'string' || !options.includes(value as T)) throw configError(`${path} must be one of ${options.join(', ')}, got ${shown(value)}`);
  return value as T;
}

export function booleanAt(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') throw configError(`${path} must be true or false, got ${shown(value)}`);
  return value;
}

export function stringAt(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0) throw configError(`${path} must be a non-empty string`);
  return value;
}

export function stringsAt(value: unknown, path: string): string[] {
  if (!Array.isArray(value)) throw configError(`${path} must be an array of strings`);
  return value.map((item, index) => stringAt(item, `${path}[${index}]`));
}
