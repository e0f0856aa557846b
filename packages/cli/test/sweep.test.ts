// `shoal sweep`, run as users run it: a 2×2 grid of a tiny iris config writes one CSV row per run,
// a rerun after losing one run's summary.json redoes exactly that run, and a bad --grid is one
// `shoal: sweep: …` line with exit status 2. The grid parser and the CSV writer are tested pure.
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ShoalError } from '@shoal/protocol';
import { parseCsv } from '@shoal/sim/report';
import { parseGridFlag, planRuns, runName, toCsv } from '../src/sweep-plan.js';
import { shoal, tempFolder } from './run-cli.js';

const tmp = tempFolder('shoal-sweep-test-');
afterAll(() => tmp.remove());

/** Iris, logreg, 3 clients, 2 rounds: about a second per run. */
const TINY_IRIS = { seed: 1, rounds: 2, model: 'logreg', clientsPerRound: 3, minClients: 2, simulation: { dataset: 'iris', numClients: 3 } };

describe('shoal sweep', () => {
  // Two sweeps of four ~3 s child processes (a simulation and its report): 25 s on an idle 2-core machine, several times that under load.
  it('runs a 2×2 grid into summary.csv, and a rerun redoes only the run whose summary.json is gone', { timeout: 220_000 }, async () => {
    const config = tmp.writeConfig('iris-sweep', TINY_IRIS);
    const out = join(tmp.path, 'sweep');
    // One axis of names with a comma and a quote, to see the CSV quoting and the folder names.
    const args = ['sweep', config, '--grid', 'train.learningRate=[0.05,0.5]', '--grid', 'name=["iris,one","iris \\"two\\""]', '--concurrency', '2', '--out', out, '--target-accuracy', '0.3'];
    const first = await shoal(args, { timeoutMs: 100_000 });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout.match(/\] ran /g)).toHaveLength(4);

    const [header, ...rows] = parseCsv(readFileSync(join(out, 'summary.csv'), 'utf8'));
    expect(header).toEqual(['run', 'train.learningRate', 'name', 'seed', 'final_accuracy', 'best_accuracy', 'rounds_to_target', 'final_epsilon', 'committed_rounds', 'wall_time_s']);
    expect(rows.map((row) => [row[1], row[2], row[3]])).toEqual([
      ['0.05', 'iris,one', '1'],
      ['0.05', 'iris "two"', '1'],
      ['0.5', 'iris,one', '1'],
      ['0.5', 'iris "two"', '1'],
    ]);
    expect(readFileSync(join(out, 'summary.csv'), 'utf8')).toContain(',"iris,one",');
    for (const row of rows) {
      const summary = JSON.parse(readFileSync(join(out, row[0]!, 'summary.json'), 'utf8')) as { finalAccuracy: number; config: { name: string; train: { learningRate: number } } };
      // Each folder holds the run its row describes.
      expect([String(summary.config.train.learningRate), summary.config.name]).toEqual([row[1], row[2]]);
      expect(Number(row[4])).toBe(summary.finalAccuracy);
      expect(Number(row[5])).toBeGreaterThanOrEqual(Number(row[4]));
      expect(['1', '2']).toContain(row[6]); // iris passes 30 % accuracy at once
      expect(row[7]).toBe(''); // no DP
      expect(row[8]).toBe('2');
      expect(Number(row[9])).toBeGreaterThan(0);
      expect(row[0]).toMatch(/^[A-Za-z0-9._+~-]+$/);
    }

    // Interrupted after three runs, as far as the sweep can tell: the third has no summary.json.
    const lost = rows[2]![0]!;
    const kept = rows.filter((row) => row[0] !== lost).map((row) => join(out, row[0]!, 'summary.json'));
    const mtimes = kept.map((path) => statSync(path).mtimeMs);
    rmSync(join(out, lost, 'summary.json'));
    const second = await shoal(args, { timeoutMs: 100_000 });
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(second.stdout.match(/\] ran .*/g)).toEqual([expect.stringContaining(`ran ${lost}:`)]);
    expect(second.stdout.match(/\] skipped /g)).toHaveLength(3);
    expect(second.stdout).toContain('4/4 runs finished (1 ran, 3 already done)');
    expect(kept.map((path) => statSync(path).mtimeMs)).toEqual(mtimes);
    expect(parseCsv(readFileSync(join(out, 'summary.csv'), 'utf8'))).toHaveLength(5);
  });

  it.concurrent.each([
    ['no =', ['--grid', 'rounds'], '--grid expects key.path=[v1,v2,…], got "rounds"'],
    ['not a JSON array', ['--grid', 'rounds=2'], '--grid rounds: "2" is not a JSON array'],
    ['an empty array', ['--grid', 'rounds=[]'], '--grid rounds: the list of values is empty'],
    ['an unknown key', ['--grid', 'train.learnRate=[0.1,0.2]'], '--grid train.learnRate=0.1: unknown key train.learnRate'],
    ['a bad value', ['--grid', 'rounds=[2,0]'], '--grid rounds=0: rounds must be an integer in [1, ∞], got 0'],
    ['a combination the config forbids', ['--grid', 'minClients=[2,3]', '--grid', 'clientsPerRound=[2,3]'], 'run minClients-3__clientsPerRound-2: clientsPerRound (2) must be at least minClients (3)'],
  ])('a bad --grid (%s) exits 2 with shoal: sweep: … and runs nothing', async (_label, grid, message) => {
    const out = join(tmp.path, `never-${_label.replace(/\W+/g, '-')}`);
    const result = await shoal(['sweep', tmp.writeConfig('iris-bad-grid', TINY_IRIS), ...grid, '--out', out]);
    expect(result.stderr).toMatch(/^shoal: sweep: [^\n]+\n$/);
    expect(result.stderr).toContain(message);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(() => statSync(out)).toThrow();
  });
});

