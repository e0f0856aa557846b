import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { datasetsDir } from '@shoal/datasets';
import { createSeededRandom } from '@shoal/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectShoalError } from '@shoal/testkit';
import { loadDataset, stratifiedSplit, subset, take } from '../src/index.js';
import type { Dataset, TrainTest } from '../src/index.js';

/** The files @shoal/datasets ships (packages/datasets/data/). */
const REPO_DATA_DIR = datasetsDir;


function classCounts(ds: Dataset): number[] {
  const counts = new Array<number>(ds.numClasses).fill(0);
  for (const label of ds.y) counts[label]! += 1;
  return counts;
}

function range(values: Float32Array): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (value < min) min = value;
    if (value > max) max = value;
  }
  return { min, max };
}

describe('bundled data folder', () => {
  it('matches SHA256SUMS, and every file stays under 4 MiB', () => {
    const lines = readFileSync(join(REPO_DATA_DIR, 'SHA256SUMS'), 'utf8').trim().split('\n');
    expect(lines.length).toBe(9);
    for (const line of lines) {
      const [digest, file] = line.split(/\s+/) as [string, string];
      const bytes = readFileSync(join(REPO_DATA_DIR, file));
      expect(createHash('sha256').update(bytes).digest('hex'), file).toBe(digest);
    }
    for (const folder of ['mnist', 'sklearn', 'shakespeare']) {
      for (const file of readdirSync(join(REPO_DATA_DIR, folder))) {
        expect(statSync(join(REPO_DATA_DIR, folder, file)).size, file).toBeLessThan(4 * 1024 * 1024);
      }
    }
  });
});

describe('loadDataset: mnist', () => {
  let mnist: TrainTest;
  // No time limit here beyond vitest's own: a load-time budget is a benchmark's claim, not a
  // test's (a loaded 2-core machine would fail it by chance). The tests below check what it loads.
  beforeAll(() => {
    mnist = loadDataset('mnist');
  });

  it('has MNIST\'s own 60,000 / 10,000 split with 28×28×1 images', () => {
    for (const [ds, count] of [[mnist.train, 60_000], [mnist.test, 10_000]] as const) {
      expect(ds.name).toBe('mnist');
      expect(ds.length).toBe(count);
      expect(ds.y.length).toBe(count);
      expect(ds.featureShape).toEqual([28, 28, 1]);
      expect(ds.x.length).toBe(count * 784);
      expect(ds.numClasses).toBe(10);
    }
  });

  it('keeps the original order: the first training label is 5, the first test label is 7', () => {
    expect(mnist.train.y[0]).toBe(5);
    expect(mnist.test.y[0]).toBe(7);
  });

  it('scales pixels to [0, 1] in steps of 1/255, using the full range', () => {
    for (const ds of [mnist.train, mnist.test]) {
      expect(range(ds.x)).toEqual({ min: 0, max: 1 });
      // Spot-check that values are byte / 255 (a stride keeps the check fast).
      let offGrid = 0;
      for (let i = 0; i < ds.x.length; i += 997) {
        const byte = ds.x[i]! * 255;
        if (Math.abs(byte - Math.round(byte)) > 1e-3) offGrid++;
      }
      expect(offGrid).toBe(0);
    }
  });

  it('has every digit among the labels, in plausible proportions', () => {
    for (const ds of [mnist.train, mnist.test]) {
      for (const count of classCounts(ds)) expect(count).toBeGreaterThan(ds.length * 0.08);
    }
  });
});

describe('loadDataset: digits', () => {
  it('holds 1,797 examples of 64 values scaled to [0, 1], split 80/20 per class', () => {
    const { train, test } = loadDataset('digits');
    expect(train.length + test.length).toBe(1_797);
    expect(train.featureShape).toEqual([64]);
    expect(train.x.length).toBe(train.length * 64);
    expect(train.numClasses).toBe(10);
    expect(range(train.x)).toEqual({ min: 0, max: 1 });
    expect(train.x.every((value) => Number.isInteger(value * 16))).toBe(true);
    const all = classCounts(train).map((count, label) => count + classCounts(test)[label]!);
    classCounts(test).forEach((count, label) => expect(count).toBe(Math.round(all[label]! * 0.2)));
  });

  it('is deterministic per seed and differs across seeds', () => {
    const a = loadDataset('digits', { seed: 7 });
    const b = loadDataset('digits', { seed: 7 });
    const c = loadDataset('digits', { seed: 8 });
    expect(a.test.y).toEqual(b.test.y);
    expect(a.test.x).toEqual(b.test.x);
    expect(a.test.y).not.toEqual(c.test.y);
  });
});

describe('loadDataset: iris', () => {
  it('holds 150 examples of 4 features and 3 classes, 10 of each class held out by default', () => {
    const { train, test } = loadDataset('iris');
    expect(train.length).toBe(120);
    expect(test.length).toBe(30);
    expect(train.featureShape).toEqual([4]);
    expect(train.numClasses).toBe(3);
    expect(classCounts(test)).toEqual([10, 10, 10]);
    expect(classCounts(train)).toEqual([40, 40, 40]);
  });

  it('standardises features with the train split\'s statistics: train mean ≈ 0, std ≈ 1', () => {
    const { train, test } = loadDataset('iris', { seed: 3 });
    for (let feature = 0; feature < 4; feature++) {
      const column = Array.from({ length: train.length }, (_, i) => train.x[i * 4 + feature]!);
      const mean = column.reduce((a, b) => a + b, 0) / column.length;
      const variance = column.reduce((a, b) => a + (b - mean) ** 2, 0) / column.length;
      expect(Math.abs(mean)).toBeLessThan(1e-5);
      expect(Math.abs(variance - 1)).toBeLessThan(1e-5);
    }
    // The test split uses the train statistics, so its mean is small but not exactly zero.
    let testSum = 0;
    for (let i = 0; i < test.length; i++) testSum += test.x[i * 4]!;
    expect(Math.abs(testSum / test.length)).toBeGreaterThan(1e-6);
    expect(Math.abs(testSum / test.length)).toBeLessThan(1);
  });

  it('honours testFraction', () => {
    const { train, test } = loadDataset('iris', { testFraction: 0.5 });
    expect(classCounts(test)).toEqual([25, 25, 25]);
    expect(train.length).toBe(75);
  });
});

