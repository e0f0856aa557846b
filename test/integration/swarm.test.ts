// `shoal swarm`: two swarm processes, each hosting half of a config's virtual clients, feed one
// real `shoal serve` over loopback WebSockets. Every round takes all four clients
// (clientsPerRound = numClients), so every committed round has clients from both swarms; each
// swarm reports the rounds its clients saw committed, and both must report every one of them.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, type ServeProcess } from '@shoal/testkit';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHOAL_BIN = join(REPO_ROOT, 'packages/cli/bin/shoal.js');
const TOKEN = 'swarm-test-token';
const ROUNDS = 3;
const CLIENTS = 4;

let workDir: string;
let configPath: string;
const children: ChildProcessWithoutNullStreams[] = [];

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'shoal-swarm-'));
  configPath = join(workDir, 'swarm.json');
  // One file for both sides: serve reads the coordinator's keys, swarm the simulation's.
  await writeFile(
    configPath,
    JSON.stringify({
      name: 'swarm-test',
      seed: 5,
      rounds: ROUNDS,
      model: 'logreg',
      clientsPerRound: CLIENTS,
      minClients: CLIENTS,
      minAvailable: CLIENTS,
      train: { epochs: 1, batchSize: 8, learningRate: 0.1 },
      server: { tokens: [TOKEN] },
      simulation: { dataset: 'iris', numClients: CLIENTS },
    }),
  );
});

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  await rm(workDir, { recursive: true, force: true });
});

/** A `shoal swarm` child; resolves with its exit code and the JSON lines it printed. */
function startSwarm(args: readonly string[]): { readonly child: ChildProcessWithoutNullStreams; readonly result: Promise<{ code: number | null; lines: Record<string, unknown>[]; stderr: string }> } {
  const child = spawn(process.execPath, [SHOAL_BIN, 'swarm', ...args], { cwd: REPO_ROOT });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const result = once(child, 'exit').then(([code]) => ({
    code: code as number | null,
    lines: stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>),
    stderr,
  }));
  return { child, result };
}

describe('shoal swarm', () => {
  it('two swarms, each with half of the clients, train with one shoal serve: every committed round has clients of both', async () => {
    const serve: ServeProcess = startServe(configPath);
    children.push(serve.child);
    const url = await serve.url;
    const first = startSwarm(['--url', url, '--token', TOKEN, '--share', '1/2', configPath]);
    const second = startSwarm(['--url', url, '--clients', '2-3', '--token', TOKEN, configPath]);
    const [one, two] = await Promise.all([first.result, second.result]);
    expect(one.code, one.stderr).toBe(0);
    expect(two.code, two.stderr).toBe(0);
    expect((await serve.exit).code).toBe(0);

    const committed = serve.lines.filter((line) => line['status'] === 'committed').map((line) => line['round']);
    expect(committed.length).toBeGreaterThan(0);
    for (const [swarm, hosted] of [[one, [0, 1]], [two, [2, 3]]] as const) {
      expect(swarm.lines.filter((line) => line['event'] === 'joined').map((line) => line['client'])).toEqual(hosted);
      const finished = swarm.lines.find((line) => line['event'] === 'finished');
      expect(finished?.['rounds']).toEqual(committed);
    }
  });

  it('exits 2 naming the problem when the coordinator refuses the token', async () => {
    const serve: ServeProcess = startServe(configPath);
    children.push(serve.child);
    const url = await serve.url;
    const { code, stderr } = await startSwarm(['--url', url, '--token', 'not-the-token', '--clients', '0-0', configPath]).result;
    expect(code).toBe(2);
    expect(stderr).toMatch(/rejected the token/);
    await serve.kill();
  });

  it('exits 2 naming the address when nothing listens there', async () => {
    // A port that was free a moment ago: listen on 0, note the port, close.
    const { createServer } = await import('node:net');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const { code, stderr } = await startSwarm(['--url', `ws://127.0.0.1:${port}`, '--token', TOKEN, '--clients', '0-0', configPath]).result;
    expect(code).toBe(2);
    expect(stderr).toMatch(new RegExp(`cannot reach coordinator at ws://127.0.0.1:${port}`));
  });
});
