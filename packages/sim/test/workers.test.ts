import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { reproducibleMetrics, runSimulation } from '../src/runner.js';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const folders: string[] = [];
afterAll(async () => {
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

/** Runs `raw` with `workers` threads; returns its metrics.jsonl lines without timings. */
async function metricsWith(raw: Record<string, unknown>, workers: number) {
  const outDir = await mkdtemp(join(tmpdir(), 'shoal-workers-'));
  folders.push(outDir);
  const simulation = raw['simulation'] as Record<string, unknown>;
  const summary = await runSimulation(parseConfig({ ...raw, simulation: { ...simulation, workers } }), { outDir });
  const text = await readFile(join(outDir, 'metrics.jsonl'), 'utf8');
  return { summary, lines: text.trim().split('\n').map((line) => reproducibleMetrics(JSON.parse(line))) };
}

describe('simulation.workers', () => {
  it('plain FedAvg with dropouts: 2 workers write the metrics 1 worker writes', async () => {
    const raw = {
      name: 'workers-plain',
      seed: 7,
      rounds: 5,
      model: 'mlp',
      clientsPerRound: 4,
      minClients: 2,
      train: { epochs: 1, batchSize: 16, learningRate: 0.1 },
      faults: { dropout: 0.3 },
      simulation: { dataset: 'digits', numClients: 8, examplesPerClient: 60, testExamples: 200 },
    };
    const one = await metricsWith(raw, 1);
    const two = await metricsWith(raw, 2);
    expect(one.summary.workers).toBe(1);
    expect(two.summary.workers).toBe(2);
    expect(one.lines).toHaveLength(5);
    // The dropouts happened, and rounds still committed: the comparison covers both.
    expect(one.lines.some((line) => (line['dropouts'] as number) > 0)).toBe(true);
    expect(one.lines.some((line) => line['status'] === 'committed')).toBe(true);
    expect(two.lines).toEqual(one.lines);
  });

  it('SecAgg+ with dropouts: 2 workers write the metrics 1 worker writes', async () => {
    const raw = {
      name: 'workers-secagg',
      seed: 3,
      rounds: 4,
      model: 'logreg',
      clientsPerRound: 6,
      minClients: 4,
      train: { epochs: 1, batchSize: 16, learningRate: 0.1 },
      secagg: { mode: 'secagg+', degree: 5, threshold: 4, maxDropout: 0.2, shareMetrics: true },
      faults: { dropout: 0.1 },
      simulation: { dataset: 'digits', numClients: 8, examplesPerClient: 60, testExamples: 200 },
    };
    const one = await metricsWith(raw, 1);
    const two = await metricsWith(raw, 2);
    expect(one.lines.some((line) => Object.values((line['secagg'] as { dropouts: Record<string, number> }).dropouts).some((count) => count > 0))).toBe(true);
    // Exact, model-derived numbers included: virtual clients seed their encoding's stochastic rounding (`roundingSeed`).
    expect(two.lines).toEqual(one.lines);
  });

  it('fails the run naming the worker when a worker crashes, and leaves no thread behind', async () => {
    // In a child process, so "no thread behind" is observable: the process exits by itself.
    const script = `
      import { parseConfig, runSimulation } from '@shoal/sim';
      const config = parseConfig({ rounds: 2, model: 'logreg', clientsPerRound: 2, simulation: { dataset: 'iris', numClients: 4, workers: 2 } });
      // A 4 MiB heap cannot even load tfjs: each worker dies of it at start-up.
      await runSimulation(config, { outDir: process.argv[1], workerHeapMb: 4 }).then(
        () => console.log('no failure'),
        (error) => { console.log(error.message); process.exitCode = 3; },
      );`;
    const outDir = await mkdtemp(join(tmpdir(), 'shoal-workers-crash-'));
    folders.push(outDir);
    const child = spawn(process.execPath, ['--conditions=shoal-source', '--import', 'tsx', '--input-type=module', '-e', script, outDir], { cwd: REPO_ROOT });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(output).toMatch(/simulation worker [12] of 2 \(clients [0-9, ]+\) failed: .*(memory|heap)/i);
    expect(code).toBe(3);
  });
});

