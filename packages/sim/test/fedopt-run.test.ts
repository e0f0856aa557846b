import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { runSimulation } from '../src/runner.js';

// The iris run of runner.test.ts, once per strategy: the adaptive strategies train through the
// whole production path (clients, transport, coordinator) as FedAvg does.
async function irisAccuracy(strategy: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<number> {
  return (await irisRun(strategy, extra)).finalAccuracy ?? 0;
}

async function irisRun(strategy: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const outDir = await mkdtemp(join(tmpdir(), 'shoal-fedopt-'));
  const config = parseConfig({
    name: `iris-${String(strategy['name'])}`,
    rounds: 6,
    model: 'mlp',
    clientsPerRound: 4,
    minClients: 3,
    train: { epochs: 5, batchSize: 8, learningRate: 0.1 },
    strategy,
    simulation: { dataset: 'iris', numClients: 6 },
    ...extra,
  });
  return runSimulation(config, { outDir });
}

describe('adaptive server optimisers in a simulation', () => {
  it('fedadam trains iris to an accuracy comparable to fedavg', async () => {
    const fedavg = await irisAccuracy({ name: 'fedavg' });
    // η = 0.05 rather than the default 0.01: six rounds are few for steps of about η per weight.
    const fedadam = await irisAccuracy({ name: 'fedadam', serverLearningRate: 0.05 });
    expect(fedavg).toBeGreaterThan(0.8);
    expect(fedadam).toBeGreaterThan(0.8);
    expect(fedadam).toBeGreaterThan(fedavg - 0.1);
  }, 120_000);

  it('fedyogi runs under secure aggregation, consuming only the masked sum', async () => {
    const fedyogi = await irisAccuracy({ name: 'fedyogi', serverLearningRate: 0.05 }, { secagg: { mode: 'secagg', threshold: 3, maxDropout: 0.25 } });
    expect(fedyogi).toBeGreaterThan(0.8);
  }, 120_000);

  it('fedadagrad runs with secure aggregation and central DP: it steps on the noised sum', async () => {
    const secagg = { mode: 'secagg', threshold: 3, maxDropout: 0.25 };
    const run = await irisRun({ name: 'fedadagrad', serverLearningRate: 0.05 }, { secagg, dp: { mode: 'central', noiseMultiplier: 0.1, clipNorm: 5 } });
    // The noise is drawn from the CSPRNG, so no accuracy is exact: every round commits a noised
    // step (noise std z·C = 0.5 on the sum), and the model stays well above chance (1/3).
    expect(run.rounds.map((round) => round.status)).toEqual(Array(6).fill('committed'));
    for (const round of run.rounds) expect(round.noiseStd).toBeCloseTo(0.5);
    expect(run.finalAccuracy).toBeGreaterThan(0.6);
  }, 120_000);
});
