// faults.stragglers: FedProx's systems heterogeneity. Each selected client straggles with the given
// probability, drawn from (seed, client, round) alone; a straggler trains 1 to E − 1 of E epochs
// and sends that (`partial`), or never sends its update (`drop`).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { straggling } from '../src/faults.js';
import { runSimulation } from '../src/runner.js';

describe('straggling', () => {
  it('draws the same for the same seed, client and round, and manages 1 to E − 1 of E epochs', () => {
    fc.assert(
      fc.property(fc.nat(1000), fc.nat(1000), fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 50 }), (seed, client, round, asked) => {
        const draw = straggling(seed, client, round, 1);
        expect(straggling(seed, client, round, 1).epochs(asked)).toBe(draw.epochs(asked));
        expect(draw.straggles).toBe(true);
        const epochs = draw.epochs(asked);
        if (asked === 1) expect(epochs).toBe(1);
        else expect(epochs >= 1 && epochs <= asked - 1).toBe(true);
        // Not a straggler: the whole work.
        expect(straggling(seed, client, round, 0).epochs(asked)).toBe(asked);
      }),
    );
  });

  it('makes about the given share of (client, round) draws stragglers, each epoch count about equally often', () => {
    const draws = Array.from({ length: 100 }, (_, client) => Array.from({ length: 100 }, (_, round) => straggling(1, client, round + 1, 0.5))).flat();
    const stragglers = draws.filter((draw) => draw.straggles);
    // 10,000 fixed draws: a fair coin lands within 3 % of half (that is 6 standard deviations).
    expect(Math.abs(stragglers.length / draws.length - 0.5)).toBeLessThan(0.03);
    const counts = [1, 2, 3, 4].map((epochs) => stragglers.filter((draw) => draw.epochs(5) === epochs).length / stragglers.length);
    for (const share of counts) expect(Math.abs(share - 0.25)).toBeLessThan(0.03);
  });
});

describe('faults.stragglers in a simulation', () => {
  const folders: string[] = [];
  afterAll(() => Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true }))));

  const base = {
    seed: 2,
    rounds: 3,
    model: 'logreg',
    clientsPerRound: 4,
    minClients: 2,
    train: { epochs: 4, batchSize: 8, learningRate: 0.1 },
    simulation: { dataset: 'iris', numClients: 6, workers: 1 },
  };
  async function run(faults: Record<string, unknown>) {
    const outDir = await mkdtemp(join(tmpdir(), 'shoal-stragglers-'));
    folders.push(outDir);
    return runSimulation(parseConfig({ ...base, name: 'stragglers', faults }), { outDir });
  }

  it('partial: every straggler still sends an update, of less work, so the model differs from a run without stragglers', async () => {
    const none = await run({});
    const all = await run({ stragglers: 1, stragglerPolicy: 'partial' });
    for (const round of all.rounds) expect(round).toMatchObject({ status: 'committed', selected: 4, participants: 4, dropouts: 0 });
    expect(Array.from(all.finalWeights)).not.toEqual(Array.from(none.finalWeights));
  });

  it('drop: no straggler sends its update, so with every client straggling every round aborts', async () => {
    const summary = await run({ stragglers: 1, stragglerPolicy: 'drop' });
    for (const round of summary.rounds) expect(round).toMatchObject({ status: 'aborted', selected: 4, participants: 0, dropouts: 4 });
  });
});
