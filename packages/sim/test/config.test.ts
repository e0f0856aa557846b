import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { PrivacyController } from '@shoal/coordinator';
import { BUILTIN_MODELS, ShoalError } from '@shoal/protocol';
import { createStrategy } from '@shoal/strategy';
import { describe, expect, it } from 'vitest';
// config.js directly, not the package index: the index pulls in tfjs, which this file does not need.
import { applyOverrides, parseConfig, privacyOptions, type ShoalConfig } from '../src/config.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DOC = readFileSync(join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');

/** Runs fn, expects a ShoalError INVALID_CONFIG, and returns its message. */
function configError(fn: () => unknown): string {
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
function at(path: string, value: unknown): Record<string, unknown> {
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
const SECTIONS = ['train', 'strategy', 'server', 'secagg', 'dp', 'faults', 'simulation'] as const;

const DEFAULTS: ShoalConfig = {
  name: 'shoal',
  seed: 0,
  rounds: 10,
  model: { builtin: 'mlp' },
  minClients: 2,
  roundTimeoutMs: 60_000,
  train: { epochs: 1, batchSize: 32, learningRate: 0.05, optimizer: 'sgd' },
  strategy: { name: 'fedavg', serverLearningRate: 1 },
  server: { host: '127.0.0.1', port: 8080, tokens: [], heartbeatIntervalMs: 5_000 },
  secagg: { mode: 'off', maxDropout: 0.3, stageTimeoutMs: 30_000, clipRange: 1, maxWeight: 1_000 },
  dp: { mode: 'off', noiseMultiplier: 1, clipNorm: 1, delta: 1e-5 },
  sampling: 'fixed',
  faults: { dropout: 0 },
  simulation: { dataset: 'mnist', numClients: 20, partition: 'iid', transport: 'memory' },
};

/** The defaults of `dp.adaptiveClip` once it is present (its absence means fixed clipping). */
const ADAPTIVE_CLIP_DEFAULTS = { targetQuantile: 0.5, learningRate: 0.2 };

/** Every key set, none to its default. `fraction` and `model.path` exclude other keys, so they get variants. */
const FULL = {
  $schema: './schema.json',
  description: 'every key',
  name: 'full',
  seed: 7,
  rounds: 3,
  model: { builtin: 'logreg', inputShape: [8, 8, 1], numClasses: 4 },
  clientsPerRound: 5,
  minClients: 3,
  minAvailable: 6,
  roundTimeoutMs: 1_234,
  train: { epochs: 2, batchSize: 16, learningRate: 0.3, optimizer: 'adam' },
  strategy: { name: 'fedavgm', serverLearningRate: 0.5, maxWeight: 100, momentum: 0.25, proximalMu: 0.125 },
  server: { host: '0.0.0.0', port: 9001, tokens: ['a', 'b'], heartbeatIntervalMs: 250, checkpointDir: 'ckpt' },
  secagg: { mode: 'secagg+', threshold: 4, degree: 5, maxDropout: 0.2, stageTimeoutMs: 2_000, clipRange: 0.5, maxWeight: 600 },
  dp: { mode: 'distributed', noiseMultiplier: 0.8, clipNorm: 0.5, adaptiveClip: { targetQuantile: 0.7, learningRate: 0.1, countNoiseStd: 2 }, delta: 1e-6, targetEpsilon: 4 },
  sampling: 'poisson',
  faults: { dropout: 0.1, stage: 'share' },
  simulation: { dataset: 'digits', numClients: 40, partition: 'iid', examplesPerClient: 30, testExamples: 99, transport: 'ws' },
};
const { clientsPerRound: _omitted, ...FULL_WITHOUT_COHORT } = FULL;
// DP needs clientsPerRound (its expected cohort), so the fraction variant turns it off; its other keys stay valid.
const FULL_WITH_FRACTION = { ...FULL_WITHOUT_COHORT, fraction: 0.25, dp: { ...FULL.dp, mode: 'off' } };
const FULL_WITH_SAVED_MODEL = { ...FULL, model: { path: 'models/model.json' } };

/** Every dotted key path of a config object (sections and leaves; arrays are leaves). */
function keyPaths(value: unknown, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  return Object.entries(value).flatMap(([key, child]) => [`${prefix}${key}`, ...keyPaths(child, `${prefix}${key}.`)]);
}

/** The keys parseConfig accepts in one object, read from the "(allowed: ...)" list of its unknown-key error. */
function allowedKeys(raw: Record<string, unknown>, prefix: string): string[] {
  const message = configError(() => parseConfig(raw));
  const match = /\(allowed: ([^)]*)\)/.exec(message);
  expect(match, message).not.toBeNull();
  return match![1]!.split(', ').map((key) => `${prefix}${key}`);
}

/** One example of each cross-key rule: every value is valid alone, together they are rejected. The doc quotes each message. */
const CROSS_KEY_EXAMPLES: readonly (readonly [Record<string, unknown>, string])[] = [
  [{ clientsPerRound: 1 }, 'clientsPerRound (1) must be at least minClients (2)'], // the default minClients counts too
  [{ clientsPerRound: 4, fraction: 0.5 }, 'give clientsPerRound or fraction, not both'],
  [at('faults.stage', 'share'), 'faults.stage share is a secure-aggregation stage, but secagg.mode is off'], // the default mode is off
  [at('secagg.threshold', 3), 'secagg.threshold and secagg.degree need secagg.mode secagg or secagg+'],
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
];

const FAULT_STAGES = ['advertise', 'share', 'masked', 'unmask', 'train'] as const;

const UNKNOWN = 'zzUnknown';
/** Each object level of the config: how to put an unknown key into it, and the prefix of its paths. */
const LEVELS: readonly { readonly prefix: string; readonly withKey: (key: string) => Record<string, unknown> }[] = [
  { prefix: '', withKey: (key) => ({ [key]: 1 }) },
  ...SECTIONS.map((section) => ({ prefix: `${section}.`, withKey: (key: string) => ({ [section]: { [key]: 1 } }) })),
  { prefix: 'dp.adaptiveClip.', withKey: (key) => ({ dp: { adaptiveClip: { [key]: 1 } } }) },
  { prefix: 'model.', withKey: (key) => ({ model: { builtin: 'mlp', [key]: 1 } }) },
  { prefix: 'model.', withKey: (key) => ({ model: { path: 'm.json', [key]: 1 } }) },
];

/** Every key path parseConfig accepts, derived from its own allow-lists. `$schema` is accepted but not listed. */
function acceptedKeyPaths(): Set<string> {
  const paths = new Set<string>(['$schema']);
  for (const level of LEVELS) for (const path of allowedKeys(level.withKey(UNKNOWN), level.prefix)) paths.add(path);
  return paths;
}

describe('parseConfig: defaults', () => {
  it('fills in every default for an empty config', () => {
    expect(parseConfig({})).toEqual(DEFAULTS);
  });

  it('names the run after the given default name unless the config names it', () => {
    expect(parseConfig({}, 'quickstart').name).toBe('quickstart');
    expect(parseConfig({ name: 'mine' }, 'quickstart').name).toBe('mine');
  });

  it('lists in SECTIONS every section parseConfig fills in', () => {
    const sections = Object.entries(parseConfig({})).filter(([key, value]) => key !== 'model' && typeof value === 'object').map(([key]) => key);
    expect(sections.sort()).toEqual([...SECTIONS].sort());
  });

  it('treats null like an absent key, at every level', () => {
    const keysNull = {
      name: null, seed: null, model: null, clientsPerRound: null, fraction: null, train: null,
      strategy: { maxWeight: null, momentum: null }, server: { checkpointDir: null },
      secagg: { mode: null, threshold: null, degree: null, maxDropout: null },
      dp: { mode: null, noiseMultiplier: null, clipNorm: null, adaptiveClip: null, delta: null, targetEpsilon: null }, sampling: null,
      faults: { dropout: null, stage: null },
      simulation: { examplesPerClient: null },
    };
    expect(parseConfig(keysNull)).toEqual(DEFAULTS);
    const sectionsNull = Object.fromEntries(SECTIONS.map((section) => [section, null]));
    expect(parseConfig(sectionsNull)).toEqual(DEFAULTS);
  });

  it('turns adaptive clipping on when dp.adaptiveClip is present, even empty or all null, with its defaults', () => {
    expect(parseConfig({}).dp).not.toHaveProperty('adaptiveClip');
    expect(parseConfig(at('dp.adaptiveClip', null)).dp).not.toHaveProperty('adaptiveClip');
    expect(parseConfig(at('dp.adaptiveClip', {})).dp.adaptiveClip).toStrictEqual(ADAPTIVE_CLIP_DEFAULTS);
    const allNull = { targetQuantile: null, learningRate: null, countNoiseStd: null };
    expect(parseConfig(at('dp.adaptiveClip', allNull)).dp.adaptiveClip).toStrictEqual(ADAPTIVE_CLIP_DEFAULTS);
    expect(parseConfig(at('dp.adaptiveClip.countNoiseStd', 3)).dp.adaptiveClip).toStrictEqual({ ...ADAPTIVE_CLIP_DEFAULTS, countNoiseStd: 3 });
  });

  it('keeps every value of a fully specified config', () => {
    expect(parseConfig(FULL)).toEqual({
      name: 'full',
      seed: 7,
      rounds: 3,
      model: { builtin: 'logreg', inputShape: [8, 8, 1], numClasses: 4 },
      clientsPerRound: 5,
      minClients: 3,
      minAvailable: 6,
      roundTimeoutMs: 1_234,
      train: { epochs: 2, batchSize: 16, learningRate: 0.3, optimizer: 'adam' },
      strategy: { name: 'fedavgm', serverLearningRate: 0.5, maxWeight: 100, momentum: 0.25, proximalMu: 0.125 },
      server: { host: '0.0.0.0', port: 9001, tokens: ['a', 'b'], heartbeatIntervalMs: 250, checkpointDir: 'ckpt' },
      secagg: { mode: 'secagg+', threshold: 4, degree: 5, maxDropout: 0.2, stageTimeoutMs: 2_000, clipRange: 0.5, maxWeight: 600 },
      dp: { mode: 'distributed', noiseMultiplier: 0.8, clipNorm: 0.5, adaptiveClip: { targetQuantile: 0.7, learningRate: 0.1, countNoiseStd: 2 }, delta: 1e-6, targetEpsilon: 4 },
      sampling: 'poisson',
      faults: { dropout: 0.1, stage: 'share' },
      simulation: { dataset: 'digits', numClients: 40, partition: 'iid', examplesPerClient: 30, testExamples: 99, transport: 'ws' },
    });
    expect(parseConfig(FULL_WITH_FRACTION).fraction).toBe(0.25);
    expect(parseConfig(FULL_WITH_FRACTION).dp).toEqual({ ...FULL.dp, mode: 'off' });
    expect(parseConfig(FULL_WITH_SAVED_MODEL).model).toEqual({ path: 'models/model.json' });
  });

  it('reads a model name string as a built-in model', () => {
    for (const name of BUILTIN_MODELS) expect(parseConfig({ model: name }).model).toEqual({ builtin: name });
  });

  it('accepts the documented range boundaries', () => {
    const edges = [
      at('seed', 0),
      at('rounds', 1),
      at('fraction', 1),
      at('minClients', 1),
      { model: { builtin: 'mlp', numClasses: 2 } },
      { model: { builtin: 'cnn', inputShape: [1] } },
      at('strategy.momentum', 0),
      at('strategy.proximalMu', 0),
      at('server.port', 0),
      at('server.port', 65_535),
      at('server.heartbeatIntervalMs', 10),
      at('roundTimeoutMs', 1),
      { clientsPerRound: 2, minClients: 2 },
      { secagg: { mode: 'secagg', threshold: 2 } },
      { secagg: { mode: 'secagg+', degree: 3 } },
      at('secagg.maxDropout', 0),
      at('secagg.maxDropout', 0.999),
      at('secagg.stageTimeoutMs', 1),
      at('secagg.maxWeight', 1),
      at('faults.dropout', 0),
      at('faults.dropout', 1),
      at('dp.noiseMultiplier', 0),
      at('dp.clipNorm', 1e-9),
      at('dp.adaptiveClip.targetQuantile', 0),
      at('dp.adaptiveClip.targetQuantile', 1),
      at('dp.adaptiveClip.learningRate', 1e-9),
      at('dp.adaptiveClip.countNoiseStd', 0),
      at('dp.delta', 1e-300),
      at('dp.delta', 0.999),
      at('dp.targetEpsilon', 1e-9),
      { clientsPerRound: 2, dp: { mode: 'central' } },
      { clientsPerRound: 2, dp: { mode: 'distributed' }, secagg: { mode: 'secagg' } },
      at('sampling', 'poisson'),
    ];
    for (const raw of edges) expect(() => parseConfig(raw), JSON.stringify(raw)).not.toThrow();
  });
});

describe('parseConfig: unknown keys', () => {
  it.each(LEVELS.map((level, index) => [index, level] as const))('rejects an unknown key in level %i, naming its full path', (_index, level) => {
    const message = configError(() => parseConfig(level.withKey(UNKNOWN)));
    expect(message).toContain(`unknown key ${level.prefix}${UNKNOWN} (allowed: `);
  });

  it('rejects a built-in model key next to model.path', () => {
    expect(configError(() => parseConfig({ model: { path: 'm.json', builtin: 'mlp' } }))).toContain('unknown key model.builtin (allowed: path)');
  });

  it('names any unknown key at any level (property)', () => {
    const accepted = acceptedKeyPaths();
    fc.assert(
      fc.property(fc.constantFrom(...LEVELS), fc.string({ minLength: 1 }), (level, key) => {
        fc.pre(!accepted.has(`${level.prefix}${key}`) && key !== 'path');
        expect(configError(() => parseConfig(level.withKey(key)))).toContain(`unknown key ${level.prefix}${key} (allowed: `);
      }),
    );
  });
});

describe('parseConfig: bad values', () => {
  // [key path, bad value, text the message must contain besides the key path]
  const cases: readonly (readonly [string, unknown, string])[] = [
    ['name', '', 'must be a non-empty string'],
    ['name', 5, 'must be a non-empty string'],
    ['seed', -1, 'must be an integer in [0, ∞], got -1'],
    ['seed', 1.5, 'must be an integer'],
    ['seed', '1', 'must be an integer'],
    ['rounds', 0, 'must be an integer in [1, ∞], got 0'],
    ['rounds', 'ten', 'must be an integer'],
    ['model', 'resnet', 'must be one of logreg, mlp, 2nn, cnn, got "resnet"'],
    ['model', 5, 'must be an object'],
    ['model', [], 'must be an object'],
    ['model.builtin', 'resnet', 'must be one of logreg, mlp, 2nn, cnn'],
    ['model.inputShape', [], 'must be a non-empty array of positive integers'],
    ['model.inputShape', 'x', 'must be a non-empty array of positive integers'],
    ['model.inputShape[1]', [4, 0], 'must be an integer in [1, ∞], got 0'],
    ['model.inputShape[0]', [1.5], 'must be an integer'],
    ['model.numClasses', 1, 'must be an integer in [2, ∞], got 1'],
    ['model.path', '', 'must be a non-empty string'],
    ['model.path', 3, 'must be a non-empty string'],
    ['clientsPerRound', 0, 'must be an integer in [1, ∞]'],
    ['clientsPerRound', 2.5, 'must be an integer'],
    ['fraction', 0, 'must be a number in (0, 1], got 0'],
    ['fraction', 1.5, 'must be a number in (0, 1]'],
    ['fraction', '0.5', 'must be a number in (0, 1]'],
    ['minClients', 0, 'must be an integer in [1, ∞]'],
    ['minAvailable', 0, 'must be an integer in [1, ∞]'],
    ['roundTimeoutMs', 0, 'must be an integer in [1, ∞]'],
    ['roundTimeoutMs', 1e3 + 0.5, 'must be an integer'],
    ['train', 'fast', 'must be an object'],
    ['train', [], 'must be an object'],
    ['train.epochs', 0, 'must be an integer in [1, ∞]'],
    ['train.batchSize', 1.5, 'must be an integer'],
    ['train.learningRate', 0, 'must be a number positive, got 0'],
    ['train.learningRate', -1, 'must be a number positive'],
    ['train.learningRate', Infinity, 'must be a number positive'],
    ['train.learningRate', Number.NaN, 'must be a number positive'],
    ['train.optimizer', 'rmsprop', 'must be one of sgd, adam, got "rmsprop"'],
    ['strategy', 'fedavg', 'must be an object'],
    ['strategy.name', 'fedyogi', 'must be one of fedavg, fedavgm, fedprox'],
    ['strategy.serverLearningRate', 0, 'must be a number positive'],
    ['strategy.maxWeight', 0, 'must be a number positive'],
    ['strategy.momentum', 1, 'must be a number in [0, 1), got 1'],
    ['strategy.momentum', -0.1, 'must be a number in [0, 1)'],
    ['strategy.proximalMu', -1, 'must be a number non-negative'],
    ['server', true, 'must be an object'],
    ['server.host', '', 'must be a non-empty string'],
    ['server.port', -1, 'must be an integer in [0, 65535], got -1'],
    ['server.port', 65_536, 'must be an integer in [0, 65535]'],
    ['server.port', 80.5, 'must be an integer in [0, 65535]'],
    ['server.tokens', 'abc', 'must be an array of strings'],
    ['server.tokens[1]', ['ok', ''], 'must be a non-empty string'],
    ['server.tokens[0]', [7], 'must be a non-empty string'],
    ['server.heartbeatIntervalMs', 9, 'must be an integer in [10, ∞]'],
    ['server.checkpointDir', '', 'must be a non-empty string'],
    ['secagg', 'secagg+', 'must be an object'],
    ['secagg', [], 'must be an object'],
    ['secagg.mode', 'on', 'must be one of off, secagg, secagg+, got "on"'],
    ['secagg.mode', true, 'must be one of off, secagg, secagg+, got true'],
    ['secagg.mode', 'SecAgg', 'must be one of off, secagg, secagg+'],
    ['secagg.threshold', 1, 'must be an integer in [2, ∞], got 1'],
    ['secagg.threshold', 2.5, 'must be an integer'],
    ['secagg.threshold', '3', 'must be an integer'],
    ['secagg.degree', 2, 'must be an integer in [3, ∞], got 2'],
    ['secagg.degree', 5.5, 'must be an integer'],
    ['secagg.maxDropout', 1, 'must be a number in [0, 1), got 1'],
    ['secagg.maxDropout', -0.1, 'must be a number in [0, 1)'],
    ['secagg.maxDropout', '0.3', 'must be a number in [0, 1)'],
    ['secagg.stageTimeoutMs', 0, 'must be an integer in [1, ∞], got 0'],
    ['secagg.stageTimeoutMs', 1.5, 'must be an integer'],
    ['secagg.clipRange', 0, 'must be a number positive, got 0'],
    ['secagg.clipRange', -1, 'must be a number positive'],
    ['secagg.clipRange', Infinity, 'must be a number positive'],
    ['secagg.maxWeight', 0, 'must be an integer in [1, ∞], got 0'],
    ['secagg.maxWeight', 10.5, 'must be an integer'],
    ['dp', 'central', 'must be an object'],
    ['dp', [], 'must be an object'],
    ['dp.mode', 'on', 'must be one of off, central, distributed, got "on"'],
    ['dp.mode', true, 'must be one of off, central, distributed, got true'],
    ['dp.mode', 'local', 'must be one of off, central, distributed'],
    ['dp.noiseMultiplier', -0.1, 'must be a number non-negative, got -0.1'],
    ['dp.noiseMultiplier', Infinity, 'must be a number non-negative'],
    ['dp.noiseMultiplier', '1', 'must be a number non-negative'],
    ['dp.clipNorm', 0, 'must be a number positive, got 0'],
    ['dp.clipNorm', -1, 'must be a number positive'],
    ['dp.clipNorm', Number.NaN, 'must be a number positive'],
    ['dp.adaptiveClip', true, 'must be an object'],
    ['dp.adaptiveClip', [], 'must be an object'],
    ['dp.adaptiveClip', 0.5, 'must be an object'],
    ['dp.adaptiveClip.targetQuantile', 1.5, 'must be a number in [0, 1], got 1.5'],
    ['dp.adaptiveClip.targetQuantile', -0.1, 'must be a number in [0, 1]'],
    ['dp.adaptiveClip.targetQuantile', '0.5', 'must be a number in [0, 1]'],
    ['dp.adaptiveClip.learningRate', 0, 'must be a number positive, got 0'],
    ['dp.adaptiveClip.learningRate', -0.2, 'must be a number positive'],
    ['dp.adaptiveClip.countNoiseStd', -1, 'must be a number non-negative, got -1'],
    ['dp.adaptiveClip.countNoiseStd', Infinity, 'must be a number non-negative'],
    ['dp.delta', 0, 'must be a number in (0, 1), got 0'],
    ['dp.delta', 1, 'must be a number in (0, 1), got 1'],
    ['dp.delta', '1e-5', 'must be a number in (0, 1)'],
    ['dp.targetEpsilon', 0, 'must be a number positive, got 0'],
    ['dp.targetEpsilon', -3, 'must be a number positive'],
    ['dp.targetEpsilon', Infinity, 'must be a number positive'],
    ['sampling', 'uniform', 'must be one of fixed, poisson, got "uniform"'],
    ['sampling', 1, 'must be one of fixed, poisson, got 1'],
    ['sampling', 'Poisson', 'must be one of fixed, poisson'],
    ['faults', 0.1, 'must be an object'],
    ['faults.dropout', 1.5, 'must be a number in [0, 1], got 1.5'],
    ['faults.dropout', -0.1, 'must be a number in [0, 1]'],
    ['faults.dropout', Number.NaN, 'must be a number in [0, 1]'],
    ['faults.dropout', true, 'must be a number in [0, 1]'],
    ['faults.stage', 'mask', 'must be one of advertise, share, masked, unmask, train, got "mask"'],
    ['faults.stage', 3, 'must be one of advertise, share, masked, unmask, train'],
    ['simulation', 1, 'must be an object'],
    ['simulation.dataset', 'cifar', 'must be one of mnist, digits, iris'],
    ['simulation.numClients', 0, 'must be an integer in [1, ∞]'],
    ['simulation.partition', 'dirichlet', 'must be one of iid'],
    ['simulation.examplesPerClient', 0, 'must be an integer in [1, ∞]'],
    ['simulation.testExamples', -5, 'must be an integer in [1, ∞]'],
    ['simulation.transport', 'tcp', 'must be one of memory, ws'],
  ];

  it.each(cases)('rejects %s = %j, naming the key', (path, value, expected) => {
    const location = path.replace(/\[\d+\]$/, ''); // model.inputShape[1] sits at model.inputShape
    const raw = location === 'model.path' || location.startsWith('model.inputShape') || location === 'model.numClasses'
      ? { model: { ...(location === 'model.path' ? {} : { builtin: 'mlp' }), [location.slice('model.'.length)]: value } }
      : at(location, value);
    const message = configError(() => parseConfig(raw));
    expect(message).toContain(`config: ${path} ${expected}`);
  });

  it('rejects a non-object config', () => {
    for (const raw of [null, 3, 'x', [], true]) expect(configError(() => parseConfig(raw))).toContain('(config) must be an object');
  });

  it('rejects clientsPerRound below minClients', () => {
    expect(configError(() => parseConfig({ clientsPerRound: 2, minClients: 3 }))).toContain('clientsPerRound (2) must be at least minClients (3)');
    // The default minClients (2) counts too.
    expect(configError(() => parseConfig({ clientsPerRound: 1 }))).toContain('clientsPerRound (1) must be at least minClients (2)');
  });

  it('rejects clientsPerRound and fraction together', () => {
    expect(configError(() => parseConfig({ clientsPerRound: 4, fraction: 0.5 }))).toContain('give clientsPerRound or fraction, not both');
  });

  it.each(CROSS_KEY_EXAMPLES)('rejects %j with the message the doc quotes', (raw, expected) => {
    expect(configError(() => parseConfig(raw))).toBe(`config: ${expected}`);
  });

  it('rejects a secure-aggregation faults.stage unless secagg.mode is on; train goes with any mode', () => {
    for (const mode of [undefined, 'off', 'secagg', 'secagg+'] as const) {
      for (const stage of FAULT_STAGES) {
        const raw = { ...(mode === undefined ? {} : { secagg: { mode } }), faults: { dropout: 0.5, stage } };
        const label = JSON.stringify(raw);
        if ((mode === undefined || mode === 'off') && stage !== 'train') {
          expect(configError(() => parseConfig(raw)), label).toBe(`config: faults.stage ${stage} is a secure-aggregation stage, but secagg.mode is off`);
        } else {
          expect(parseConfig(raw).faults, label).toEqual({ dropout: 0.5, stage });
        }
      }
      // With no stage, a dropout stage is drawn per client at run time, so any mode goes.
      expect(() => parseConfig({ secagg: { mode }, faults: { dropout: 1 } })).not.toThrow();
    }
  });

  it('rejects dp on without clientsPerRound, and distributed dp without secure aggregation', () => {
    const cohorts = [{}, { clientsPerRound: 10 }, { fraction: 0.5 }];
    for (const dpMode of [undefined, 'off', 'central', 'distributed'] as const) {
      for (const secaggMode of [undefined, 'off', 'secagg', 'secagg+'] as const) {
        for (const cohort of cohorts) {
          const raw = { ...cohort, ...(dpMode === undefined ? {} : { dp: { mode: dpMode } }), ...(secaggMode === undefined ? {} : { secagg: { mode: secaggMode } }) };
          const label = JSON.stringify(raw);
          const dpOn = dpMode === 'central' || dpMode === 'distributed';
          const secaggOn = secaggMode === 'secagg' || secaggMode === 'secagg+';
          if (dpOn && !('clientsPerRound' in cohort)) {
            expect(configError(() => parseConfig(raw)), label).toBe(`config: dp.mode ${dpMode} needs clientsPerRound: the expected cohort size is DP-FedAvg's fixed denominator`);
          } else if (dpMode === 'distributed' && !secaggOn) {
            expect(configError(() => parseConfig(raw)), label).toBe('config: dp.mode distributed needs secagg.mode secagg or secagg+: without it the coordinator sees each noised update');
          } else {
            expect(parseConfig(raw).dp.mode, label).toBe(dpMode ?? 'off');
          }
        }
      }
    }
  });
});

describe('privacyOptions (the coordinator\'s dp and sampling options)', () => {
  it('leaves dp out while dp.mode is off, whatever the other dp keys say, but always passes sampling', () => {
    expect(privacyOptions(parseConfig({}))).toStrictEqual({ sampling: 'fixed' });
    expect(privacyOptions(parseConfig(FULL_WITH_FRACTION))).toStrictEqual({ sampling: 'poisson' });
  });

  it('passes every dp key that is set, and no key that is not', () => {
    expect(privacyOptions(parseConfig(FULL))).toStrictEqual({
      sampling: 'poisson',
      dp: { mode: 'distributed', noiseMultiplier: 0.8, clipNorm: 0.5, adaptiveClip: { targetQuantile: 0.7, learningRate: 0.1, countNoiseStd: 2 }, delta: 1e-6, targetEpsilon: 4 },
    });
    expect(privacyOptions(parseConfig({ clientsPerRound: 10, dp: { mode: 'central' } }))).toStrictEqual({
      sampling: 'fixed',
      dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1, delta: 1e-5 },
    });
  });
});

