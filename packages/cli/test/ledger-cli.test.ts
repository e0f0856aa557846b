// `shoal simulate` writes a privacy ledger and a model card into its run folder; `shoal ledger
// verify` prints the privacy history or names the wrong entry (exit 1); `shoal card` rebuilds the
// same card from the folder. The real CLI, as a child process, on a few-second digits run with DP.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shoal, tempFolder } from './run-cli.js';

const DP_TINY = {
  name: 'tiny-dp',
  seed: 3,
  rounds: 3,
  model: 'logreg',
  clientsPerRound: 2,
  minClients: 2,
  roundTimeoutMs: 30_000,
  train: { epochs: 1, batchSize: 16, learningRate: 0.1 },
  dp: { mode: 'central', noiseMultiplier: 1.5, clipNorm: 1 },
  sampling: 'poisson',
  simulation: { dataset: 'digits', numClients: 4, examplesPerClient: 40, testExamples: 100 },
};

const folder = tempFolder('shoal-ledger-cli-');
const outDir = join(folder.path, 'run');

beforeAll(async () => {
  const result = await shoal(['simulate', folder.writeConfig('tiny-dp', DP_TINY), '--out', outDir, '--quiet'], { timeoutMs: 120_000 });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
}, 130_000);

afterAll(() => folder.remove());

describe('shoal ledger verify and shoal card', () => {
  it('verifies the run\'s ledger and prints one history line per round, with the ε of metrics.jsonl', async () => {
    const result = await shoal(['ledger', 'verify', outDir]);
    expect(result.code).toBe(0);
    const rounds = result.stdout.split('\n').filter((line) => line.startsWith('round '));
    expect(rounds).toHaveLength(3);
    const metrics = (await readFile(join(outDir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { epsilon: number; status: string });
    rounds.forEach((line, i) => expect(line).toContain(`ε=${Number(metrics[i]!.epsilon.toPrecision(6))} (δ=0.00001)`));
    expect(result.stdout).toContain('no checkpoint beside ledger.jsonl: deletion of trailing entries cannot be detected (no anchor)');
  });

  it('exits 1 naming the entry when a byte of the ledger is changed', async () => {
    const path = join(outDir, 'ledger.jsonl');
    const original = await readFile(path, 'utf8');
    try {
      const lines = original.trimEnd().split('\n');
      lines[2] = lines[2]!.replace('"round":2', '"round":7');
      await writeFile(path, `${lines.join('\n')}\n`);
      const result = await shoal(['ledger', 'verify', path]);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`shoal ledger: ${path}: entry 3 its content does not match its own hash: the entry was edited\n`);
      const card = await shoal(['card', outDir]);
      expect(card.code).toBe(1);
      expect(card.stderr).toContain('entry 3');
    } finally {
      await writeFile(path, original);
    }
  });

  it('wrote the model card at the end of the run, and shoal card rebuilds the same one from the folder', async () => {
    const written = await readFile(join(outDir, 'model-card.json'), 'utf8');
    const card = JSON.parse(written) as { privacy: { epsilon: number; noiseMultipliers: number[] }; model_parameters: { data: { name: string }[] } };
    expect(card.privacy.noiseMultipliers).toEqual([1.5]);
    expect(card.model_parameters.data[0]!.name).toBe('digits');
    expect(await readFile(join(outDir, 'model-card.md'), 'utf8')).toContain('# Model card: tiny-dp');
    const result = await shoal(['card', outDir]);
    expect(result.code).toBe(0);
    expect(await readFile(join(outDir, 'model-card.json'), 'utf8')).toBe(written);
  });

  it('prints usage for --help and refuses a folder without a ledger', async () => {
    expect((await shoal(['ledger', '--help'])).stdout).toContain('Usage: shoal ledger verify DIR');
    expect((await shoal(['card', '--help'])).stdout).toContain('Usage: shoal card DIR');
    const missing = await shoal(['ledger', 'verify', folder.path]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('shoal: ledger: no privacy ledger at');
  });
});
