// The simulator's part of a Shoal config: the `simulation` and `faults` sections, and the rules
// between the model and the bundled dataset it trains on. `parseConfig` is the whole config of
// `shoal simulate`: the coordinator's `composeConfig` with these sections added.
import { checkDefaultModelShape, composeConfig, type ConfigSections, type CoordinatorConfig } from '@shoal/coordinator';
import { DATASET_NAMES, DATASET_SHAPES, DATASETS_WITH_OWNERS, DEFAULT_DATASET, type DatasetName } from '@shoal/datasets';
import { ConfigSection, NON_NEGATIVE, POSITIVE, configError, integerAt, interval, numberAt, oneOfAt, readsIds, shown, type NumberRule } from '@shoal/protocol';
import { DIRICHLET_RECIPES, PARTITION_DEFAULTS, PARTITION_KINDS, QUANTITY_DISTRIBUTIONS, type PartitionKind, type PartitionSpec } from './partition.js';

/** Where a simulated client vanishes: before sending that stage's message (`train`: its update). */
export type FaultStage = 'advertise' | 'share' | 'masked' | 'confirm' | 'unmask' | 'train';
const FAULT_STAGES: readonly FaultStage[] = ['advertise', 'share', 'masked', 'confirm', 'unmask', 'train'];

/** What a straggler does: trains fewer epochs and sends that (`partial`, FedProx), or never sends its update (`drop`, FedAvg in FedProx's experiments). */
export type StragglerPolicy = 'partial' | 'drop';
const STRAGGLER_POLICIES: readonly StragglerPolicy[] = ['partial', 'drop'];

/** The `simulation` and `faults` sections, and the top-level `seed` a simulation always has. */
export interface SimulationSections {
  /** Seeds everything a run draws, so runs are reproducible; default 0 (`serve` leaves it unset). */
  readonly seed: number;
  readonly faults: {
    readonly dropout: number;
    readonly stage?: FaultStage;
    /** Probability that a selected client straggles in a round; see `straggling` in faults.ts. */
    readonly stragglers: number;
    readonly stragglerPolicy: StragglerPolicy;
  };
  readonly simulation: {
    readonly dataset: DatasetName;
    readonly numClients: number;
    /** `"iid"` as given, or the object form with its defaults filled in; absent with a dataset whose examples have owners: `{ kind: 'natural' }`. */
    readonly partition: 'iid' | PartitionSpec;
    readonly examplesPerClient?: number;
    readonly testExamples?: number;
    readonly transport: 'memory' | 'ws';
    /** Synthetic(α, β)'s parameters as given, or Synthetic-IID (read only with dataset `synthetic`; absent: α = β = 1). */
    readonly synthetic?: { readonly alpha: number; readonly beta: number } | { readonly iid: true };
    /** Threads hosting the virtual clients, as given; absent: the machine's cores (`simulationWorkers`). */
    readonly workers?: number;
    /** With `federatedEvaluation`: the fraction of each client's share held out for it, as given; absent: `HELD_OUT_DEFAULT`. */
    readonly heldOut?: number;
  };
}

/**
 * The one configuration format of `shoal serve` and `shoal simulate`, as `simulate` reads it.
 * Every key, its default and its meaning are listed in docs/configuration.md; a test keeps the two
 * in step.
 */
export type ShoalConfig = CoordinatorConfig & SimulationSections;

/** The defaults of `simulation` and `faults`. */
export const SIMULATION_DEFAULTS = {
  seed: 0,
  simulation: { dataset: DEFAULT_DATASET, numClients: 20, partition: 'iid', transport: 'memory' },
  faults: { dropout: 0, stragglers: 0, stragglerPolicy: 'partial' },
} as const satisfies { readonly seed: number; readonly simulation: Omit<SimulationSections['simulation'], 'examplesPerClient' | 'testExamples'>; readonly faults: SimulationSections['faults'] };

const PROBABILITY: NumberRule = interval('[0, 1]');

/** `simulation.partition`'s default with a dataset whose examples have owners (shakespeare, synthetic). */
const NATURAL: PartitionSpec = { kind: 'natural' };

/** FedProx's device count: `simulation.numClients`'s default with dataset `synthetic`. */
export const SYNTHETIC_DEFAULT_DEVICES = 30;

