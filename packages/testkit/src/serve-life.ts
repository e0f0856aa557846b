import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SHOAL_BIN = join(REPO_ROOT, 'packages/cli/bin/shoal.js');

/** One life of a `shoal serve` process in a chaos run: it may be told where to crash, and is watched line by line. */
export interface ServeLife {
  readonly child: ChildProcessWithoutNullStreams;
  /** The ws:// URL it listens on (port 0: a new one each life); rejects if it exits first. */
  readonly url: Promise<string>;
  readonly exit: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>;
  /** Every JSON line printed on stdout so far (round metrics and events). */
  readonly lines: readonly Record<string, unknown>[];
  /** Calls `listener` with each stdout line from now on. */
  onLine(listener: (line: Record<string, unknown>) => void): void;
  stderr(): string;
  /** SIGKILLs the process unless it already exited, and waits for the exit. */
  kill(): Promise<void>;
}

/**
 * Starts `shoal serve --config configPath --port 0` with `crashAt` as `SHOAL_CRASH_AT` (the process
 * SIGKILLs itself there; see packages/coordinator/src/crash-point.ts) and `args` appended.
 * Unlike `startServe`, the environment is the caller's choice and each life is a fresh port.
 */
export function startServeLife(configPath: string, options: { readonly crashAt?: string; readonly args?: readonly string[] } = {}): ServeLife {
  const env = { ...process.env };
  delete env['SHOAL_CRASH_AT'];
  if (options.crashAt !== undefined) env['SHOAL_CRASH_AT'] = options.crashAt;
  const child = spawn(process.execPath, [SHOAL_BIN, 'serve', '--config', configPath, '--port', '0', ...(options.args ?? [])], { cwd: REPO_ROOT, env });
  const lines: Record<string, unknown>[] = [];
  const listeners: ((line: Record<string, unknown>) => void)[] = [];
  let stdoutTail = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    stdoutTail += chunk.toString();
    const complete = stdoutTail.split('\n');
    stdoutTail = complete.pop()!;
    for (const text of complete) {
      if (text.trim() === '') continue;
      const line = JSON.parse(text) as Record<string, unknown>;
      lines.push(line);
      for (const listener of listeners) listener(line);
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = new Promise<string>((resolve, reject) => {
    listeners.push((line) => {
      if (line['event'] === 'listening') resolve(line['url'] as string);
    });
    void exit.then(({ code, signal }) => reject(new Error(`shoal serve exited (code ${code}, signal ${signal}) before listening; stderr:\n${stderr}`)));
  });
  url.catch(() => {}); // a life killed before it listens; awaiting `url` still sees the rejection
  return {
    child,
    url,
    exit,
    lines,
    onLine: (listener) => void listeners.push(listener),
    stderr: () => stderr,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exit;
    },
  };
}
