/**
 * docs/scale-out.md's walkthrough, run as written (on free ports, two rounds, a temporary
 * checkpoint folder): redis-server, `shoal leader`, three `shoal gateway`s and three `shoal swarm`
 * shares of simulations/scaleout.json's virtual clients. Every round commits with the 24 devices it
 * wants, and the leader's privacy ledger verifies.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { runToCompletion, startRedisServer, startServe, type RedisServer, type ServeProcess } from '@shoal/testkit';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHOAL = join(REPO_ROOT, 'packages/cli/bin/shoal.js');
const CONFIG = join(REPO_ROOT, 'simulations/scaleout.json');
const TOKEN = 'scaleout-demo-token'; // the config's server.tokens

describe('docs/scale-out.md: one machine', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.reverse()) await step();
    cleanup.length = 0;
  });

  it('a leader, three gateways and three swarms train simulations/scaleout.json', async () => {
    const redis: RedisServer = await startRedisServer();
    cleanup.push(() => redis.kill());
    const dir = await mkdtemp(join(tmpdir(), 'shoal-walkthrough-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const overrides = ['--set', 'rounds=2', '--set', `server.checkpointDir=${dir}`];
    const processes: ServeProcess[] = [];
    cleanup.push(() => Promise.all(processes.map((child) => child.kill())));
    const leader = startServe(CONFIG, ['--redis', redis.url, ...overrides], { command: 'leader' });
    processes.push(leader);
    await leader.url;
    const gateways = [1, 2, 3].map((g) => startServe(CONFIG, ['--redis', redis.url, '--id', `gw-${g}`, ...overrides], { command: 'gateway' }));
    processes.push(...gateways);
    const urls = await Promise.all(gateways.map((gateway) => gateway.url));
    // Owned by this test: killed by pid in the cleanup whatever happens (a failed assertion too).
    const swarms = urls.map((url, i) => {
      const child = spawn(process.execPath, [SHOAL, 'swarm', CONFIG, '--url', url, '--token', TOKEN, '--share', `${i + 1}/3`, ...overrides], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => child.once('exit', (code) => resolve({ code, stderr })));
      cleanup.push(async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      });
      return exited;
    });

    const finished = await leader.line((line) => line['event'] === 'finished');
    expect(finished).toMatchObject({ stoppedBy: 'completed' });
    const rounds = leader.lines.filter((line) => typeof line['round'] === 'number');
    expect(rounds.map((line) => [line['round'], line['status'], line['participants']])).toEqual([
      [1, 'committed', 24],
      [2, 'committed', 24],
    ]);
    for (const swarm of await Promise.all(swarms)) expect(swarm.code, swarm.stderr).toBe(0);
    for (const gateway of gateways) expect(await gateway.line((line) => line['event'] === 'finished')).toMatchObject({ stoppedBy: 'completed' });
    const verify = await runToCompletion(process.execPath, [SHOAL, 'ledger', 'verify', dir], { cwd: REPO_ROOT });
    expect(verify.code, verify.stderr).toBe(0);
  }, 180_000);
});