/** The simulator's sections, for `composeConfig`. */
export const SIMULATION_SECTIONS: ConfigSections<SimulationSections> = {
  keys: ['faults', 'simulation'],
  parse(raw, base) {
    const simulation = new ConfigSection(raw['simulation'], 'simulation', ['dataset', 'numClients', 'partition', 'examplesPerClient', 'testExamples', 'transport', 'synthetic', 'workers', 'heldOut']);
    const faults = new ConfigSection(raw['faults'], 'faults', ['dropout', 'stage', 'stragglers', 'stragglerPolicy']);
    const defaults = SIMULATION_DEFAULTS;
    const dataset = simulation.oneOf('dataset', defaults.simulation.dataset, DATASET_NAMES);
    const partition = simulation.read('partition', DATASETS_WITH_OWNERS.includes(dataset) ? NATURAL : defaults.simulation.partition, partitionAt);
    checkPartitionForDataset(partition, dataset);
    const sections: SimulationSections = {
      seed: base.seed ?? defaults.seed,
      faults: {
        dropout: faults.number('dropout', defaults.faults.dropout, PROBABILITY),
        ...faults.optional('stage', (value, path) => oneOfAt(value, path, FAULT_STAGES)),
        stragglers: faults.number('stragglers', defaults.faults.stragglers, PROBABILITY),
        stragglerPolicy: faults.oneOf('stragglerPolicy', defaults.faults.stragglerPolicy, STRAGGLER_POLICIES),
      },
      simulation: {
        dataset,
        numClients: simulation.integer('numClients', dataset === 'synthetic' ? SYNTHETIC_DEFAULT_DEVICES : defaults.simulation.numClients, 1),
        partition,
        ...simulation.optional('examplesPerClient', (value, path) => integerAt(value, path, 1)),
        ...simulation.optional('testExamples', (value, path) => integerAt(value, path, 1)),
        transport: simulation.oneOf('transport', defaults.simulation.transport, ['memory', 'ws']),
        ...simulation.optional('synthetic', syntheticAt),
        ...simulation.optional('workers', (value, path) => integerAt(value, path, 1)),
        ...simulation.optional('heldOut', (value, path) => numberAt(value, path, interval('(0, 1)'))),
      },
    };
    const { stage } = sections.faults;
    if (base.secagg.mode === 'off' && stage !== undefined && stage !== 'train') {
      throw configError(`faults.stage ${stage} is a secure-aggregation stage, but secagg.mode is off`);
    }
    checkModelForDataset(base.model, sections.simulation.dataset);
    return sections;
  },
};

/**
 * `simulation.synthetic`: `{ alpha, beta }`, standard deviations ≥ 0, each defaulting to 1; or
 * `{ iid: true }` for Synthetic-IID, which has no α or β (giving one is refused).
 */
function syntheticAt(value: unknown, path: string): { alpha: number; beta: number } | { iid: true } {
  const section = new ConfigSection(value, path, ['iid', 'alpha', 'beta']);
  if (section.boolean('iid', false)) {
    const given = ['alpha', 'beta'].find((key) => section.has(key));
    if (given !== undefined) throw configError(`${section.pathOf(given)} does not apply with ${section.pathOf('iid')} true: Synthetic-IID gives every device the same model and inputs; drop ${given}, or set iid false for Synthetic(alpha, beta)`);
    return { iid: true };
  }
  return { alpha: section.number('alpha', 1, NON_NEGATIVE), beta: section.number('beta', 1, NON_NEGATIVE) };
}

/** Each partition kind's keys besides `kind`. */
const PARTITION_KEYS: Readonly<Record<PartitionKind, readonly string[]>> = {
  iid: [],
  shards: ['shardsPerClient'],
  dirichlet: ['alpha', 'recipe'],
  quantity: ['distribution', 'sigma', 'exponent'],
  natural: [],
};

/**
 * `simulation.partition`: the string `"iid"`, or `{ kind, ...params }` with the kind's own keys
 * (docs/configuration.md, "Partitions"). A key of another kind is refused naming the kind's keys.
 */
