/**
 * Secure aggregation must not cost accuracy: the quickstart simulation (MNIST, 2NN, 20 clients,
 * 10 per round, 10 rounds) with SecAgg+ ends within 0.5 points of the same run without it. Local
 * training is seeded, so the two runs differ only by the fixed-point encoding of the updates.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig, runSimulation } from '@shoal/sim';

const REPO = join(import.meta.dirname, '..', '..');

async function quickstart(overrides: Record<string, unknown>) {
  const raw = JSON.parse(await readFile(join(REPO, 'simulations', 'quickstart.json'), 'utf8')) as Record<string, unknown>;
  const outDir = await mkdtemp(join(tmpdir(), 'shoal-secagg-mnist-'));
  return runSimulation(parseConfig({ ...raw, ...overrides }), { outDir });
}

describe('SecAgg+ on MNIST', () => {
  it('reaches the accuracy of plain FedAvg within 0.5 points after 10 rounds', async () => {
    const plain = await quickstart({});
    const secure = await quickstart({ secagg: { mode: 'secagg+' } });
    expect(plain.rounds.every((r) => r.status === 'committed')).toBe(true);
    expect(secure.rounds.every((r) => r.status === 'committed' && r.secagg?.mode === 'secagg+')).toBe(true);
    expect(plain.finalAccuracy).toBeGreaterThan(0.9);
    expect(Math.abs(secure.finalAccuracy! - plain.finalAccuracy!)).toBeLessThanOrEqual(0.005);
  }, 240_000);
});
