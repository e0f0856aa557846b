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
    // The string "iid" still splits 120 iris training examples into 6 equal shares, and says so.
    expect(written.partition).toMatchObject({ kind: 'iid', params: {}, sizes: [20, 20, 20, 20, 20, 20], unused: 0 });
    expect(written.partition.labelHistograms.flat().reduce((a: number, b: number) => a + b, 0)).toBe(120);
    expect(summary.partition).toEqual(written.partition);
  });

  it('splits by a partition object and writes its report to summary.json: shards give each client one or two classes', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'shoal-sim-'));
    const config = parseConfig({
      name: 'iris-shards',
      rounds: 1,
      model: 'logreg',
      clientsPerRound: 3,
      minClients: 3,
      train: { epochs: 1, batchSize: 8, learningRate: 0.1 },
      simulation: { dataset: 'iris', numClients: 6, partition: { kind: 'shards', shardsPerClient: 2 } },
    });
    const summary = await runSimulation(config, { outDir });
    expect(summary.rounds[0]).toMatchObject({ status: 'committed' });
    const written = JSON.parse(await readFile(join(outDir, 'summary.json'), 'utf8'));
    // 120 examples (40 per class), 12 shards of 10: every shard one class, each client 2 shards.
    expect(written.partition).toMatchObject({ kind: 'shards', params: { shardsPerClient: 2 }, sizes: [20, 20, 20, 20, 20, 20], unused: 0 });
    for (const histogram of written.partition.labelHistograms as number[][]) {
      expect(histogram.filter((count) => count > 0).length).toBeLessThanOrEqual(2);
      expect(histogram.every((count) => count % 10 === 0)).toBe(true);
    }
  });

  it('refuses a split the data does not allow before any round runs', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'shoal-sim-'));
    const config = parseConfig({ rounds: 1, model: 'logreg', simulation: { dataset: 'iris', numClients: 80, partition: { kind: 'shards' } } });
    await expect(runSimulation(config, { outDir })).rejects.toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringContaining('160 shards, more than the 120 examples') });
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
