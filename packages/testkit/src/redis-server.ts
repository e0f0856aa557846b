import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** Debian's redis-server (`apt-get install -y redis-server`; .ci/run installs it). */
export const REDIS_SERVER = '/usr/bin/redis-server';

/** A redis-server child process of this test, on a loopback port, without persistence. */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** SIGKILLs it (its data is gone: it never saves) and waits for the exit. */
  kill(): Promise<void>;
}

/** A port that was free a moment ago (redis-server cannot be told to pick one itself). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Starts `redis-server` on 127.0.0.1 (`port`, or a free one) with `--save ''` and no append-only
 * file, and resolves once it accepts connections. Kill it with `kill()`, by its pid.
 */
export async function startRedisServer(port?: number): Promise<RedisServer> {
  const chosen = port ?? (await freePort());
  const child: ChildProcess = spawn(REDIS_SERVER, ['--port', String(chosen), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'notice'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) resolve();
    });
    child.once('error', (error) => reject(new Error(`cannot start ${REDIS_SERVER} (apt-get install -y redis-server): ${error.message}`)));
    void exited.then(() => reject(new Error(`redis-server exited before it was ready:\n${output}`)));
  });
  return {
    url: `redis://127.0.0.1:${chosen}`,
    port: chosen,
    pid: child.pid!,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
