// Shared by the CLI tests: runs the real CLI (`node packages/cli/bin/shoal.js ...`) as a child
// process from the repo root, the way users run it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runToCompletion, type ProcessResult } from '@shoal/testkit';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BIN = join('packages', 'cli', 'bin', 'shoal.js');

/** The environment of a child: ours without SHOAL_TOKENS, so a developer's shell cannot change results. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { SHOAL_TOKENS: _ignored, ...env } = process.env;
  return { ...env, ...extra };
}

export interface RunOptions {
  readonly env?: Record<string, string>;
  readonly timeoutMs?: number;
}

/** Runs a command to completion from the repo root, killing it after `timeoutMs`. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<ProcessResult> {
  return runToCompletion(command, args, { cwd: REPO_ROOT, env: childEnv(options.env), ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}) });
}

/** `shoal ...args`, run with this Node. */
export const shoal = (args: readonly string[], options?: RunOptions) => run(process.execPath, [BIN, ...args], options);

/** A temporary folder for one test file's configs and outputs; `remove` deletes it. */
export function tempFolder(prefix: string): { readonly path: string; writeConfig(name: string, config: unknown): string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    /** Writes `<name>.json` into the folder and returns its path. */
    writeConfig(name, config) {
      const file = join(path, `${name}.json`);
      writeFileSync(file, JSON.stringify(config));
      return file;
    },
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}
