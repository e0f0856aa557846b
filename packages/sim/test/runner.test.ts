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

  it('makes every client vanish at the consistency check with faults.stage confirm: the round aborts in the confirm stage', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'shoal-sim-'));
    const config = parseConfig({
      name: 'confirm-faults',
      rounds: 1,
      model: 'logreg',
      clientsPerRound: 4,
      minClients: 3,
      train: { epochs: 1, batchSize: 8, learningRate: 0.1 },
      secagg: { mode: 'secagg', threshold: 3, maxDropout: 0.25 },
      faults: { dropout: 1, stage: 'confirm' },
      simulation: { dataset: 'iris', numClients: 4 },
    });
    const rounds: { status: string; reason?: string; secagg?: { dropouts: Record<string, number> } }[] = [];
    await runSimulation(config, { outDir, onRound: (m) => rounds.push(m) });

    // Every masked input arrived; then every client closed instead of confirming the survivor set.
    expect(rounds).toHaveLength(1);
    expect(rounds[0]).toMatchObject({ status: 'aborted', secagg: { dropouts: { advertise: 0, share: 0, masked: 0, confirm: 4, unmask: 0 } } });
    expect(rounds[0]!.reason).toBe('secure aggregation aborted in the confirm stage: 0 of 4 clients answered, fewer than the 3 needed');
  });
});
