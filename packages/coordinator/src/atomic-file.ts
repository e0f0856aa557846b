import { open, readFile, rename } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { crashNow, fileCrashStep, type FileCrashStep } from './crash-point.js';

/**
 * Where a crash test can stop a write (see `SHOAL_CRASH_AT` below): after half of the bytes reached
 * the temporary file, after the whole temporary file is synced but before the rename, and after
 * the rename but before the folder is synced.
 */
export type CrashStep = FileCrashStep;

/**
 * Writes `data` to `path` atomically: to `<path>.tmp-<pid>`, fsync, rename over `path`, then fsync
 * the folder, so a crash at any instant leaves the old file or the new one, never half of one.
 * The folder must exist. Two writers of the same path in one process must not overlap.
 *
 * Crash tests set the environment variable `SHOAL_CRASH_AT=<step>:<file name>` (e.g.
 * `mid-write:round-000003.ckpt`) in a child process: writing a file of that name then SIGKILLs the
 * process exactly at that step, instead of hoping a timed kill lands inside a write
 * (src/crash-point.ts reads the variable; it also names round stages).
 */
export async function writeFileAtomically(path: string, data: string | Uint8Array): Promise<void> {
  const crashAt = fileCrashStep(basename(path));
  const tempPath = `${path}.tmp-${process.pid}`;
  const handle = await open(tempPath, 'w');
  try {
    if (crashAt === 'mid-write') {
      const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
      await handle.write(bytes.subarray(0, bytes.length >> 1));
      await handle.sync();
      crashNow();
    }
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  if (crashAt === 'before-rename') crashNow();
  await rename(tempPath, path);
  if (crashAt === 'after-rename') crashNow();
  await syncDirectory(dirname(path)); // make the rename itself durable, not just the file's bytes
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The UTF-8 text of a file, or undefined when it does not exist (any other failure throws). */
export async function readTextIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