describe('applyOverrides (--set key.path=value)', () => {
  it('creates missing objects along the path', () => {
    expect(applyOverrides({}, ['strategy.momentum=0.5', 'simulation.dataset=iris'])).toEqual({ strategy: { momentum: 0.5 }, simulation: { dataset: 'iris' } });
  });

  it('parses the value as JSON when it can, else keeps the string', () => {
    const raw = applyOverrides({}, [
      'rounds=3',
      'train.learningRate=1e-2',
      'model.inputShape=[8,8,1]',
      'server.tokens=["a","b"]',
      'model.builtin=cnn',
      'name="42"',
      'description=42',
      'server.host=0.0.0.0',
      'minAvailable=null',
      'simulation.transport=ws',
    ]);
    expect(raw).toEqual({
      rounds: 3,
      train: { learningRate: 0.01 },
      model: { inputShape: [8, 8, 1], builtin: 'cnn' },
      server: { tokens: ['a', 'b'], host: '0.0.0.0' },
      name: '42',
      description: 42,
      minAvailable: null,
      simulation: { transport: 'ws' },
    });
  });

  it('splits at the first "=" only', () => {
    expect(applyOverrides({}, ['name=a=b'])).toEqual({ name: 'a=b' });
  });

  it('keeps existing keys, lets later assignments win, and leaves its input unchanged', () => {
    const file = { rounds: 10, train: { epochs: 2, batchSize: 8 } };
    const snapshot = structuredClone(file);
    expect(applyOverrides(file, ['train.epochs=3', 'train.epochs=4', 'rounds=1'])).toEqual({ rounds: 1, train: { epochs: 4, batchSize: 8 } });
    expect(file).toEqual(snapshot);
  });

  it('feeds parseConfig like the file does: overridden values are validated and unknown keys rejected', () => {
    const config = parseConfig(applyOverrides({ rounds: 10 }, ['rounds=2', 'train.optimizer=adam', 'model=logreg']));
    expect([config.rounds, config.train.optimizer, config.model]).toEqual([2, 'adam', { builtin: 'logreg' }]);
    expect(configError(() => parseConfig(applyOverrides({}, ['train.lr=0.1'])))).toContain('unknown key train.lr');
    expect(configError(() => parseConfig(applyOverrides({}, ['name=2024'])))).toContain('name must be a non-empty string');
    expect(parseConfig(applyOverrides({ minAvailable: 4 }, ['minAvailable=null'])).minAvailable).toBeUndefined();
  });

  it('rejects an assignment without "=" or without a key', () => {
    expect(configError(() => applyOverrides({}, ['rounds']))).toContain('--set expects key.path=value, got "rounds"');
    expect(configError(() => applyOverrides({}, ['=5']))).toContain('--set expects key.path=value, got "=5"');
  });

  it('rejects setting a key through something that is not an object', () => {
    expect(configError(() => applyOverrides({ model: 'mlp' }, ['model.builtin=cnn']))).toContain('--set model.builtin=cnn: model is not an object');
    expect(configError(() => applyOverrides({ server: { tokens: ['a'] } }, ['server.tokens.first=b']))).toContain('tokens is not an object');
    expect(configError(() => applyOverrides({ rounds: 3 }, ['rounds.max=4']))).toContain('rounds is not an object');
  });

  it('rejects a config that is not an object', () => {
    expect(configError(() => applyOverrides([], ['rounds=1']))).toContain('(config) must be an object');
  });
});

