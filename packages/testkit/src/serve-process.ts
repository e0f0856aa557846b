import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gate, startScriptedPeer } from './ws-peer.js';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SHOAL_BIN = join(REPO_ROOT, 'packages/cli/bin/shoal.js');

/** A `shoal serve` (or `gateway`, `leader`) child process, and what it printed. */
export interface ServeProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Every JSON line printed on stdout so far. */
  readonly lines: Record<string, unknown>[];
  /** The ws:// URL it listens on (rejects if it exits first). */
  readonly url: Promise<string>;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  /** Calls `listener` with each stdout line printed from now on. */
  onLine(listener: (line: Record<string, unknown>) => void): void;
  /** Resolves with the first stdout line matching `predicate` (already printed or future). */
  line(predicate: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  /** SIGKILLs the process unless it already exited, and waits for the exit. */
  kill(): Promise<void>;
}

/**
 * Starts `shoal serve --config configPath --port 0` (plus `args`) as a child process of this test,
 * with this process's environment or `options.env`; `options.command` runs `shoal gateway` or
 * `shoal leader` instead (same flags, same output).
 */
export function startServe(configPath: string, args: readonly string[] = [], options: { readonly env?: NodeJS.ProcessEnv; readonly command?: 'serve' | 'gateway' | 'leader' } = {}): ServeProcess {
  const command = options.command ?? 'serve';
  const child = spawn(process.execPath, [SHOAL_BIN, command, '--config', configPath, '--port', '0', ...args], { cwd: REPO_ROOT, env: options.env ?? process.env });
  const listeners: ((line: Record<string, unknown>) => void)[] = [];
  const lines: Record<string, unknown>[] = [];
  const waiters: { predicate: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }[] = [];
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
      for (const waiter of waiters.filter((w) => w.predicate(line))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const line = (predicate: (line: Record<string, unknown>) => boolean) => {
    const seen = lines.find(predicate);
    if (seen) return Promise.resolve(seen);
    const printed = new Promise<Record<string, unknown>>((resolve) => waiters.push({ predicate, resolve }));
    // Fail fast (with the child's stderr) instead of waiting for the test timeout when it dies first.
    const died = exit.then(({ code, signal }) => {
      throw new Error(`shoal ${command} exited (code ${code}, signal ${signal}) before printing the expected line; stderr:\n${stderr}`);
    });
    return Promise.race([printed, died]);
  };
  const url = line((l) => l['event'] === 'listening').then((l) => l['url'] as string);
  url.catch(() => {}); // a process expected to refuse never listens; awaiting `url` still sees the rejection
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exit;
  };
  return { child, lines, url, exit, stderr: () => stderr, onLine: (listener) => void listeners.push(listener), line, kill };
}

/** A `shoal serve` child on a logreg model (4 features, 3 classes) with two honest peers holding round 1 open. */
export interface HeldServe {
  readonly serve: ServeProcess;
  readonly url: string;
  /** Lets the honest peers answer round 1; the 2-round run then finishes. */
  release(): void;
  /** Ends the peers and the process, and removes the work folder. */
  stop(): Promise<void>;
}

/**
 * Starts `shoal serve` for 2 rounds of 2 clients with `server` (tokens, limits) from the caller,
 * and two honest scripted peers whose round-1 updates wait for `release()`: the setting in which
 * the hostile-input tests attack a coordinator while an honest round is in flight.
 */
export async function startHeldServe(token: string, server: Record<string, unknown>): Promise<HeldServe> {
  const workDir = await mkdtemp(join(tmpdir(), 'shoal-held-serve-'));
  const configPath = join(workDir, 'serve.json');
  const config = { rounds: 2, minClients: 2, clientsPerRound: 2, roundTimeoutMs: 300_000, model: { builtin: 'logreg', inputShape: [4], numClasses: 3 }, server: { tokens: [token], ...server } };
  await writeFile(configPath, JSON.stringify(config));
  const serve = startServe(configPath);
  const url = await serve.url;
  const roundOneHeld = gate();
  const honest = await Promise.all(
    [10, 30].map((numExamples) =>
      startScriptedPeer(url, {
        token,
        numExamples,
        delta: (train) => new Float32Array(15).fill(train.round / 100),
        beforeUpdate: (train) => (train.round === 1 ? roundOneHeld.opened : Promise.resolve()),
      }),
    ),
  );
  return {
    serve,
    url,
    release: () => roundOneHeld.open(),
    async stop() {
      roundOneHeld.open();
      for (const peer of honest) peer.peer.ws.terminate();
      await serve.kill();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
