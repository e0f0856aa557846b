// Shared by config.test.ts and the CLI's config-docs.test.ts: the configs, key levels and helpers both use.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { ShoalError } from '@shoal/protocol';
import { expect } from 'vitest';
// config.js directly, not the package index: the index pulls in tfjs, which these tests do not need.
import { parseConfig, type ShoalConfig } from '../src/config.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DOC = readFileSync(join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');

/** Runs fn, expects a ShoalError INVALID_CONFIG, and returns its message. */
export function configError(fn: () => unknown): string {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'expected a ShoalError').toBeInstanceOf(ShoalError);
  expect((thrown as ShoalError).code).toBe('INVALID_CONFIG');
  return (thrown as ShoalError).message;
}

/** A raw config holding only `value` at the dotted `path`, e.g. at('train.epochs', 0). */
export function at(path: string, value: unknown): Record<string, unknown> {
  const keys = path.split('.');
  let node: unknown = value;
  for (const key of keys.reverse()) node = { [key]: node };
  return node as Record<string, unknown>;
}

/**
 * The config's sections: objects of keys under one top-level key (`model` is not one: it may be a
 * string and has two forms). Adding a section to parseConfig means adding it here, to DEFAULTS and to
 * FULL, rows to the bad-value table and the random config, and a table to docs/configuration.md; the
 * tests below then cover its unknown keys and documented defaults by themselves.
 */
export const SECTIONS = ['train', 'strategy', 'server', 'secagg', 'dp', 'faults', 'simulation'] as const;

export const DEFAULTS: ShoalConfig = {
  name: 'shoal',
  seed: 0,
  rounds: 10,
  model: { builtin: 'mlp' },
  minClients: 2,
  roundTimeoutMs: 60_000,
  train: { epochs: 1, batchSize: 32, learningRate: 0.05, optimizer: 'sgd' },
  strategy: { name: 'fedavg', serverLearningRate: 1 },
  server: {
    host: '127.0.0.1',
    port: 8080,
    tokens: [],
    adminTokens: [],
    heartbeatIntervalMs: 5_000,
    retention: { keepCheckpoints: 3 },
    limits: {
      helloTimeoutMs: 10_000,
      maxConnections: 10_000,
      maxPendingHello: 1_000,
      maxIdlePartialBytes: 65_536,
      resumeTokenTtlMs: 600_000,
      maxResumeTokens: 100_000,
      upgradeTimeoutMs: 10_000,
      badTokenLimit: 20,
      badTokenWindowMs: 60_000,
    },
  },
  secagg: { mode: 'off', maxDropout: 0.3, stageTimeoutMs: 30_000, clipRange: 1, maxWeight: 1_000, shareMetrics: false },
  dp: { mode: 'off', noiseMultiplier: 1, clipNorm: 1, delta: 1e-5, allowNoCheckpoint: false },
  sampling: 'fixed',
  maxUpdateNorm: 'auto',
  faults: { dropout: 0, stragglers: 0, stragglerPolicy: 'partial' },
  simulation: { dataset: 'mnist', numClients: 20, partition: 'iid', transport: 'memory' },
};

/** The defaults of `dp.adaptiveClip` once it is present (its absence means fixed clipping). */
export const ADAPTIVE_CLIP_DEFAULTS = { targetQuantile: 0.5, learningRate: 0.2 };