describe('--grid parsing', () => {
  /** The ShoalError message of a --grid that must be refused. */
  function refusal(text: string): string {
    try {
      parseGridFlag(text);
    } catch (error) {
      expect(error).toBeInstanceOf(ShoalError);
      expect((error as ShoalError).code).toBe('INVALID_CONFIG');
      return (error as Error).message;
    }
    throw new Error(`--grid ${text} was accepted`);
  }
  const key = fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9.]{0,12}$/);

  it('refuses a flag without a key before =, naming the flag', () => {
    fc.assert(fc.property(fc.string().filter((text) => text.indexOf('=') <= 0), (text) => {
      expect(refusal(text)).toContain(JSON.stringify(text));
    }));
  });

  it('refuses values that are not a JSON array, naming the key and the values', () => {
    const notArray = fc.oneof(fc.jsonValue().filter((value) => !Array.isArray(value)).map((value) => JSON.stringify(value)), fc.string().filter((text) => !text.trimStart().startsWith('[')));
    fc.assert(fc.property(key, notArray, (k, values) => {
      expect(refusal(`${k}=${values}`)).toContain(`--grid ${k}: ${JSON.stringify(values)}`);
    }));
  });

  it('refuses an empty list and a repeated value', () => {
    fc.assert(fc.property(key, (k) => {
      expect(refusal(`${k}=[]`)).toBe(`--grid ${k}: the list of values is empty`);
    }));
    fc.assert(fc.property(key, fc.jsonValue(), (k, value) => {
      expect(refusal(`${k}=${JSON.stringify([value, value])}`)).toContain('appears twice');
    }));
  });

  it('accepts any non-empty array of distinct JSON values, exactly', () => {
    fc.assert(
      fc.property(key, fc.uniqueArray(fc.jsonValue(), { minLength: 1, selector: (v) => JSON.stringify(v) }), (k, values) => {
        expect(parseGridFlag(`${k}=${JSON.stringify(values)}`)).toEqual({ key: k, values: JSON.parse(JSON.stringify(values)) });
      }),
    );
  });

  it('plans the cartesian product, seeds innermost, with distinct safe folder names', () => {
    const runs = planRuns([parseGridFlag('a=[1,2]'), parseGridFlag('b.c=["x/y","x_y"]')], 2);
    expect(runs.map((run) => run.overrides)).toEqual([
      ['a=1', 'b.c="x/y"', 'seed=0'], ['a=1', 'b.c="x/y"', 'seed=1'], ['a=1', 'b.c="x_y"', 'seed=0'], ['a=1', 'b.c="x_y"', 'seed=1'],
      ['a=2', 'b.c="x/y"', 'seed=0'], ['a=2', 'b.c="x/y"', 'seed=1'], ['a=2', 'b.c="x_y"', 'seed=0'], ['a=2', 'b.c="x_y"', 'seed=1'],
    ]);
    expect(new Set(runs.map((run) => run.name)).size).toBe(8);
    expect(runs[2]!.name).toBe('a-1__b.c-x_y__seed-0');
    expect(runs[0]!.name).toMatch(/^a-1__b\.c-x_y__seed-0~[0-9a-f]{8}$/);
    expect(runName([{ key: 'k', value: 'v'.repeat(500) }]).length).toBeLessThanOrEqual(109);
    expect(() => planRuns([parseGridFlag('seed=[1]')], 2)).toThrow('--grid seed and --seeds');
  });
});

describe('summary.csv', () => {
  it('quotes a field with a comma, a quote or a line break, and only those', () => {
    expect(toCsv([['a,b', 'say "hi"', 'two\nlines', 'plain', '']])).toBe('"a,b","say ""hi""","two\nlines",plain,\r\n');
  });
});
