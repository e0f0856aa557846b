// Which examples each virtual client holds: the dataset a config names, divided among
// `simulation.numClients` clients. Pure given the config and the seeded random it is handed, so
// every process that hosts clients (the runner, its worker threads, `shoal swarm`) derives the
// same split from the same config.
import { ShoalError, type SeededRandom } from '@shoal/protocol';
import type { ShoalConfig } from './config.js';
import { loadDataset, loadShakespeare, type Dataset, type TrainTest } from './datasets.js';
import { SYNTHETIC_DEFAULTS, generateSynthetic } from './synthetic.js';
import { largestSpeakers } from './shakespeare.js';
import { describePartition, partitionLabels, type LabelPartitionSpec, type PartitionReport } from './partition.js';

export interface ClientData extends TrainTest {
  /** Client number i's examples: indices into `train`. */
  readonly partitions: readonly Int32Array[];
  readonly partition: PartitionReport;
}

/** The config's dataset and each virtual client's share of its train split. */
export function clientData(config: ShoalConfig, random: SeededRandom): ClientData {
  switch (config.simulation.dataset) {
    case 'synthetic':
      return syntheticClients(config);
    case 'shakespeare':
      return shakespeareClients(config, random);
    default: {
      const { train, test } = loadDataset(config.simulation.dataset, { seed: config.seed });
      return labelClients(config, train, test, random);
    }
  }
}

/** A dataset's train split, divided by a `simulation.partition` kind that needs only the labels. */
function labelClients(config: ShoalConfig, train: Dataset, test: Dataset, random: SeededRandom): ClientData {
  const sim = config.simulation;
  const spec: LabelPartitionSpec = sim.partition === 'iid' ? { kind: 'iid' } : labelSpec(sim.partition, sim.dataset);
  const partitions = partitionLabels(train.y, train.numClasses, sim.numClients, spec, random, sim.examplesPerClient);
  return { train, test, partitions, partition: describePartition(spec, partitions, train.y, train.numClasses, sim.examplesPerClient) };
}

function labelSpec(spec: Exclude<ShoalConfig['simulation']['partition'], 'iid'>, dataset: string): LabelPartitionSpec {
  // parseConfig refuses natural for datasets without owners; a config built by hand may not have been parsed.
  if (spec.kind === 'natural') throw new ShoalError('INVALID_CONFIG', `partition natural: simulation.dataset ${dataset} has no owners to split by; choose kind iid, shards, dirichlet or quantity`);
  return spec;
}

/**
 * Shakespeare: by default (`natural`) one client per speaker, the numClients speakers who say the
 * most (ties: who speaks first), each keeping its own windows (the first examplesPerClient
 * of them, in text order, when set); any other kind splits the pooled windows by their labels (the
 * next character) as for the other datasets. The test split pools every speaker's held-out text.
 */
function shakespeareClients(config: ShoalConfig, random: SeededRandom): ClientData {
  const sim = config.simulation;
  const data = loadShakespeare({ seed: config.seed });
  const { train, test } = data;
  if (sim.partition === 'iid' || sim.partition.kind !== 'natural') return labelClients(config, train, test, random);
  const speakers = largestSpeakers(data.speakers, sim.numClients);
  const cap = sim.examplesPerClient;
  const partitions = speakers.map((speaker) => (cap === undefined ? speaker.train : speaker.train.subarray(0, cap)));
  const report = describePartition({ kind: 'natural', speakers: data.speakers.length }, partitions, train.y, train.numClasses, cap);
  return { train, test, partitions, partition: { ...report, owners: speakers.map((speaker) => speaker.name) } };
}

/**
 * Synthetic(α, β), or Synthetic-IID, with one device per virtual client (the natural partition),
 * generated from the run's seed; each client keeps its device's train share (the first examplesPerClient of it when
 * set), and the test split pools every device's held-out 10 %.
 */
function syntheticClients(config: ShoalConfig): ClientData {
  const sim = config.simulation;
  const parameters = sim.synthetic ?? { alpha: SYNTHETIC_DEFAULTS.alpha, beta: SYNTHETIC_DEFAULTS.beta };
  const data = generateSynthetic({ ...parameters, devices: sim.numClients, seed: config.seed });
  const cap = sim.examplesPerClient;
  const partitions = data.devices.map((indices) => (cap === undefined ? indices : indices.subarray(0, cap)));
  const spec = 'iid' in parameters ? ({ kind: 'natural', synthetic: 'iid' } as const) : ({ kind: 'natural', ...parameters } as const);
  return { train: data.train, test: data.test, partitions, partition: describePartition(spec, partitions, data.train.y, data.train.numClasses, cap) };
}