/** Every key set, none to its default. `fraction`, `model.path` and each strategy's own keys exclude others, so they get variants. */
export const FULL = {
  $schema: './schema.json',
  description: 'every key',
  name: 'full',
  seed: 7,
  rounds: 3,
  targetAccuracy: 0.97,
  model: { builtin: 'logreg', inputShape: [64], numClasses: 12 }, // simulate takes the dataset's shape, and at least its classes
  clientsPerRound: 5,
  minClients: 3,
  minAvailable: 6,
  roundTimeoutMs: 1_234,
  train: { epochs: 2, batchSize: 16, learningRate: 0.3, optimizer: 'adam' },
  strategy: { name: 'fedavgm', serverLearningRate: 0.5, maxWeight: 100, momentum: 0.25 },
  server: {
    host: '0.0.0.0',
    port: 9001,
    tokens: ['a', 'b'],
    adminTokens: ['ops'],
    tls: { cert: 'tls/cert.pem', key: 'tls/key.pem' },
    heartbeatIntervalMs: 250,
    checkpointDir: 'ckpt',
    retention: { keepCheckpoints: 5, maxCheckpointAgeMs: 86_400_000 },
    limits: {
      helloTimeoutMs: 1_500,
      maxConnections: 50,
      maxPendingHello: 7,
      maxIdlePartialBytes: 4_096,
      resumeTokenTtlMs: 9_000,
      maxResumeTokens: 70,
      upgradeTimeoutMs: 2_500,
      badTokenLimit: 3,
      badTokenWindowMs: 5_000,
    },
  },
  secagg: { mode: 'secagg+', threshold: 4, degree: 5, maxDropout: 0.2, stageTimeoutMs: 2_000, clipRange: 0.5, maxWeight: 600, shareMetrics: true, groupSize: 6 },
  dp: { mode: 'distributed', noiseMultiplier: 0.8, clipNorm: 0.5, adaptiveClip: { targetQuantile: 0.7, learningRate: 0.1, countNoiseStd: 2 }, delta: 1e-6, targetEpsilon: 4, allowNoCheckpoint: true },
  sampling: 'poisson',
  maxUpdateNorm: 2.5,
  // With secagg and dp on, federated evaluation needs allowUnprotectedMetrics.
  federatedEvaluation: { every: 2, clients: 4, timeoutMs: 5_000, allowUnprotectedMetrics: true },
  faults: { dropout: 0.1, stage: 'share', stragglers: 0.5, stragglerPolicy: 'drop' },
  simulation: { dataset: 'digits', numClients: 40, partition: 'iid', examplesPerClient: 30, testExamples: 99, transport: 'ws', synthetic: { alpha: 0.5, beta: 0.25 }, heldOut: 0.25, workers: 3 },
};
export const { clientsPerRound: _omitted, ...FULL_WITHOUT_COHORT } = FULL;
// DP needs clientsPerRound (its expected cohort), so the fraction variant turns it off; its other keys stay valid.
export const FULL_WITH_FRACTION = { ...FULL_WITHOUT_COHORT, fraction: 0.25, dp: { ...FULL.dp, mode: 'off' } };
export const FULL_WITH_SAVED_MODEL = { ...FULL, model: { path: 'models/model.json' } };
export const FULL_WITH_FEDPROX = { ...FULL, strategy: { name: 'fedprox', serverLearningRate: 0.5, maxWeight: 100, proximalMu: 0.125 } };
export const FULL_WITH_FEDYOGI = { ...FULL, strategy: { name: 'fedyogi', serverLearningRate: 0.05, maxWeight: 100, beta1: 0.5, beta2: 0.75, tau: 0.01 } };
// The robust rules need each update: plain rounds only, so secagg and dp are off (and faults.stage is not a secagg stage).
const PLAIN = { secagg: { mode: 'off' }, dp: { ...FULL.dp, mode: 'off' }, faults: { dropout: 0.1, stage: 'train' } };
export const FULL_WITH_FEDTRIMMEDAVG = { ...FULL, ...PLAIN, strategy: { name: 'fedtrimmedavg', serverLearningRate: 0.5, trimFraction: 0.2 } };
export const FULL_WITH_KRUM = { ...FULL, ...PLAIN, strategy: { name: 'krum', serverLearningRate: 0.5, byzantine: 1, krumSelect: 2 } };
export const FULL_WITH_QFEDAVG = { ...FULL, ...PLAIN, strategy: { name: 'qfedavg', serverLearningRate: 0.5, q: 2, lipschitz: 10 } };
/** The full configs with another strategy than FULL's: each is read back with its strategy unchanged. */
export const FULL_STRATEGY_VARIANTS = [FULL_WITH_FEDPROX, FULL_WITH_FEDYOGI, FULL_WITH_FEDTRIMMEDAVG, FULL_WITH_KRUM, FULL_WITH_QFEDAVG];
/** FULL and its variants: together they set every key the docs list. */
// Synthetic-IID has no alpha or beta, so it is a variant of its own (accepted, and unused, with digits).
export const FULL_WITH_SYNTHETIC_IID = { ...FULL, simulation: { ...FULL.simulation, synthetic: { iid: true } } };
export const FULL_VARIANTS = [FULL, FULL_WITH_FRACTION, FULL_WITH_SAVED_MODEL, FULL_WITH_SYNTHETIC_IID, ...FULL_STRATEGY_VARIANTS];

