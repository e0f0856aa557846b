import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes `data` to `path` atomically: to `<path>.tmp-<pid>`, fsync, rename over `path`, then fsync
 * the folder, so a crash at any instant leaves the old file or the new one, never half of one.
 * The folder must exist. Two writers of the same path in one process must not overlap.
 */
export async function writeFileAtomically(path: string, data: string | Uint8Array): Promise<void> {
  const tempPath = `${path}.tmp-${process.pid}`;
  const handle = await open(tempPath, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tempPath, path);
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
