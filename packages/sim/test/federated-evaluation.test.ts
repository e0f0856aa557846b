// Federated evaluation in a simulation: every virtual client holds out part of its share, the
// coordinator asks them after committed rounds, and metrics.jsonl records the distribution.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { splitHeldOut } from '../src/held-out.js';
import { runSimulation } from '../src/runner.js';

describe('splitHeldOut', () => {
  it('holds out ⌊fraction · n⌋ examples, keeping both parts in the original order', () => {
    const indices = Int32Array.from([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    const { train, heldOut } = splitHeldOut(indices, 0.2, 7);
    expect(heldOut.length).toBe(2);
    expect(train.length).toBe(8);
    expect([...train, ...heldOut].sort((a, b) => a - b)).toEqual([...indices]);
    expect([...heldOut]).toEqual([...heldOut].sort((a, b) => a - b));
    expect(splitHeldOut(indices, 0.2, 7)).toEqual({ train, heldOut });
  });

  it('keeps at least one example on each side when it can, and holds out nothing from a single example', () => {
    expect(splitHeldOut(Int32Array.from([5, 6]), 0.01, 1).heldOut.length).toBe(1);
    expect(splitHeldOut(Int32Array.from([5, 6]), 0.99, 1).train.length).toBe(1);
    expect(splitHeldOut(Int32Array.from([5]), 0.5, 1)).toEqual({ train: Int32Array.from([5]), heldOut: new Int32Array(0) });
    expect(() => splitHeldOut(Int32Array.from([5]), 1, 1)).toThrow(RangeError);
  });

  it('property: a disjoint cover of the indices, of the documented sizes', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat(10_000), { maxLength: 60 }), fc.double({ min: 0.01, max: 0.99, noNaN: true }), fc.nat(), (values, fraction, seed) => {
        const { train, heldOut } = splitHeldOut(Int32Array.from(values), fraction, seed);
        expect([...train, ...heldOut].sort((a, b) => a - b)).toEqual([...values].sort((a, b) => a - b));
        const n = values.length;
        expect(heldOut.length).toBe(n < 2 ? 0 : Math.min(n - 1, Math.max(1, Math.floor(fraction * n))));
      }),
    );
  });
});

describe('a simulation with federated evaluation', () => {
  it('writes each committed round\'s federatedEvaluation to metrics.jsonl', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'shoal-federated-evaluation-'));
    const config = parseConfig({
      name: 'iris-federated-evaluation',
      rounds: 2,
      model: 'mlp',
      clientsPerRound: 4,
      minClients: 3,
      train: { epochs: 2, batchSize: 8, learningRate: 0.1 },
      simulation: { dataset: 'iris', numClients: 6, heldOut: 0.25 },
      federatedEvaluation: { every: 1 },
    });
    const summary = await runSimulation(config, { outDir });
    const lines = (await readFile(join(outDir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    for (const [i, line] of lines.entries()) {
      expect(line['status']).toBe('committed');
      const federated = line['federatedEvaluation'] as { clients: number; examples: number; accuracy: Record<string, number>; loss: Record<string, number> };
      // All six clients are idle after the round and hold out ⌊0.25 · n⌋ of their ~20 examples.
      expect(federated.clients).toBe(6);
      expect(federated.examples).toBeGreaterThanOrEqual(6 * 4);
      const { min, worst10, mean, best10, max } = federated.accuracy;
      expect(min).toBeLessThanOrEqual(worst10!);
      expect(worst10).toBeLessThanOrEqual(mean!);
      expect(mean).toBeLessThanOrEqual(best10!);
      expect(best10).toBeLessThanOrEqual(max!);
      expect(federated.loss.mean).toBeGreaterThan(0);
      expect(line).toEqual(JSON.parse(JSON.stringify(summary.rounds[i])));
    }
  }, 120_000);
});