/** Every dotted key path of a config object (sections and leaves; arrays are leaves). */
export function keyPaths(value: unknown, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  return Object.entries(value).flatMap(([key, child]) => [`${prefix}${key}`, ...keyPaths(child, `${prefix}${key}.`)]);
}

/** The keys parseConfig accepts in one object, read from the "(allowed: ...)" list of its unknown-key error. */
export function allowedKeys(raw: Record<string, unknown>, prefix: string): string[] {
  const message = configError(() => parseConfig(raw));
  const match = /\(allowed: ([^)]*)\)/.exec(message);
  expect(match, message).not.toBeNull();
  return match![1]!.split(', ').map((key) => `${prefix}${key}`);
}

/**
 * One example of each cross-key rule: every value is valid alone, together they are rejected. The
 * doc quotes each message as the CLI prints it, `shoal: config: <message>`.
 */
export const CROSS_KEY_EXAMPLES: readonly (readonly [Record<string, unknown>, string])[] = [
  [{ clientsPerRound: 1 }, 'clientsPerRound (1) must be at least minClients (2)'], // the default minClients counts too
  [{ clientsPerRound: 4, fraction: 0.5 }, 'give clientsPerRound or fraction, not both'],
  [at('faults.stage', 'share'), 'faults.stage share is a secure-aggregation stage, but secagg.mode is off'], // the default mode is off
  [at('secagg.threshold', 3), 'secagg.threshold and secagg.degree need secagg.mode secagg or secagg+'],
  [at('secagg.groupSize', 10), 'secagg.groupSize needs secagg.mode secagg or secagg+ (without secure aggregation a gateway runs groups of any size)'],
  [{ secagg: { mode: 'secagg+', groupSize: 2 } }, 'secagg.groupSize must be an integer in [3, ∞], got 2'],
  [{ secagg: { mode: 'secagg', degree: 5 } }, 'secagg.degree is for secagg+ only: full secagg uses the whole cohort'],
  [{ secagg: { mode: 'secagg+', degree: 6 } }, 'secagg.degree must be odd (the client itself plus equally many neighbours on each side), got 6'],
  [{ secagg: { mode: 'secagg+', degree: 5, threshold: 7 } }, 'secagg.threshold (7) exceeds secagg.degree (5): no secret could ever be reconstructed'],
  [{ clientsPerRound: 4, secagg: { mode: 'secagg', threshold: 5 } }, 'secagg.threshold (5) exceeds clientsPerRound (4): every round would abort'],
  [at('dp.mode', 'central'), "dp.mode central needs clientsPerRound: the expected cohort size is DP-FedAvg's fixed denominator"],
  [{ clientsPerRound: 10, dp: { mode: 'distributed' } }, 'dp.mode distributed needs secagg.mode secagg or secagg+: without it the coordinator sees each noised update'],
  [
    { clientsPerRound: 10, dp: { mode: 'central', adaptiveClip: {} } },
    'dp.noiseMultiplier 1 needs dp.adaptiveClip.countNoiseStd > 0.5 (it is 0.5, clientsPerRound / 20): raise it or clientsPerRound, or lower dp.noiseMultiplier',
  ],
  // Each rule below is the one the package applies when it runs (secagg: every round; strategy: at start).
  // 3 of 5 is above half but not above (k + 1)/2: a lying coordinator would need no colluding client.
  [{ secagg: { mode: 'secagg+', degree: 5, threshold: 3 } }, 'secagg.threshold (3) must exceed (k + 1)/2 for secagg.degree (5), or a coordinator that lies about who dropped out could unmask a client'],
  [{ secagg: { mode: 'secagg+', degree: 5, threshold: 5 } }, 'secagg.threshold (5) cannot tolerate secagg.maxDropout 0.3 of secagg.degree (5) (it allows at most 3); lower secagg.threshold or secagg.maxDropout'],
  [{ clientsPerRound: 2, secagg: { mode: 'secagg' } }, 'secagg.mode secagg needs 3 to 100000 clients per round, but clientsPerRound is 2'],
  [{ clientsPerRound: 5, secagg: { mode: 'secagg+', degree: 7 } }, 'secagg.degree (7) exceeds clientsPerRound (5): every round would abort'],
  [
    { clientsPerRound: 5, secagg: { mode: 'secagg' } }, // the default maxDropout 0.3: t = 3 of 5 is not above (5 + 1)/2
    'secagg.maxDropout 0.3 leaves no valid threshold for clientsPerRound (5), the neighbourhood of full secagg: the threshold tolerating it, ⌊(1 − 0.3)·5⌋ = 3, must be at least 2 and exceed (5 + 1)/2; lower secagg.maxDropout or use more clients per round',
  ],
  [
    { clientsPerRound: 10, secagg: { mode: 'secagg', maxWeight: 500_000_000 } },
    'secagg.maxWeight (500000000) × clientsPerRound (10) reaches 2^32, so the summed weight would wrap: lower secagg.maxWeight to at most 429496729',
  ],
  [at('strategy.momentum', 0.5), 'strategy.momentum is not an option of fedavg (it takes serverLearningRate, maxWeight)'], // the default strategy is fedavg
  [at('strategy.name', 'fedprox'), 'strategy.proximalMu is required for fedprox'],
  [
    { clientsPerRound: 10, strategy: { name: 'fedmedian' }, secagg: { mode: 'secagg' } },
    "strategy.name fedmedian needs each client's update, but with secagg.mode on the coordinator only sees their masked sum: set secagg.mode off or choose another strategy",
  ],
  [
    { clientsPerRound: 10, strategy: { name: 'krum' }, dp: { mode: 'central' } },
    "strategy.name krum cannot run with dp.mode central: DP's sensitivity analysis assumes the noised sum of clipped updates, not a robust rule over them; set dp.mode off or choose another strategy",
  ],
  [
    { clientsPerRound: 10, strategy: { name: 'qfedavg' }, secagg: { mode: 'secagg' } },
    "strategy.name qfedavg needs each client's update, but with secagg.mode on the coordinator only sees their masked sum: set secagg.mode off or choose another strategy",
  ],
  [
    { clientsPerRound: 10, secagg: { mode: 'secagg' }, federatedEvaluation: {} },
    "federatedEvaluation sends each client's loss and accuracy in the clear, outside the protection of secagg.mode: set federatedEvaluation.allowUnprotectedMetrics to true to accept that, or remove federatedEvaluation",
  ],
  [
    { model: 'cnn', simulation: { dataset: 'digits' } },
    'model cnn needs an image input shape [height, width, channels] of at least 4×4 (it max-pools by 2 twice), but simulation.dataset digits has examples of shape [64]: choose another model or dataset',
  ],
  [
    { model: { builtin: 'mlp', inputShape: [8, 8, 1] }, simulation: { dataset: 'digits' } },
    'model.inputShape [8, 8, 1] does not match simulation.dataset digits, whose examples have shape [64]: simulate feeds them to the model as they are',
  ],
  [{ model: { builtin: 'mlp', numClasses: 2 }, simulation: { dataset: 'iris' } }, 'model.numClasses 2 is fewer than the 3 classes of simulation.dataset iris'],
  [
    { model: 'logreg', simulation: { dataset: 'shakespeare' } },
    'simulation.dataset shakespeare holds windows of character ids, which model logreg would read as feature values: use model char-gru (or a saved model that embeds ids)',
  ],
  [
    { model: 'char-gru', simulation: { dataset: 'digits' } },
    'model char-gru reads character ids, but simulation.dataset digits holds feature values: use simulation.dataset shakespeare, or another model',
  ],
  [
    { simulation: { dataset: 'mnist', partition: { kind: 'natural' } } },
    'simulation.partition kind natural needs examples that have an owner (shakespeare: its speakers; synthetic: its devices), but simulation.dataset mnist has none: choose kind iid, shards, dirichlet or quantity',
  ],
  [
    { simulation: { dataset: 'synthetic', synthetic: { iid: true, alpha: 1 } } },
    'simulation.synthetic.alpha does not apply with simulation.synthetic.iid true: Synthetic-IID gives every device the same model and inputs; drop alpha, or set iid false for Synthetic(alpha, beta)',
  ],
  [
    { simulation: { dataset: 'synthetic', partition: 'iid' } },
    'simulation.partition does not apply to simulation.dataset synthetic: each generated device is one client (the natural partition); set simulation.numClients to change the number of devices',
  ],
];

