// An interrupted `shoal sweep` (SIGINT, as Ctrl-C sends it) stops its running child, keeps what
// finished, exits 130, and the same command afterwards runs only what had not finished.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT, childEnv, shoal, tempFolder } from './run-cli.js';

const tmp = tempFolder('shoal-sweep-interrupt-');
afterAll(() => tmp.remove());

const TINY_IRIS = { seed: 1, rounds: 2, model: 'logreg', clientsPerRound: 3, minClients: 2, simulation: { dataset: 'iris', numClients: 3 } };

/** Runs `shoal ...args` and sends it SIGINT as soon as its stdout has a line matching `when`. */
function interruptWhen(args: readonly string[], when: RegExp): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!sent && when.test(stdout)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The run names a sweep's stdout reports with `[i/n] <verb> <name>`. */
function runsReported(stdout: string, verb: 'ran' | 'skipped'): string[] {
  return [...stdout.matchAll(new RegExp(`\\] ${verb} ([^:]+):`, 'g'))].map((match) => match[1]!);
}

describe('shoal sweep, interrupted', () => {
  it('exits 130 after SIGINT, and a rerun runs only the runs that had not finished', { timeout: 120_000 }, async () => {
    const config = tmp.writeConfig('iris-interrupt', TINY_IRIS);
    const args = ['sweep', config, '--grid', 'train.learningRate=[0.05,0.1,0.2,0.5]', '--out', join(tmp.path, 'sweep')];

    const first = await interruptWhen(args, /\] ran /);
    expect(first.code).toBe(130);
    expect(first.stderr).toContain('interrupted; run the same command again to finish the remaining runs');
    const finished = runsReported(first.stdout, 'ran');
    expect(finished.length).toBeGreaterThanOrEqual(1);
    expect(finished.length).toBeLessThan(4);

    const second = await shoal(args, { timeoutMs: 90_000 });
    expect(second.code).toBe(0);
    // Exactly the runs that finished before the interrupt are skipped; the others run now.
    expect(runsReported(second.stdout, 'skipped')).toEqual(finished);
    expect(runsReported(second.stdout, 'ran')).toHaveLength(4 - finished.length);
    expect(second.stdout).toContain(`4/4 runs finished (${4 - finished.length} ran, ${finished.length} already done)`);
  });
});
