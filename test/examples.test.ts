// Runs the examples the way a reader would (`npm run example:node`) and checks what they report.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runToCompletion } from '@shoal/testkit';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function runNpmScript(script: string, timeoutMs: number) {
  return runToCompletion('npm', ['run', '--silent', script], { cwd: REPO_ROOT, timeoutMs });
}

describe('examples/node-client', () => {
  it('npm run example:node trains 5 rounds with 3 app processes and exits 0', async () => {
    const { code, stdout, stderr } = await runNpmScript('example:node', 55_000);
    expect(code, stderr).toBe(0);

    const rounds = [...stdout.matchAll(/^round (\d+): (committed|aborted), (\d+)\/(\d+) clients, accuracy ([\d.]+)%, loss ([\d.]+)/gm)];
    expect(rounds.map((m) => [Number(m[1]), m[2], m[3]])).toEqual([1, 2, 3, 4, 5].map((round) => [round, 'committed', '3']));

    // Every app trained and heard that training was complete.
    for (const app of ['app-1', 'app-2', 'app-3']) {
      expect(stdout).toContain(`[${app}] round 1: training locally`);
      expect(stdout).toContain(`[${app}] training complete`);
    }

    const final = /^5\/5 rounds committed; final global model \S+: accuracy ([\d.]+)% \(from ([\d.]+)%\)/m.exec(stdout);
    expect(final, stdout).not.toBeNull();
    const [finalAccuracy, initialAccuracy] = [Number(final![1]), Number(final![2])];
    // The classes overlap (≈85% is the ceiling); a trained model clears 70%, a random one does not.
    expect(finalAccuracy).toBeGreaterThan(70);
    expect(finalAccuracy).toBeGreaterThan(initialAccuracy);
    // Training made progress across rounds, not only in round 1.
    const losses = rounds.map((m) => Number(m[6]));
    expect(losses.at(-1)!).toBeLessThan(losses[0]!);
  });
});