export const FAULT_STAGES = ['advertise', 'share', 'masked', 'confirm', 'unmask', 'train'] as const;

export const UNKNOWN = 'zzUnknown';
/** Each object level of the config: how to put an unknown key into it, and the prefix of its paths. */
export const LEVELS: readonly { readonly prefix: string; readonly withKey: (key: string) => Record<string, unknown> }[] = [
  { prefix: '', withKey: (key) => ({ [key]: 1 }) },
  ...SECTIONS.map((section) => ({ prefix: `${section}.`, withKey: (key: string) => ({ [section]: { [key]: 1 } }) })),
  { prefix: 'dp.adaptiveClip.', withKey: (key) => ({ dp: { adaptiveClip: { [key]: 1 } } }) },
  { prefix: 'server.limits.', withKey: (key) => ({ server: { limits: { [key]: 1 } } }) },
  { prefix: 'server.retention.', withKey: (key) => ({ server: { retention: { [key]: 1 } } }) },
  { prefix: 'server.tls.', withKey: (key) => ({ server: { tls: { [key]: 1 } } }) },
  { prefix: 'federatedEvaluation.', withKey: (key) => ({ federatedEvaluation: { [key]: 1 } }) },
  { prefix: 'simulation.synthetic.', withKey: (key) => ({ simulation: { synthetic: { [key]: 1 } } }) },
  { prefix: 'model.', withKey: (key) => ({ model: { builtin: 'mlp', [key]: 1 } }) },
  { prefix: 'model.', withKey: (key) => ({ model: { path: 'm.json', [key]: 1 } }) },
];

