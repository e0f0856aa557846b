import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { runSimulation } from '../src/runner.js';

describe('runSimulation', () => {
  it('trains iris with real clients over the in-memory transport and writes one metrics line per round', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'shoal-sim-'));
    const config = parseConfig({
      name: 'iris-test',
      rounds: 4,
      model: 'mlp',
      clientsPerRound: 4,
      minClients: 3,
      train: { epochs: 5, batchSize: 8, learningRate: 0.1 },
      simulation: { dataset: 'iris', numClients: 6 },
    });
    const seen: number[] = [];
    const summary = await runSimulation(config, { outDir, onRound: (m) => seen.push(m.round) });

    expect(seen).toEqual([1, 2, 3, 4]);
    const lines = (await readFile(join(outDir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(4);
    for (const line of lines) {
      expect(line).toMatchObject({ status: 'committed', selected: 4, participants: 4, dropouts: 0 });
      for (const key of ['accuracy', 'loss', 'bytesUp', 'bytesDown', 'durationMs']) expect(typeof line[key]).toBe('number');
    }
    // Weights go down once per client per round; the update comes back up.
    expect(lines[0].bytesUp).toBeGreaterThan(0);
    expect(summary.finalAccuracy).toBeGreaterThan(0.8);
    const written = JSON.parse(await readFile(join(outDir, 'summary.json'), 'utf8'));
    expect(written).toMatchObject({ name: 'iris-test', rounds: 4 });
  });
});
