import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSeededRandom } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { loadDataset } from '../src/datasets.js';
import { runSimulation } from '../src/runner.js';
import { generateSynthetic, syntheticDeviceSize } from '../src/synthetic.js';

/** Mean over devices of the entropy (nats) of the device's train label distribution. */
function meanLabelEntropy(data: ReturnType<typeof generateSynthetic>): number {
  const entropies = data.devices.map((indices) => {
    const counts = new Array<number>(data.train.numClasses).fill(0);
    for (const index of indices) counts[data.train.y[index]!]! += 1;
    return -counts.reduce((sum, count) => (count > 0 ? sum + (count / indices.length) * Math.log(count / indices.length) : sum), 0);
  });
  return entropies.reduce((a, b) => a + b, 0) / entropies.length;
}

describe('generateSynthetic: FedProx Synthetic(α, β)', () => {
  const data = generateSynthetic({ seed: 0 });

  it('is the same for the same seed and differs for another', () => {
    const again = generateSynthetic({ seed: 0 });
    expect(Buffer.from(again.train.x.buffer).equals(Buffer.from(data.train.x.buffer))).toBe(true);
    expect(again.train.y).toEqual(data.train.y);
    expect(again.test.y).toEqual(data.test.y);
    expect(generateSynthetic({ seed: 1 }).sizes).not.toEqual(data.sizes);
  });

  it('has 60 features, 10 classes and 30 devices by default, a 90/10 split per device', () => {
    expect(data.train.featureShape).toEqual([60]);
    expect(data.train.numClasses).toBe(10);
    expect(data.devices).toHaveLength(30);
    expect(data.testDevices).toHaveLength(30);
    expect(data.train.x.length).toBe(data.train.length * 60);
    data.sizes.forEach((size, k) => {
      expect(data.devices[k]!.length).toBe(Math.floor(0.9 * size));
      expect(data.testDevices[k]!.length).toBe(size - Math.floor(0.9 * size));
    });
    expect(data.train.length + data.test.length).toBe(data.sizes.reduce((a, b) => a + b, 0));
    // The devices' train shares are contiguous and cover the train split in device order.
    expect(data.devices.flatMap((indices) => [...indices])).toEqual(Array.from({ length: data.train.length }, (_, i) => i));
    for (const label of [...data.train.y, ...data.test.y]) expect(label >= 0 && label < 10).toBe(true);
  });

  it('draws device sizes as ⌊exp(4 + 2z)⌋ + 50, first in the seed stream', () => {
    const random = createSeededRandom(0);
    expect(data.sizes).toEqual(Array.from({ length: 30 }, () => syntheticDeviceSize(random)));
    const many = Array.from({ length: 2000 }, (_, i) => syntheticDeviceSize(createSeededRandom(i)));
    expect(Math.min(...many)).toBeGreaterThanOrEqual(50);
    // The median of ⌊exp(4 + 2z)⌋ + 50 is ⌊e^4⌋ + 50 = 104.
    const median = [...many].sort((a, b) => a - b)[1000]!;
    expect(median).toBeGreaterThan(94);
    expect(median).toBeLessThan(116);
  });

  it('shows Σ_jj = j^−1.2 in the per-feature variances within a device', () => {
    // Within device 0 the mean v_0 is fixed, so each feature's sample variance estimates Σ_jj.
    const data1 = generateSynthetic({ seed: 3, alpha: 0, beta: 0 });
    const largest = data1.sizes.indexOf(Math.max(...data1.sizes));
    const indices = data1.devices[largest]!;
    expect(indices.length).toBeGreaterThan(300);
    const variance = (j: number): number => {
      const values = Array.from(indices, (i) => data1.train.x[i * 60 + j]!);
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      return values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1);
    };
    for (const j of [0, 4, 19, 59]) {
      const expected = (j + 1) ** -1.2;
      expect(variance(j) / expected, `feature ${j + 1}`).toBeGreaterThan(0.7);
      expect(variance(j) / expected, `feature ${j + 1}`).toBeLessThan(1.4);
    }
    expect(variance(0)).toBeGreaterThan(50 * variance(59)); // 60^1.2 ≈ 137
  });

  it('with β = 1 the devices\' label histograms are more concentrated than with α = β = 0', () => {
    // Entropies on seed 0: about 0.66 nats at (0, 0), 0.38 at (1, 1).
    const flat = meanLabelEntropy(generateSynthetic({ seed: 0, alpha: 0, beta: 0 }));
    const skewed = meanLabelEntropy(generateSynthetic({ seed: 0, alpha: 1, beta: 1 }));
    expect(flat - skewed).toBeGreaterThan(0.15);
  });

  it('like the reference code, α alone does not change any label (u_k shifts every logit alike)', () => {
    const plain = generateSynthetic({ seed: 0, alpha: 0, beta: 0 });
    const shifted = generateSynthetic({ seed: 0, alpha: 1, beta: 0 });
    expect(Buffer.from(shifted.train.x.buffer).equals(Buffer.from(plain.train.x.buffer))).toBe(true);
    expect(shifted.train.y).toEqual(plain.train.y);
  });

  it('refuses negative α or β', () => {
    expect(() => generateSynthetic({ alpha: -1 })).toThrow(/alpha must be a finite number ≥ 0/);
    expect(() => generateSynthetic({ beta: Number.NaN })).toThrow(/beta must be a finite number ≥ 0/);
  });

  it('loadDataset("synthetic") is Synthetic(1, 1) of the seed, pooled', () => {
    const { train, test } = loadDataset('synthetic', { seed: 0 });
    expect(train.y).toEqual(data.train.y);
    expect(test.length).toBe(data.test.length);
  });
});

