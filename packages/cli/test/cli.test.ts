// Runs the real CLI (`node packages/cli/bin/shoal.js ...`) as a child process from the repo root,
// the way users run it: exit codes, stderr messages and the files a simulation writes.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT, childEnv, run, shoal, tempFolder } from './run-cli.js';

const tmp = tempFolder('shoal-cli-test-');
const TMP = tmp.path;
afterAll(() => tmp.remove());
const writeConfig = tmp.writeConfig;

/** A few-second simulation: digits, logistic regression, 4 clients, 2 per round. `rounds` is 5 so the test's --set rounds=2 shows. */
const TINY = {
  name: 'tiny',
  seed: 3,
  rounds: 5,
  model: 'logreg',
  clientsPerRound: 2,
  minClients: 2,
  roundTimeoutMs: 30_000,
  train: { epochs: 1, batchSize: 16, learningRate: 0.1 },
  simulation: { dataset: 'digits', numClients: 4, examplesPerClient: 40, testExamples: 100 },
};

const ROUND_FIELDS = ['round', 'status', 'participants', 'dropouts', 'accuracy', 'loss', 'bytesUp', 'bytesDown', 'durationMs'];

/** The part of summary.json's validated config these tests read. */
interface SummaryConfig {
  readonly rounds: number;
  readonly train: { readonly learningRate: number };
  readonly simulation: { readonly transport: string };
}

/** Runs TINY for 2 rounds (with extra --set flags) and checks metrics.jsonl and summary.json. */
async function expectTinySimulation(outName: string, extraSets: readonly string[]): Promise<SummaryConfig> {
  const out = join(TMP, outName);
  const result = await shoal(['simulate', writeConfig(outName, TINY), '--out', out, '--quiet', '--set', 'rounds=2', '--set', 'train.learningRate=0.2', ...extraSets.flatMap((s) => ['--set', s])]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect(result.stdout).toContain('tiny: 2/2 rounds committed on digits (4 clients');

  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
  expect(lines).toHaveLength(2);
  const rounds = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  for (const metrics of rounds) {
    for (const field of ROUND_FIELDS) expect(metrics, field).toHaveProperty(field);
    expect(metrics['status']).toBe('committed');
    expect(metrics['participants']).toBe(2);
    expect(metrics['dropouts']).toBe(0);
    expect(metrics['accuracy']).toBeGreaterThanOrEqual(0);
    expect(metrics['accuracy']).toBeLessThanOrEqual(1);
    expect(Number.isFinite(metrics['loss'])).toBe(true);
    expect(metrics['bytesUp']).toBeGreaterThan(0);
    expect(metrics['bytesDown']).toBeGreaterThan(0);
  }
  expect(rounds.map((r) => r['round']).sort()).toEqual([1, 2]);

  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Record<string, unknown> & { config: SummaryConfig };
  expect(summary['name']).toBe('tiny');
  expect(summary['rounds']).toBe(2);
  expect(summary['finalAccuracy']).toBe(rounds.find((r) => r['round'] === 2)!['accuracy']);
  // The --set overrides reached the run.
  expect(summary.config.rounds).toBe(2);
  expect(summary.config.train.learningRate).toBe(0.2);
  return summary.config;
}

describe('shoal CLI', { concurrent: true }, () => {
  it('--help exits 0 and lists serve and simulate', async () => {
    const result = await shoal(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ {2}shoal serve /m);
    expect(result.stdout).toMatch(/^ {2}shoal simulate /m);
  });

  it('an unknown command exits 2 and names it', async () => {
    const result = await shoal(['train']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown command "train"');
  });

  it('simulate with an unknown config key exits 2 and names the key', async () => {
    const path = writeConfig('unknown-key', { ...TINY, train: { ...TINY.train, learnRate: 0.1 } });
    const result = await shoal(['simulate', path, '--out', join(TMP, 'never')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown key train.learnRate');
    expect(existsSync(join(TMP, 'never'))).toBe(false);
  });

  it('simulate rejects an unknown key given with --set', async () => {
    const result = await shoal(['simulate', writeConfig('set-unknown', TINY), '--set', 'simulation.clients=4']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown key simulation.clients');
  });

  it('a missing config file exits 2 with a message naming the file', async () => {
    const missing = join(TMP, 'no-such-config.json');
    const result = await shoal(['simulate', missing]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`cannot read config file ${missing}`);
  });

  it('a config file that is not JSON exits 2', async () => {
    const path = join(TMP, 'broken.json');
    writeFileSync(path, '{ "rounds": 2, }');
    const result = await shoal(['simulate', path]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`config file ${path} is not valid JSON`);
  });

  it('simulate runs a tiny real simulation over the in-memory transport', async () => {
    const config = await expectTinySimulation('run-memory', []);
    expect(config.simulation.transport).toBe('memory');
  });

  it('simulate runs the same over loopback WebSockets with --set simulation.transport=ws', async () => {
    const config = await expectTinySimulation('run-ws', ['simulation.transport=ws']);
    expect(config.simulation.transport).toBe('ws');
  });

  it('serve without tokens exits 2', async () => {
    const result = await shoal(['serve', '--config', writeConfig('serve-no-tokens', { model: 'logreg', simulation: { dataset: 'iris' } }), '--port', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('server.tokens is empty');
  });

  it('serve takes its tokens from SHOAL_TOKENS, listens, and stops cleanly on SIGTERM', async () => {
    const path = writeConfig('serve', { model: 'logreg', rounds: 1, simulation: { dataset: 'iris' }, server: { port: 8080 } });
    const child = spawn(process.execPath, [BIN, 'serve', '--config', path, '--port', '0'], {
      cwd: REPO_ROOT,
      env: childEnv({ SHOAL_TOKENS: 'alpha,beta' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const killer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          const listening = /\{"event":"listening","url":"([^"]+)"\}/.exec(stdout);
          if (listening) resolve(listening[1]!);
        });
        void exited.then((code) => reject(new Error(`serve exited (${code}) before listening: ${stderr}`)));
      });
      // --port 0 overrode server.port 8080.
      expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+/);
      expect(url).not.toContain(':8080');
      expect(await upgradeStatus(url, 'beta')).toBe('open');
      expect(await upgradeStatus(url, 'gamma')).toBe(401);

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stdout).toContain('{"event":"finished","stoppedBy":"stopped"');
    } finally {
      clearTimeout(killer);
      child.kill('SIGKILL');
    }
  });

  it('npx shoal --help works from the repo root', async () => {
    const result = await run('npx', ['--no', '--', 'shoal', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('shoal simulate');
  });
});

/** Tries a WebSocket upgrade with a bearer token: 'open', or the HTTP status the server refused it with. */
function upgradeStatus(url: string, token: string): Promise<'open' | number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    socket.on('open', () => {
      socket.close();
      resolve('open');
    });
    socket.on('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.on('error', (error) => reject(error));
  });
}