/** Every key path parseConfig accepts, derived from its own allow-lists. `$schema` is accepted but not listed. */
export function acceptedKeyPaths(): Set<string> {
  const paths = new Set<string>(['$schema']);
  for (const level of LEVELS) for (const path of allowedKeys(level.withKey(UNKNOWN), level.prefix)) paths.add(path);
  return paths;
}


/** Any value a config key might be given, valid or not: the leaves of the property tests' random configs. */
export const CONFIG_LEAF: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 1 }),
  fc.integer({ min: -1, max: 70_000 }),
  fc.double(),
  fc.constantFrom('mlp', 'cnn', 'sgd', 'adam', 'fedavg', 'fedprox', 'fedadam', 'fedyogi', 'fedadagrad', 'fedmedian', 'fedtrimmedavg', 'krum', 'mnist', 'iris', 'iid', 'memory', 'ws', 'off', 'secagg+', 'share', 'train', 'central', 'distributed', 'poisson'),
  fc.constantFrom({ kind: 'shards' }, { kind: 'dirichlet', alpha: 0.5, recipe: 'per-class' }, { kind: 'quantity', sigma: 2 }, { kind: 'quantity', distribution: 'powerlaw', exponent: 1 }, { kind: 'natural' }), // simulation.partition's object form
  fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 3 }),
);