describe('generateSynthetic: Synthetic-IID', () => {
  const iid = generateSynthetic({ seed: 0, iid: true });

  it('keeps the sizes of Synthetic(α, β) of the seed (drawn first) and their 90/10 split', () => {
    expect(iid.sizes).toEqual(generateSynthetic({ seed: 0 }).sizes);
    iid.sizes.forEach((size, k) => expect(iid.devices[k]!.length).toBe(Math.floor(0.9 * size)));
  });

  it('ignores α and β: the same draws whatever they are', () => {
    const other = generateSynthetic({ seed: 0, iid: true, alpha: 5, beta: 3 });
    expect(Buffer.from(other.train.x.buffer).equals(Buffer.from(iid.train.x.buffer))).toBe(true);
    expect(other.train.y).toEqual(iid.train.y);
  });

  it('labels every example of every device with the one W, b drawn right after the sizes', () => {
    const random = createSeededRandom(0);
    for (let k = 0; k < 30; k++) syntheticDeviceSize(random);
    const weights = Array.from({ length: 60 * 10 }, () => random.nextGaussian()); // W ~ N(0, 1), features × classes
    const bias = Array.from({ length: 10 }, () => random.nextGaussian());
    const labelOf = (x: Float32Array, row: number): number => {
      const logits = bias.map((b, c) => x.subarray(row * 60, (row + 1) * 60).reduce((sum, value, j) => sum + value * weights[j * 10 + c]!, b));
      return logits.indexOf(Math.max(...logits));
    };
    for (const split of [iid.train, iid.test]) {
      const mismatches = Array.from({ length: split.length }, (_, row) => row).filter((row) => labelOf(split.x, row) !== split.y[row]);
      expect(mismatches).toEqual([]);
    }
  });

  it('draws x ~ N(0, Σ) on every device: per-device feature means near 0, variance of feature 1 near 1', () => {
    for (const [k, indices] of iid.devices.entries()) {
      if (indices.length < 300) continue;
      const values = Array.from(indices, (i) => iid.train.x[i * 60]!);
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1);
      expect(Math.abs(mean), `device ${k}`).toBeLessThan(0.2);
      expect(variance, `device ${k}`).toBeGreaterThan(0.75);
      expect(variance, `device ${k}`).toBeLessThan(1.3);
    }
  });
});

describe('simulation.dataset synthetic', () => {
  it('reads simulation.synthetic.iid, and refuses alpha or beta next to it', () => {
    expect(parseConfig({ model: 'logreg', simulation: { dataset: 'synthetic', synthetic: { iid: true } } }).simulation.synthetic).toEqual({ iid: true });
    expect(parseConfig({ model: 'logreg', simulation: { dataset: 'synthetic', synthetic: { iid: false, alpha: 0.5 } } }).simulation.synthetic).toEqual({ alpha: 0.5, beta: 1 });
    expect(() => parseConfig({ simulation: { dataset: 'synthetic', synthetic: { iid: true, beta: 1 } } })).toThrow(
      'simulation.synthetic.beta does not apply with simulation.synthetic.iid true: Synthetic-IID gives every device the same model and inputs; drop beta, or set iid false for Synthetic(alpha, beta)',
    );
    expect(() => parseConfig({ simulation: { dataset: 'synthetic', synthetic: { iid: 'yes' } } })).toThrow(/simulation.synthetic.iid must be/);
  });

  it('accepts the natural partition by name, the only one it has', () => {
    expect(parseConfig({ model: 'logreg', simulation: { dataset: 'synthetic', partition: { kind: 'natural' } } }).simulation.partition).toEqual({ kind: 'natural' });
  });

  it('defaults numClients to 30 devices and refuses a partition', () => {
    const config = parseConfig({ model: 'logreg', simulation: { dataset: 'synthetic', synthetic: { alpha: 0.5, beta: 0 } } });
    expect(config.simulation.numClients).toBe(30);
    expect(config.simulation.synthetic).toEqual({ alpha: 0.5, beta: 0 });
    expect(() => parseConfig({ simulation: { dataset: 'synthetic', partition: { kind: 'shards' } } })).toThrow(/does not apply to simulation.dataset synthetic/);
    expect(() => parseConfig({ simulation: { dataset: 'synthetic', synthetic: { alpha: -1 } } })).toThrow(/simulation.synthetic.alpha must be/);
  });

  it('trains Synthetic(1, 1) with FedAvg, one device per client, above chance in 3 rounds', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'shoal-synthetic-'));
    const config = parseConfig({
      seed: 0,
      rounds: 3,
      model: 'logreg',
      clientsPerRound: 10,
      minClients: 10,
      train: { epochs: 2, batchSize: 10, learningRate: 0.01, optimizer: 'sgd' },
      simulation: { dataset: 'synthetic', numClients: 30, synthetic: { alpha: 1, beta: 1 } },
    });
    const summary = await runSimulation(config, { outDir });
    expect(summary.rounds.filter((round) => round.status === 'committed')).toHaveLength(3);
    expect(summary.finalAccuracy).toBeGreaterThan(0.15); // chance is 0.1; 0.19 on seed 0
    expect(summary.partition.kind).toBe('natural');
    expect(summary.partition.params).toEqual({ alpha: 1, beta: 1 });
    expect(summary.partition.sizes).toEqual(generateSynthetic({ seed: 0 }).devices.map((indices) => indices.length));
    expect(summary.partition.unused).toBe(0);
  }, 120_000);
});