describe('parseConfig on arbitrary input (property)', () => {
  const leaf = fc.oneof(
    fc.jsonValue({ maxDepth: 1 }),
    fc.integer({ min: -1, max: 70_000 }),
    fc.double(),
    fc.constantFrom('mlp', 'cnn', 'sgd', 'adam', 'fedavg', 'fedprox', 'mnist', 'iris', 'iid', 'memory', 'ws', 'off', 'secagg+', 'share', 'train', 'central', 'distributed', 'poisson'),
    fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 3 }),
  );
  /** Mostly a value the key accepts, sometimes anything: so some configs parse and the rest fail at varied checks. */
  const mostly = (valid: fc.Arbitrary<unknown>) => fc.oneof({ weight: 12, arbitrary: valid }, { weight: 1, arbitrary: leaf });
  const int = (min: number, max = 1_000) => fc.integer({ min, max });
  const positive = fc.double({ min: 1e-6, max: 10, noNaN: true });
  const text = fc.string({ minLength: 1, maxLength: 8 });
  /** An object of optional keys, sometimes with one random extra key. */
  const objectOf = (shape: Record<string, fc.Arbitrary<unknown>>) =>
    fc
      .record(shape, { requiredKeys: [] })
      .chain((raw) =>
        fc
          .oneof({ weight: 19, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.tuple(fc.string(), leaf) })
          .map((extra) => (extra ? { ...raw, [extra[0]]: extra[1] } : raw)),
      );
  const sectionOf = (shape: Record<string, fc.Arbitrary<unknown>>) => mostly(objectOf(shape));
  const config = objectOf({
    name: mostly(text),
    seed: mostly(int(0)),
    rounds: mostly(int(1)),
    model: mostly(
      fc.oneof(
        fc.constantFrom(...BUILTIN_MODELS),
        objectOf({ builtin: mostly(fc.constantFrom(...BUILTIN_MODELS)), inputShape: mostly(fc.array(int(1, 30), { minLength: 1, maxLength: 3 })), numClasses: mostly(int(2)) }),
        objectOf({ path: mostly(text) }),
      ),
    ),
    clientsPerRound: mostly(int(1, 20)),
    fraction: mostly(fc.double({ min: 0.01, max: 1, noNaN: true })),
    minClients: mostly(int(1, 20)),
    minAvailable: mostly(int(1)),
    roundTimeoutMs: mostly(int(1, 100_000)),
    train: sectionOf({ epochs: mostly(int(1)), batchSize: mostly(int(1)), learningRate: mostly(positive), optimizer: mostly(fc.constantFrom('sgd', 'adam')) }),
    strategy: sectionOf({
      name: mostly(fc.constantFrom('fedavg', 'fedavgm', 'fedprox')),
      serverLearningRate: mostly(positive),
      maxWeight: mostly(positive),
      momentum: mostly(fc.double({ min: 0, max: 0.99, noNaN: true })),
      proximalMu: mostly(fc.double({ min: 0, max: 1, noNaN: true })),
    }),
    server: sectionOf({ host: mostly(text), port: mostly(int(0, 65_535)), tokens: mostly(fc.array(text, { maxLength: 3 })), heartbeatIntervalMs: mostly(int(10)), checkpointDir: mostly(text) }),
    secagg: sectionOf({
      mode: mostly(fc.constantFrom('off', 'secagg', 'secagg+')),
      threshold: mostly(int(2, 50)),
      degree: mostly(int(3, 51)),
      maxDropout: mostly(fc.double({ min: 0, max: 0.99, noNaN: true })),
      stageTimeoutMs: mostly(int(1, 100_000)),
      clipRange: mostly(positive),
      maxWeight: mostly(int(1, 10_000)),
    }),
    // Drawn independently of clientsPerRound and secagg.mode, so some configs break the dp cross-key rules.
    dp: sectionOf({
      mode: mostly(fc.constantFrom('off', 'central', 'distributed')),
      noiseMultiplier: mostly(fc.double({ min: 0, max: 5, noNaN: true })),
      clipNorm: mostly(positive),
      adaptiveClip: mostly(
        objectOf({
          targetQuantile: mostly(fc.double({ min: 0, max: 1, noNaN: true })),
          learningRate: mostly(positive),
          countNoiseStd: mostly(fc.double({ min: 0, max: 10, noNaN: true })),
        }),
      ),
      delta: mostly(fc.double({ min: 1e-12, max: 0.5, noNaN: true })),
      targetEpsilon: mostly(positive),
    }),
    sampling: mostly(fc.constantFrom('fixed', 'poisson')),
    // Drawn independently of secagg.mode, so some configs break the faults.stage cross-key rule.
    faults: sectionOf({ dropout: mostly(fc.double({ min: 0, max: 1, noNaN: true })), stage: mostly(fc.constantFrom(...FAULT_STAGES)) }),
    simulation: sectionOf({
      dataset: mostly(fc.constantFrom('mnist', 'digits', 'iris')),
      numClients: mostly(int(1)),
      partition: mostly(fc.constant('iid')),
      examplesPerClient: mostly(int(1)),
      testExamples: mostly(int(1)),
      transport: mostly(fc.constantFrom('memory', 'ws')),
    }),
  });

  /** Parses, or checks that the only failure is INVALID_CONFIG with a "config:" message. */
  function parsesOrRejects(raw: unknown): boolean {
    try {
      parseConfig(raw);
      return true;
    } catch (error) {
      expect(error).toBeInstanceOf(ShoalError);
      expect((error as ShoalError).code).toBe('INVALID_CONFIG');
      expect((error as ShoalError).message).toMatch(/^config: /);
      return false;
    }
  }

  it('random JSON values either parse or throw INVALID_CONFIG', () => {
    fc.assert(fc.property(fc.jsonValue(), (raw) => void parsesOrRejects(raw)), { numRuns: 300 });
  });

  it('random configs near the schema either parse or throw INVALID_CONFIG, and some parse', () => {
    let parsed = 0;
    fc.assert(
      fc.property(config, (raw) => {
        if (parsesOrRejects(raw)) parsed++;
      }),
      { numRuns: 2_000 },
    );
    // Guards the generator: a property where nothing ever parses would test only the first check.
    expect(parsed).toBeGreaterThan(0);
  });

  it('random --set assignments either apply or throw INVALID_CONFIG', () => {
    const segment = fc.oneof(fc.constantFrom('rounds', 'train', 'epochs', 'model', 'server', 'tokens', '__proto__', 'constructor'), fc.string());
    const assignment = fc.oneof(
      fc.tuple(fc.array(segment, { minLength: 1, maxLength: 3 }), fc.oneof(fc.json(), fc.string())).map(([path, value]) => `${path.join('.')}=${value}`),
      fc.string(),
    );
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('rounds', 'train', 'model', 'server'), leaf), fc.array(assignment, { maxLength: 4 }), (raw, assignments) => {
        let applied: unknown;
        try {
          applied = applyOverrides(raw, assignments);
        } catch (error) {
          expect(error).toBeInstanceOf(ShoalError);
          expect((error as ShoalError).code).toBe('INVALID_CONFIG');
          return;
        }
        parsesOrRejects(applied);
      }),
      { numRuns: 500 },
    );
  });
});