function partitionAt(value: unknown, path: string): 'iid' | PartitionSpec {
  if (typeof value === 'string') {
    if (value === 'iid') return value;
    throw configError(`${path} must be "iid" or an object { kind, ... } with kind one of ${PARTITION_KINDS.join(', ')}, got ${shown(value)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw configError(`${path} must be "iid" or an object { kind, ... }, got ${shown(value)}`);
  const given = (value as Record<string, unknown>)['kind'];
  if (given === undefined || given === null) throw configError(`${path}.kind is required: one of ${PARTITION_KINDS.join(', ')}`);
  const kind = oneOfAt(given, `${path}.kind`, PARTITION_KINDS);
  const section = new ConfigSection(value, path, ['kind', ...PARTITION_KEYS[kind]]);
  const required = (key: string, why: string): void => {
    if (!section.has(key)) throw configError(`${section.pathOf(key)} is required for kind ${kind}: ${why}`);
  };
  switch (kind) {
    case 'iid':
      return { kind };
    case 'shards':
      return { kind, shardsPerClient: section.integer('shardsPerClient', PARTITION_DEFAULTS.shardsPerClient, 1) };
    case 'dirichlet':
      required('alpha', 'the concentration, e.g. 0.1 (very skewed) to 100 (nearly iid)');
      required('recipe', 'per-client (Hsu et al. 2019, q ~ Dir(alpha·p) per client) or per-class (Flower Datasets, FedML: each class split by Dir(alpha))');
      return { kind, alpha: section.number('alpha', 1, POSITIVE), recipe: section.oneOf('recipe', 'per-client', DIRICHLET_RECIPES) };
    case 'quantity': {
      const distribution = section.oneOf('distribution', PARTITION_DEFAULTS.distribution, QUANTITY_DISTRIBUTIONS);
      const other = distribution === 'lognormal' ? 'exponent' : 'sigma';
      if (section.has(other)) throw configError(`${section.pathOf(other)} is for distribution ${other === 'sigma' ? 'lognormal' : 'powerlaw'}, but ${section.pathOf('distribution')} is ${distribution}`);
      return distribution === 'lognormal'
        ? { kind, distribution, sigma: section.number('sigma', PARTITION_DEFAULTS.sigma, NON_NEGATIVE) }
        : { kind, distribution, exponent: section.number('exponent', PARTITION_DEFAULTS.exponent, POSITIVE) };
    }
    case 'natural':
      return { kind };
  }
}

/**
 * `natural` needs examples with owners (speakers, generated devices); synthetic has only its devices'
 * split, so it takes no other kind.
 */
function checkPartitionForDataset(partition: 'iid' | PartitionSpec, dataset: DatasetName): void {
  const kind = partition === 'iid' ? partition : partition.kind;
  if (kind === 'natural' && !DATASETS_WITH_OWNERS.includes(dataset)) {
    throw configError(`simulation.partition kind natural needs examples that have an owner (shakespeare: its speakers; synthetic: its devices), but simulation.dataset ${dataset} has none: choose kind iid, shards, dirichlet or quantity`);
  }
  if (dataset === 'synthetic' && kind !== 'natural') {
    throw configError('simulation.partition does not apply to simulation.dataset synthetic: each generated device is one client (the natural partition); set simulation.numClients to change the number of devices');
  }
}

/**
 * The whole config of `shoal simulate`: validates a parsed JSON config and fills in defaults.
 * Unknown keys and bad values throw ShoalError INVALID_CONFIG naming the key path, e.g.
 * `train.batchSize must be an integer in [1, ∞], got 0`.
 */
export function parseConfig(raw: unknown, defaultName?: string): ShoalConfig {
  return composeConfig(raw, SIMULATION_SECTIONS, defaultName);
}

/**
 * `simulate` feeds the dataset's examples to the model as they are: a built-in model must take
 * their shape (a cnn needs images), a given `model.inputShape` must be theirs, the model needs
 * an output for each of the dataset's classes, and a model that reads character ids (char-gru)
 * goes with the dataset of character ids (shakespeare) and no other.
 */
function checkModelForDataset(model: ShoalConfig['model'], dataset: DatasetName): void {
  if ('path' in model) return;
  const { featureShape, numClasses } = DATASET_SHAPES[dataset];
  const source = `simulation.dataset ${dataset}`;
  // Character ids and feature values are both numbers, so a mismatch would train without complaint, on nonsense.
  const holdsIds = dataset === 'shakespeare';
  if (readsIds(model.builtin) && !holdsIds) {
    throw configError(`model ${model.builtin} reads character ids, but ${source} holds feature values: use simulation.dataset shakespeare, or another model`);
  }
  if (holdsIds && !readsIds(model.builtin)) {
    throw configError(`${source} holds windows of character ids, which model ${model.builtin} would read as feature values: use model char-gru (or a saved model that embeds ids)`);
  }
  checkDefaultModelShape(model, { featureShape, numClasses, source }, 'choose another model or dataset');
  const shape = `[${featureShape.join(', ')}]`;
  if (model.inputShape !== undefined && `[${model.inputShape.join(', ')}]` !== shape) {
    throw configError(`model.inputShape [${model.inputShape.join(', ')}] does not match ${source}, whose examples have shape ${shape}: simulate feeds them to the model as they are`);
  }
  if (model.numClasses !== undefined && model.numClasses < numClasses) {
    throw configError(`model.numClasses ${model.numClasses} is fewer than the ${numClasses} classes of ${source}`);
  }
}
