// Runs `shoal privacy` as users do, `node packages/cli/bin/shoal.js privacy ...` from the repo root,
// and checks its answers against the Opacus RDP accountant test (opacus/tests/accountants_test.py).
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BIN = join('packages', 'cli', 'bin', 'shoal.js');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function shoalPrivacy(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, 'privacy', ...args], { cwd: REPO_ROOT, timeout: 40_000 }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') return reject(error);
      resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr });
    });
  });
}

const OPACUS_CASE = ['--sample-rate', '0.04', '--rounds', '2250', '--delta', '1e-5'];

describe('shoal privacy', () => {
  it('--json: z = 1.5, q = 0.04, 2,250 rounds, δ = 1e-5 spends ε = 7.32911 (Opacus: 7.32911117143) at order 3.9', async () => {
    const run = await shoalPrivacy([...OPACUS_CASE, '--noise-multiplier', '1.5', '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const answer = JSON.parse(run.stdout) as { epsilon: number; order: number; noiseMultiplier: number };
    expect(Object.keys(answer).sort()).toEqual(['epsilon', 'noiseMultiplier', 'order']);
    expect(answer.epsilon.toPrecision(7)).toBe('7.329111');
    expect(answer.order).toBe(3.9);
    expect(answer.noiseMultiplier).toBe(1.5);
  });

  it('prints ε and the best order as a sentence without --json', async () => {
    const run = await shoalPrivacy([...OPACUS_CASE, '--noise-multiplier', '1.5']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^ε = 7\.32911 .*2250 rounds.*best RDP order 3\.9\n$/);
  });

  it('--target-epsilon finds the noise multiplier: ε = 7.32911117143 needs z = 1.5, and ε(z) ≈ target', async () => {
    const run = await shoalPrivacy([...OPACUS_CASE, '--target-epsilon', '7.32911117143', '--json']);
    expect(run.code).toBe(0);
    const answer = JSON.parse(run.stdout) as { epsilon: number; order: number; noiseMultiplier: number };
    expect(Math.abs(answer.noiseMultiplier - 1.5)).toBeLessThan(1e-6);
    expect(answer.epsilon).toBeLessThanOrEqual(7.32911117143);
    expect(answer.epsilon).toBeGreaterThan(7.32911117143 - 1e-6);
    // And feeding the answer back gives the target.
    const check = await shoalPrivacy([...OPACUS_CASE, '--noise-multiplier', String(answer.noiseMultiplier), '--json']);
    expect(Math.abs((JSON.parse(check.stdout) as { epsilon: number }).epsilon - 7.32911117143)).toBeLessThan(1e-6);
  });

  it.each([
    [['--noise-multiplier', '1', '--rounds', '10', '--delta', '1e-5'], /--sample-rate/],
    [['--sample-rate', '1.5', '--noise-multiplier', '1', '--rounds', '10', '--delta', '1e-5'], /--sample-rate must be/],
    [['--sample-rate', '0.1', '--noise-multiplier', '1', '--rounds', '2.5', '--delta', '1e-5'], /--rounds must be/],
    [['--sample-rate', '0.1', '--noise-multiplier', '1', '--rounds', '10'], /--delta/],
    [['--sample-rate', '0.1', '--noise-multiplier', 'lots', '--rounds', '10', '--delta', '1e-5'], /--noise-multiplier must be/],
    [['--sample-rate', '0.1', '--rounds', '10', '--delta', '1e-5'], /exactly one of --noise-multiplier and --target-epsilon/],
    [['--sample-rate', '0.1', '--noise-multiplier', '1', '--target-epsilon', '2', '--rounds', '10', '--delta', '1e-5'], /exactly one of/],
    [['--sample-rate', '0.1', '--noise-multiplier', '1', '--rounds', '10', '--delta', '1e-5', '--epsilon', '3'], /--epsilon/],
  ])('exits 2 naming the flag for %j', async (args, message) => {
    const run = await shoalPrivacy(args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(message);
  });
});