describe('loadDataset: errors', () => {
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'shoal-datasets-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('names a missing data folder', () => {
    const missing = join(scratch, 'no-such-folder');
    for (const name of ['mnist', 'digits', 'iris'] as const) {
      expectShoalError(() => loadDataset(name, { dataDir: missing }), 'INVALID_DATA', /no-such-folder does not exist/);
    }
  });

  it('names a missing file', () => {
    const dir = join(scratch, 'empty');
    mkdirSync(join(dir, 'mnist'), { recursive: true });
    expectShoalError(() => loadDataset('iris', { dataDir: dir }), 'INVALID_DATA', /cannot read dataset file .*iris\.csv/);
    expectShoalError(() => loadDataset('mnist', { dataDir: dir }), 'INVALID_DATA', /train-images-idx3-ubyte\.gz\.part0/);
  });

  it('names a gap in the MNIST parts', () => {
    const dir = join(scratch, 'gap');
    mkdirSync(join(dir, 'mnist'), { recursive: true });
    copyFileSync(join(REPO_DATA_DIR, 'mnist', 'train-images-idx3-ubyte.gz.part0'), join(dir, 'mnist', 'train-images-idx3-ubyte.gz.part0'));
    copyFileSync(join(REPO_DATA_DIR, 'mnist', 'train-images-idx3-ubyte.gz.part2'), join(dir, 'mnist', 'train-images-idx3-ubyte.gz.part2'));
    expectShoalError(() => loadDataset('mnist', { dataDir: dir }), 'INVALID_DATA', /part1 is missing/);
  });

  it('names a file that is not gzip, and a malformed CSV', () => {
    const dir = join(scratch, 'corrupt');
    mkdirSync(join(dir, 'sklearn'), { recursive: true });
    writeFileSync(join(dir, 'sklearn', 'digits.csv.gz'), 'not gzip at all');
    writeFileSync(join(dir, 'sklearn', 'iris.csv'), '2,4,a,b\n1,2,3,4,0\n1,2,3,0\n');
    expectShoalError(() => loadDataset('digits', { dataDir: dir }), 'INVALID_DATA', /digits\.csv\.gz is not valid gzip/);
    expectShoalError(() => loadDataset('iris', { dataDir: dir }), 'INVALID_DATA', /iris\.csv: wrong column count at line 3/);
  });

  it('rejects an unknown name and a testFraction outside (0, 1)', () => {
    expectShoalError(() => loadDataset('cifar' as 'mnist'), 'INVALID_CONFIG', /unknown dataset "cifar"/);
    for (const testFraction of [0, 1, -0.1, Number.NaN]) {
      expectShoalError(() => loadDataset('iris', { testFraction }), 'INVALID_CONFIG', /testFraction/);
    }
    expectShoalError(() => loadDataset('iris', { testFraction: 0.001 }), 'INVALID_CONFIG', /test split of iris empty/);
  });
});

describe('stratifiedSplit, subset, take', () => {
  const labels = Int32Array.from({ length: 103 }, (_, i) => i % 3);

  it('splits every index into exactly one side, per class, deterministically', () => {
    const split = stratifiedSplit(labels, 3, 0.25, createSeededRandom(1));
    const all = [...split.trainIndices, ...split.testIndices].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 103 }, (_, i) => i));
    const testPerClass = [0, 0, 0];
    for (const index of split.testIndices) testPerClass[labels[index]!]! += 1;
    expect(testPerClass).toEqual([Math.round(35 * 0.25), Math.round(34 * 0.25), Math.round(34 * 0.25)]);
    expect(stratifiedSplit(labels, 3, 0.25, createSeededRandom(1))).toEqual(split);
    expect(() => stratifiedSplit([0, 3], 3, 0.5, createSeededRandom(1))).toThrow(RangeError);
  });

  const ds: Dataset = {
    name: 'toy',
    x: Float32Array.from({ length: 10 }, (_, i) => i),
    y: Int32Array.from([0, 1, 0, 1, 0]),
    featureShape: [2],
    numClasses: 2,
    length: 5,
  };

  it('subset copies the chosen rows in order', () => {
    const picked = subset(ds, [4, 1, 1]);
    expect(picked.length).toBe(3);
    expect(Array.from(picked.x)).toEqual([8, 9, 2, 3, 2, 3]);
    expect(Array.from(picked.y)).toEqual([0, 1, 1]);
    expect(picked.featureShape).toEqual([2]);
    picked.x[0] = -1;
    expect(ds.x[8]).toBe(8);
    expect(() => subset(ds, [5])).toThrow(RangeError);
    expect(() => subset(ds, [-1])).toThrow(RangeError);
  });

  it('take returns the first n rows, all of them when n exceeds the length', () => {
    const first = take(ds, 2);
    expect(first.length).toBe(2);
    expect(Array.from(first.x)).toEqual([0, 1, 2, 3]);
    expect(Array.from(first.y)).toEqual([0, 1]);
    expect(take(ds, 99).length).toBe(5);
    expect(take(ds, 0).length).toBe(0);
    expect(() => take(ds, -1)).toThrow(RangeError);
    expect(() => take(ds, 1.5)).toThrow(RangeError);
  });
});
