import { open, rename } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { configError } from '@shoal/protocol';

/**
 * Where a crash test can stop a write (see `SHOAL_CRASH_AT` below): after half of the bytes reached
 * the temporary file, after the whole temporary file is synced but before the rename, and after
 * the rename but before the folder is synced.
 */
export type CrashStep = 'mid-write' | 'before-rename' | 'after-rename';

const CRASH_STEPS: readonly CrashStep[] = ['mid-write', 'before-rename', 'after-rename'];

/**
 * Writes `data` to `path` atomically: to `<path>.tmp-<pid>`, fsync, rename over `path`, then fsync
 * the folder, so a crash at any instant leaves the old file or the new one, never half of one.
 * The folder must exist. Two writers of the same path in one process must not overlap.
 *
 * Crash tests set the environment variable `SHOAL_CRASH_AT=<step>:<file name>` (e.g.
 * `mid-write:round-000003.ckpt`) in a child process: writing a file of that name then SIGKILLs the
 * process exactly at that step, instead of hoping a timed kill lands inside a write.
 */
export async function writeFileAtomically(path: string, data: string | Uint8Array): Promise<void> {
  const crashAt = crashStepFor(path);
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

/** The step at which `SHOAL_CRASH_AT` asks to crash while writing `path`, if it names this file. */
function crashStepFor(path: string): CrashStep | undefined {
  const setting = process.env['SHOAL_CRASH_AT'];
  if (setting === undefined || setting === '') return undefined;
  const separator = setting.indexOf(':');
  const step = setting.slice(0, separator) as CrashStep;
  if (separator < 0 || !CRASH_STEPS.includes(step)) {
    throw configError(`SHOAL_CRASH_AT must be <step>:<file name> with step one of ${CRASH_STEPS.join(', ')}; got "${setting}"`);
  }
  return setting.slice(separator + 1) === basename(path) ? step : undefined;
}

function crashNow(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable: SIGKILL did not stop the process');
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
