// Which examples each virtual client holds: the dataset a config names, divided among
// `simulation.numClients` clients. Pure given the config and the seeded random it is handed, so
// every process that hosts clients (the runner, its worker threads, `shoal swarm`) derives the
// same split from the same config.
import type { SeededRandom } from '@shoal/protocol';
import type { ShoalConfig } from './config.js';
import { loadDataset, type TrainTest } from './datasets.js';
import { SYNTHETIC_DEFAULTS, generateSynthetic } from './synthetic.js';
import { describePartition, partitionLabels, type PartitionReport, type PartitionSpec } from './partition.js';

export interface ClientData extends TrainTest {
  /** Client number i's examples: indices into `train`. */
  readonly partitions: readonly Int32Array[];
  readonly partition: PartitionReport;
}

/** The config's dataset and each virtual client's share of its train split. */
export function clientData(config: ShoalConfig, random: SeededRandom): ClientData {
  return config.simulation.dataset === 'synthetic' ? syntheticClients(config) : bundledClients(config, random);
}

/** A bundled dataset's train split, divided by `simulation.partition`. */
function bundledClients(config: ShoalConfig, random: SeededRandom): ClientData {
  const sim = config.simulation;
  const { train, test } = loadDataset(sim.dataset, { seed: config.seed });
  const spec: PartitionSpec = sim.partition === 'iid' ? { kind: 'iid' } : sim.partition;
  const partitions = partitionLabels(train.y, train.numClasses, sim.numClients, spec, random, sim.examplesPerClient);
  return { train, test, partitions, partition: describePartition(spec, partitions, train.y, train.numClasses, sim.examplesPerClient) };
}

/**
 * Synthetic(α, β) with one device per virtual client (the natural partition), generated from the
 * run's seed; each client keeps its device's train share (the first examplesPerClient of it when
 * set), and the test split pools every device's held-out 10 %.
 */
function syntheticClients(config: ShoalConfig): ClientData {
  const sim = config.simulation;
  const { alpha, beta } = sim.synthetic ?? { alpha: SYNTHETIC_DEFAULTS.alpha, beta: SYNTHETIC_DEFAULTS.beta };
  const data = generateSynthetic({ alpha, beta, devices: sim.numClients, seed: config.seed });
  const cap = sim.examplesPerClient;
  const partitions = data.devices.map((indices) => (cap === undefined ? indices : indices.subarray(0, cap)));
  const spec = { kind: 'natural', alpha, beta } as const;
  return { train: data.train, test: data.test, partitions, partition: describePartition(spec, partitions, data.train.y, data.train.numClasses, cap) };
}

