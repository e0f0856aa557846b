import { startServe, type ServeProcess } from './serve-process.js';

/** One life of a `shoal serve` process in a chaos run: it may be told where to crash, and is watched line by line. */
export type ServeLife = ServeProcess;

/**
 * Starts `shoal serve --config configPath --port 0` (a fresh port each life) with `crashAt` as
 * `SHOAL_CRASH_AT` (the process SIGKILLs itself there; packages/coordinator/src/crash-point.ts),
 * or without that variable whatever this process has, and `args` appended.
 */
export function startServeLife(configPath: string, options: { readonly crashAt?: string; readonly args?: readonly string[] } = {}): ServeLife {
  const env = { ...process.env };
  delete env['SHOAL_CRASH_AT'];
  if (options.crashAt !== undefined) env['SHOAL_CRASH_AT'] = options.crashAt;
  return startServe(configPath, options.args ?? [], { env });
}
