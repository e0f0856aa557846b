// Reading a config file for `serve` and `simulate`: the file, its JSON, then the `--set`
// overrides, all before validation (which is the command's: `composeConfig` with its sections).
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { configError } from '@shoal/protocol';

type Raw = Record<string, unknown>;

/**
 * Reads the JSON config at `path`, applies the overrides and validates it with `parse`, which gets
 * the file's name without extension as the default `name`.
 */
export async function readConfig<T>(path: string, overrides: readonly string[], parse: (raw: unknown, defaultName: string) => T): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw configError(`cannot read config file ${path}: ${(cause as Error).message}`, { cause });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw configError(`config file ${path} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  return parse(applyOverrides(raw, overrides), basename(path, extname(path)));
}

/**
 * Applies `--set key.path=value` overrides to a raw config before validation. The value is parsed
 * as JSON when it can be (numbers, booleans, arrays), else taken as a string.
 */
export function applyOverrides(raw: unknown, assignments: readonly string[]): Raw {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw configError('(config) must be an object');
  const root = structuredClone(raw) as Raw;
  for (const assignment of assignments) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) throw configError(`--set expects key.path=value, got "${assignment}"`);
    const path = assignment.slice(0, eq).split('.');
    // Config keys are plain names: these would reach Object.prototype instead of the config.
    const unsafe = path.find((key) => key === '__proto__' || key === 'constructor' || key === 'prototype');
    if (unsafe !== undefined) throw configError(`--set ${assignment}: "${unsafe}" is not a config key`);
    const text = assignment.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
    let node: Raw = root;
    for (const key of path.slice(0, -1)) {
      const child = node[key];
      if (child === undefined) node[key] = {};
      else if (typeof child !== 'object' || child === null || Array.isArray(child)) throw configError(`--set ${assignment}: ${key} is not an object`);
      node = node[key] as Raw;
    }
    node[path.at(-1)!] = value;
  }
  return root;
}
