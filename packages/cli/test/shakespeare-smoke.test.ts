// Smoke test of simulations/shakespeare.json: the config as shipped, cut down with --set to one
// round of two clients, through the real CLI. The full run's wall time and accuracy are in
// docs/configuration.md (section Shakespeare).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shoal, tempFolder } from './run-cli.js';

const folder = tempFolder('shoal-shakespeare-');
afterAll(() => folder.remove());

describe('simulations/shakespeare.json', () => {
  it('trains char-gru on the natural speaker partition for a round (--set overrides)', async () => {
    const out = join(folder.path, 'run');
    const sets = ['rounds=1', 'clientsPerRound=2', 'minClients=2', 'simulation.numClients=3', 'simulation.examplesPerClient=32', 'simulation.testExamples=64', 'train.epochs=1'];
    const result = await shoal(['simulate', join('simulations', 'shakespeare.json'), '--out', out, '--quiet', ...sets.flatMap((set) => ['--set', set])], { timeoutMs: 240_000 });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);

    const [metrics] = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(metrics).toMatchObject({ round: 1, status: 'committed', participants: 2 });
    expect(Number.isFinite(metrics!['loss'])).toBe(true);

    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { partition: { kind: string; sizes: number[]; owners: string[] } };
    // The three speakers who say the most, 32 windows each.
    expect(summary.partition).toMatchObject({ kind: 'natural', sizes: [32, 32, 32], owners: ['GLOUCESTER', 'DUKE VINCENTIO', 'KING RICHARD II'] });
  }, 300_000);
});