describe('docs/configuration.md stays in step with parseConfig', () => {
  const accepted = acceptedKeyPaths();

  /** The cells of the rows of every table whose first column is headed "Key", the key path unquoted. */
  function keyTableRows(): string[][] {
    const rows: string[][] = [];
    let inKeyTable = false;
    for (const line of DOC.split('\n')) {
      if (!line.startsWith('|')) {
        inKeyTable = false;
        continue;
      }
      if (line.startsWith('| Key |')) inKeyTable = true;
      const cells = line.slice(1, -1).split(' | ').map((cell) => cell.trim());
      const key = /^`([^`]+)`$/.exec(cells[0] ?? '');
      if (inKeyTable && key) rows.push([key[1]!, ...cells.slice(1)]);
    }
    return rows;
  }

  it('the fully specified test configs cover exactly the accepted keys', () => {
    const covered = new Set([...keyPaths(FULL), ...keyPaths(FULL_WITH_FRACTION), ...keyPaths(FULL_WITH_SAVED_MODEL)]);
    expect([...covered].sort()).toEqual([...accepted].sort());
  });

  it('documents every accepted key path in backticks', () => {
    const missing = [...accepted].filter((path) => !DOC.includes(`\`${path}\``));
    expect(missing).toEqual([]);
  });

  it('documents each accepted key in exactly one table row, and no key that is not accepted', () => {
    const documented = keyTableRows().map((cells) => cells[0]!);
    expect(documented.filter((key) => !accepted.has(key))).toEqual([]);
    expect([...documented].sort()).toEqual([...accepted].sort());
  });

  it('documents the defaults parseConfig fills in', () => {
    const rows = new Map(keyTableRows().map((cells) => [cells[0]!, cells[2] ?? ''] as const));
    const leaves: [string, unknown][] = [
      ['seed', DEFAULTS.seed], ['rounds', DEFAULTS.rounds], ['model', 'mlp'], ['minClients', DEFAULTS.minClients], ['roundTimeoutMs', DEFAULTS.roundTimeoutMs],
      ['sampling', DEFAULTS.sampling],
      ...SECTIONS.flatMap((section) => Object.entries(DEFAULTS[section]).map(([k, v]) => [`${section}.${k}`, v] as [string, unknown])),
      ...Object.entries(ADAPTIVE_CLIP_DEFAULTS).map(([k, v]) => [`dp.adaptiveClip.${k}`, v] as [string, unknown]),
      ['strategy.momentum', 0.9], // applied by createStrategy for fedavgm, not by parseConfig
    ];
    for (const [key, value] of leaves) expect(rows.get(key), key).toContain(`\`${JSON.stringify(value)}\``);
  });

  it('says for every section which command reads it', () => {
    const section = /\n## Which command reads what\n([\s\S]*?)\n## /.exec(DOC)?.[1] ?? '';
    const rows = section.split('\n').filter((line) => line.startsWith('| '));
    expect(rows.length, 'the "Which command reads what" table').toBeGreaterThan(2);
    for (const name of SECTIONS) expect(rows.some((row) => row.includes(`\`${name}.`)), name).toBe(true);
  });

  it('quotes an example of each cross-key rule as parseConfig words it', () => {
    const unquoted = CROSS_KEY_EXAMPLES.map(([, message]) => `\`config: ${message}\``).filter((quote) => !DOC.includes(quote));
    expect(unquoted).toEqual([]);
  });

  /**
   * Parses a config as `serve` and `simulate` start from it: parseConfig, then createStrategy, then,
   * with dp on, the coordinator's own privacy checks (e.g. adaptive clipping needs
   * countNoiseStd > noiseMultiplier / 2). Returns whether dp is on.
   */
  function expectRunnable(raw: unknown, label: string, defaultName?: string): boolean {
    const config = parseConfig(raw, defaultName);
    expect(() => createStrategy(config.strategy), label).not.toThrow();
    const { dp } = privacyOptions(config);
    if (dp === undefined) return false;
    expect(() => new PrivacyController(dp, config.clientsPerRound!, config.minClients, config.secagg.mode !== 'off'), label).not.toThrow();
    return true;
  }

  it('every JSON example in the doc is a valid config with a valid strategy and, with dp on, privacy settings the coordinator takes', () => {
    const examples = [...DOC.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as unknown);
    expect(examples.length).toBeGreaterThanOrEqual(2);
    const withDp = examples.filter((raw, index) => expectRunnable(raw, `JSON example ${index + 1}`));
    expect(withDp.length, 'a JSON example with dp on').toBeGreaterThan(0);
  });

  it('simulations/quickstart.json is a valid config', () => {
    const raw = JSON.parse(readFileSync(join(REPO_ROOT, 'simulations', 'quickstart.json'), 'utf8')) as unknown;
    expect(parseConfig(raw, 'quickstart').simulation.dataset).toBe('mnist');
  });

  it('every config in simulations/ is valid, as serve and simulate would start from it', () => {
    const files = readdirSync(join(REPO_ROOT, 'simulations')).filter((file) => file.endsWith('.json'));
    expect(files).toContain('quickstart.json');
    for (const file of files) {
      const raw = JSON.parse(readFileSync(join(REPO_ROOT, 'simulations', file), 'utf8')) as unknown;
      expectRunnable(raw, `simulations/${file}`, basename(file, '.json'));
    }
  });
});

describe('--set cannot reach Object.prototype', () => {
  it.each(['__proto__.polluted=1', 'train.__proto__.polluted=1', 'constructor.prototype.polluted=1'])('rejects %s', (assignment) => {
    expect(() => applyOverrides({}, [assignment])).toThrow(/is not a config key/);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});
