import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { runSimulation } from '../src/runner.js';

const IRIS = {
  rounds: 30,
  model: 'logreg',
  clientsPerRound: 4,
  minClients: 3,
  train: { epochs: 1, batchSize: 8, learningRate: 0.05 },
  simulation: { dataset: 'iris', numClients: 6 },
};

describe('targetAccuracy', () => {
  it('stops after the first committed round whose test accuracy reaches it, and says so in summary.json', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'shoal-target-'));
    const target = 0.7; // reached in round 8 at this seed (iris logreg climbs from 0.5)
    const summary = await runSimulation(parseConfig({ ...IRIS, name: 'iris-target', targetAccuracy: target }), { outDir });

    expect(summary.stoppedBy).toBe('target');
    const accuracies = summary.rounds.map((round) => round.accuracy ?? 0);
    // It stopped early, at the first round at or above the target, and not before.
    expect(summary.rounds.length).toBeLessThan(IRIS.rounds);
    expect(accuracies.at(-1)).toBeGreaterThanOrEqual(target);
    expect(accuracies.slice(0, -1).every((accuracy) => accuracy < target)).toBe(true);
    const written = JSON.parse(await readFile(join(outDir, 'summary.json'), 'utf8'));
    expect(written).toMatchObject({ stoppedBy: 'target', rounds: summary.rounds.length });
  });

  it('is a number in (0, 1]', () => {
    for (const bad of [0, 1.5, -0.1, '0.9']) {
      expect(() => parseConfig({ ...IRIS, targetAccuracy: bad })).toThrow(/targetAccuracy must be/);
    }
    expect(parseConfig({ ...IRIS, targetAccuracy: 1 }).targetAccuracy).toBe(1);
  });
});
