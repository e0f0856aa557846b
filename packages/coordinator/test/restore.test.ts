import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fedAvg, fedAvgM } from '@shoal/strategy';
import { writeCheckpoint } from '../src/checkpoint.js';
import { Coordinator } from '../src/coordinator.js';
import { builtinInitialModel } from '../src/model-init.js';

const model = builtinInitialModel('logreg', [4], 3, 1);
const train = { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;

async function dirWithCheckpoint(strategyName: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-restore-'));
  await writeCheckpoint(dir, {
    formatVersion: 1,
    runId: 'feedfacecafe',
    round: 4,
    modelVersion: 'feedfacecafe:3',
    weights: model.weights.map((w) => w + 1),
    strategyName,
    strategyState: {},
  });
  return dir;
}

describe('Coordinator.restore', () => {
  it('resumes the run id, weights and round numbering from the newest checkpoint', async () => {
    const dir = await dirWithCheckpoint('fedavg');
    const coordinator = new Coordinator({ model, tokens: ['t'], rounds: 10, train, strategy: fedAvg(), checkpointDir: dir });
    expect(await coordinator.restore()).toBe(true);
    expect(coordinator.modelVersion).toBe('feedfacecafe:3');
    expect(coordinator.globalWeights()).toEqual(model.weights.map((w) => w + 1));
  });

  it('refuses a checkpoint written by another strategy, naming both', async () => {
    const dir = await dirWithCheckpoint('fedavg');
    const coordinator = new Coordinator({ model, tokens: ['t'], rounds: 10, train, strategy: fedAvgM(), checkpointDir: dir });
    await expect(coordinator.restore()).rejects.toThrow(/strategy fedavg, not fedavgm/);
  });

  it('starts fresh when the folder has no checkpoint', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-restore-'));
    const coordinator = new Coordinator({ model, tokens: ['t'], rounds: 10, train, strategy: fedAvg(), checkpointDir: dir });
    expect(await coordinator.restore()).toBe(false);
    expect(coordinator.modelVersion.endsWith(':0')).toBe(true);
  });
});
