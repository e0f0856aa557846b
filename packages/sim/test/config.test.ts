import fc from 'fast-check';
import { BUILTIN_MODELS, ShoalError } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
// config.js directly, not the package index: the index pulls in tfjs, which this file does not need.
import { parseConfig, type ShoalConfig } from '../src/config.js';
import { PrivacyPolicy, builtinInitialModel, coordinatorOptions, privacyOptions, resolveOptions } from '@shoal/coordinator';
import { DATASET_SHAPES } from '@shoal/datasets';
import { deriveSecAggParams } from '@shoal/secagg';
import { createStrategy } from '@shoal/strategy';
import {
  CONFIG_LEAF,
  ADAPTIVE_CLIP_DEFAULTS,
  CROSS_KEY_EXAMPLES,
  DEFAULTS,
  FAULT_STAGES,
  FULL,
  FULL_STRATEGY_VARIANTS,
  FULL_WITH_FRACTION,
  FULL_WITH_SAVED_MODEL,
  FULL_WITH_SYNTHETIC_IID,
  LEVELS,
  SECTIONS,
  UNKNOWN,
  acceptedKeyPaths,
  at,
  configError,
} from './config-fixtures.js';

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
      dp: { mode: null, noiseMultiplier: null, clipNorm: null, adaptiveClip: null, delta: null, targetEpsilon: null }, sampling: null, maxUpdateNorm: null,
      faults: { dropout: null, stage: null, stragglers: null, stragglerPolicy: null },
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
    // FULL sets every key to a non-default value, so parsing keeps it all but the ignored metadata.
    const { $schema: _schema, description: _description, ...expected } = FULL;
    expect(parseConfig(FULL)).toEqual(expected);
    expect(parseConfig(FULL_WITH_FRACTION).fraction).toBe(0.25);
    expect(parseConfig(FULL_WITH_FRACTION).dp).toEqual({ ...FULL.dp, mode: 'off' });
    expect(parseConfig(FULL_WITH_SAVED_MODEL).model).toEqual({ path: 'models/model.json' });
    expect(parseConfig(FULL_WITH_SYNTHETIC_IID).simulation.synthetic).toEqual({ iid: true });
    for (const config of FULL_STRATEGY_VARIANTS) expect(parseConfig(config).strategy).toEqual(config.strategy);
  });

  it('reads a model name string as a built-in model', () => {
    for (const name of BUILTIN_MODELS) {
      const dataset = name === 'char-gru' ? 'shakespeare' : 'mnist'; // the model of character ids needs them
      expect(parseConfig({ model: name, simulation: { dataset } }).model).toEqual({ builtin: name });
    }
  });

  it('accepts the documented range boundaries', () => {
    const edges = [
      at('seed', 0),
      at('rounds', 1),
      at('fraction', 1),
      at('minClients', 1),
      { model: { builtin: 'mlp', numClasses: 3 }, simulation: { dataset: 'iris' } }, // at least the dataset's classes
      { model: { builtin: 'cnn', inputShape: [28, 28, 1] } }, // exactly the dataset's shape
      { strategy: { name: 'fedavgm', momentum: 0 } },
      at('server.port', 0),
      at('server.port', 65_535),
      at('server.heartbeatIntervalMs', 10),
      at('roundTimeoutMs', 1),
      { clientsPerRound: 2, minClients: 2 },
      { secagg: { mode: 'secagg', threshold: 2 } },
      { secagg: { mode: 'secagg+', degree: 3, maxDropout: 0 } }, // t = 3 of 3: 2t ≥ k + 2 leaves no dropout
      at('secagg.maxDropout', 0),
      at('secagg.maxDropout', 0.499),
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
      { clientsPerRound: 3, dp: { mode: 'distributed' }, secagg: { mode: 'secagg', maxDropout: 0 } }, // SecAgg needs 3 clients per round
      { clientsPerRound: 3, secagg: { mode: 'secagg', maxDropout: 0 } }, // t = 3 of 3, the only threshold above (3 + 1)/2
      { clientsPerRound: 4, secagg: { mode: 'secagg', threshold: 3, maxDropout: 0.25 } }, // 2t = k + 2 exactly
      { clientsPerRound: 6, secagg: { mode: 'secagg' } }, // the smallest cohort the default maxDropout 0.3 fits: t = 4 of 6
      { secagg: { mode: 'secagg+', degree: 7, threshold: 5, maxDropout: 2 / 7 } }, // the lowest threshold for 7, and the most dropout it tolerates
      { secagg: { mode: 'secagg+', degree: 5, threshold: 4, maxDropout: 0.2 } },
      { clientsPerRound: 5, secagg: { mode: 'secagg+', degree: 5, maxDropout: 0.2 } },
      at('strategy.name', 'fedavgm'),
      { strategy: { name: 'fedprox', proximalMu: 0 } },
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
    ['model', 'resnet', 'must be one of logreg, mlp, 2nn, cnn, char-gru, got "resnet"'],
    ['model', 5, 'must be an object'],
    ['model', [], 'must be an object'],
    ['model.builtin', 'resnet', 'must be one of logreg, mlp, 2nn, cnn, char-gru'],
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
    ['maxUpdateNorm', 0, 'must be a number positive (or "auto"), got 0'],
    ['maxUpdateNorm', 'off', 'must be a number positive (or "auto"), got "off"'],
    ['maxUpdateNorm', Infinity, 'must be a number positive (or "auto")'],
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
    ['strategy.name', 'fedsgd', 'must be one of fedavg, fedavgm, fedprox, fedadam, fedyogi, fedadagrad, fedmedian, fedtrimmedavg, krum'],
    // The strategy and dp keys are checked by their packages' own checks, in those checks' words.
    ['strategy.serverLearningRate', 0, 'must be a finite number > 0, got 0'],
    ['strategy.maxWeight', 0, 'must be a number > 0, got 0'],
    ['strategy.momentum', 1, 'must be in [0, 1), got 1'],
    ['strategy.momentum', -0.1, 'must be in [0, 1)'],
    ['strategy.proximalMu', -1, 'must be a finite number >= 0'],
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
    ['secagg.maxDropout', 0.6, 'must be a number in [0, 0.5), got 0.6: the threshold must exceed half of each client\'s neighbourhood'],
    ['secagg.maxDropout', 0.5, 'must be a number in [0, 0.5), got 0.5'],
    ['secagg.maxDropout', -0.1, 'must be a number in [0, 0.5)'],
    ['secagg.maxDropout', '0.3', 'must be a number in [0, 0.5)'],
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
    ['dp.noiseMultiplier', -0.1, 'must be a finite number >= 0, got -0.1'],
    ['dp.noiseMultiplier', Infinity, 'must be a finite number >= 0'],
    ['dp.noiseMultiplier', '1', 'must be a finite number >= 0'],
    ['dp.clipNorm', 0, 'must be a finite number > 0, got 0'],
    ['dp.clipNorm', -1, 'must be a finite number > 0'],
    ['dp.clipNorm', Number.NaN, 'must be a finite number > 0'],
    ['dp.adaptiveClip', true, 'must be an object'],
    ['dp.adaptiveClip', [], 'must be an object'],
    ['dp.adaptiveClip', 0.5, 'must be an object'],
    ['dp.adaptiveClip.targetQuantile', 1.5, 'must be in [0, 1], got 1.5'],
    ['dp.adaptiveClip.targetQuantile', -0.1, 'must be in [0, 1]'],
    ['dp.adaptiveClip.targetQuantile', '0.5', 'must be in [0, 1]'],
    ['dp.adaptiveClip.learningRate', 0, 'must be a finite number > 0, got 0'],
    ['dp.adaptiveClip.learningRate', -0.2, 'must be a finite number > 0'],
    ['dp.adaptiveClip.countNoiseStd', -1, 'must be a finite number >= 0, got -1'],
    ['dp.adaptiveClip.countNoiseStd', Infinity, 'must be a finite number >= 0'],
    ['dp.delta', 0, 'must be in (0, 1), got 0'],
    ['dp.delta', 1, 'must be in (0, 1), got 1'],
    ['dp.delta', '1e-5', 'must be in (0, 1)'],
    ['dp.targetEpsilon', 0, 'must be a finite number > 0, got 0'],
    ['dp.targetEpsilon', -3, 'must be a finite number > 0'],
    ['dp.targetEpsilon', Infinity, 'must be a finite number > 0'],
    ['sampling', 'uniform', 'must be one of fixed, poisson, got "uniform"'],
    ['sampling', 1, 'must be one of fixed, poisson, got 1'],
    ['sampling', 'Poisson', 'must be one of fixed, poisson'],
    ['faults', 0.1, 'must be an object'],
    ['faults.dropout', 1.5, 'must be a number in [0, 1], got 1.5'],
    ['faults.dropout', -0.1, 'must be a number in [0, 1]'],
    ['faults.dropout', Number.NaN, 'must be a number in [0, 1]'],
    ['faults.dropout', true, 'must be a number in [0, 1]'],
    ['faults.stage', 'mask', 'must be one of advertise, share, masked, confirm, unmask, train, got "mask"'],
    ['faults.stage', 3, 'must be one of advertise, share, masked, confirm, unmask, train'],
    ['faults.stragglers', 1.5, 'must be a number in [0, 1], got 1.5'],
    ['faults.stragglerPolicy', 'skip', 'must be one of partial, drop, got "skip"'],
    ['targetAccuracy', 0, 'must be a number in (0, 1], got 0'],
    ['simulation', 1, 'must be an object'],
    ['simulation.dataset', 'cifar', 'must be one of mnist, digits, iris, synthetic, shakespeare'],
    ['simulation.numClients', 0, 'must be an integer in [1, ∞]'],
    ['simulation.partition', 'dirichlet', 'must be "iid" or an object { kind, ... } with kind one of iid, shards, dirichlet, quantity, natural, got "dirichlet"'],
    ['simulation.partition', 3, 'must be "iid" or an object { kind, ... }, got 3'],
    ['simulation.partition', [], 'must be "iid" or an object { kind, ... }, got []'],
    ['simulation.examplesPerClient', 0, 'must be an integer in [1, ∞]'],
    ['simulation.testExamples', -5, 'must be an integer in [1, ∞]'],
    ['simulation.workers', 0, 'must be an integer in [1, ∞]'],
    ['simulation.transport', 'tcp', 'must be one of memory, ws'],
  ];

  it.each(cases)('rejects %s = %j, naming the key', (path, value, expected) => {
    const location = path.replace(/\[\d+\]$/, ''); // model.inputShape[1] sits at model.inputShape
    const raw = location === 'model.path' || location.startsWith('model.inputShape') || location === 'model.numClasses'
      ? { model: { ...(location === 'model.path' ? {} : { builtin: 'mlp' }), [location.slice('model.'.length)]: value } }
      : at(location, value);
    const message = configError(() => parseConfig(raw));
    expect(message.startsWith(`${path} ${expected}`), message).toBe(true);
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
    expect(configError(() => parseConfig(raw))).toBe(expected);
  });

  it('rejects a secure-aggregation faults.stage unless secagg.mode is on; train goes with any mode', () => {
    for (const mode of [undefined, 'off', 'secagg', 'secagg+'] as const) {
      for (const stage of FAULT_STAGES) {
        const raw = { ...(mode === undefined ? {} : { secagg: { mode } }), faults: { dropout: 0.5, stage } };
        const label = JSON.stringify(raw);
        if ((mode === undefined || mode === 'off') && stage !== 'train') {
          expect(configError(() => parseConfig(raw)), label).toBe(`faults.stage ${stage} is a secure-aggregation stage, but secagg.mode is off`);
        } else {
          expect(parseConfig(raw).faults, label).toEqual({ dropout: 0.5, stage, stragglers: 0, stragglerPolicy: 'partial' });
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
            expect(configError(() => parseConfig(raw)), label).toBe(`dp.mode ${dpMode} needs clientsPerRound: the expected cohort size is DP-FedAvg's fixed denominator`);
          } else if (dpMode === 'distributed' && !secaggOn) {
            expect(configError(() => parseConfig(raw)), label).toBe('dp.mode distributed needs secagg.mode secagg or secagg+: without it the coordinator sees each noised update');
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

describe('parseConfig on arbitrary input (property)', () => {
  /** Mostly a value the key accepts, sometimes anything: so some configs parse and the rest fail at varied checks. */
  const mostly = (valid: fc.Arbitrary<unknown>) => fc.oneof({ weight: 12, arbitrary: valid }, { weight: 1, arbitrary: CONFIG_LEAF });
  const int = (min: number, max = 1_000) => fc.integer({ min, max });
  const positive = fc.double({ min: 1e-6, max: 10, noNaN: true });
  const text = fc.string({ minLength: 1, maxLength: 8 });
  /** An object of optional keys, sometimes with one random extra key. */
  const objectOf = (shape: Record<string, fc.Arbitrary<unknown>>) =>
    fc
      .record(shape, { requiredKeys: [] })
      .chain((raw) =>
        fc
          .oneof({ weight: 19, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.tuple(fc.string(), CONFIG_LEAF) })
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
        objectOf({
          builtin: mostly(fc.constantFrom(...BUILTIN_MODELS)),
          // The bundled datasets' shapes (simulate takes nothing else), and any other.
          inputShape: mostly(fc.oneof(fc.constantFrom([28, 28, 1], [64], [4]), fc.array(int(1, 30), { minLength: 1, maxLength: 3 }))),
          numClasses: mostly(int(2, 12)),
        }),
        objectOf({ path: mostly(text) }),
      ),
    ),
    clientsPerRound: mostly(int(1, 20)), // with minClients mostly small, so that the two usually agree
    fraction: mostly(fc.double({ min: 0.01, max: 1, noNaN: true })),
    minClients: mostly(int(1, 4)),
    minAvailable: mostly(int(1)),
    roundTimeoutMs: mostly(int(1, 100_000)),
    train: sectionOf({ epochs: mostly(int(1)), batchSize: mostly(int(1)), learningRate: mostly(positive), optimizer: mostly(fc.constantFrom('sgd', 'adam')) }),
    strategy: mostly(
      fc.oneof(
        // Each strategy with its own keys, and (below) any keys with any strategy.
        fc.record({ name: fc.constant('fedavg'), serverLearningRate: mostly(positive), maxWeight: mostly(positive) }, { requiredKeys: ['name'] }),
        fc.record({ name: fc.constant('fedavgm'), momentum: mostly(fc.double({ min: 0, max: 0.99, noNaN: true })) }, { requiredKeys: ['name'] }),
        fc.record({ name: fc.constant('fedprox'), proximalMu: mostly(fc.double({ min: 0, max: 1, noNaN: true })) }, { requiredKeys: ['name', 'proximalMu'] }),
        fc.record({ name: fc.constantFrom('fedadam', 'fedyogi'), beta1: mostly(fc.double({ min: 0, max: 0.99, noNaN: true })), beta2: mostly(fc.double({ min: 0, max: 0.99, noNaN: true })), tau: mostly(positive) }, { requiredKeys: ['name'] }),
        fc.record({ name: fc.constant('fedadagrad'), tau: mostly(positive) }, { requiredKeys: ['name'] }),
        objectOf({
          name: mostly(fc.constantFrom('fedavg', 'fedavgm', 'fedprox')),
          serverLearningRate: mostly(positive),
          maxWeight: mostly(positive),
          momentum: mostly(fc.double({ min: 0, max: 0.99, noNaN: true })),
          proximalMu: mostly(fc.double({ min: 0, max: 1, noNaN: true })),
        }),
      ),
    ),
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
    maxUpdateNorm: mostly(fc.oneof(fc.constant('auto'), positive)),
    // Drawn independently of secagg.mode, so some configs break the faults.stage cross-key rule.
    faults: sectionOf({ dropout: mostly(fc.double({ min: 0, max: 1, noNaN: true })), stage: mostly(fc.constantFrom(...FAULT_STAGES)), stragglers: mostly(fc.double({ min: 0, max: 1, noNaN: true })), stragglerPolicy: mostly(fc.constantFrom('partial', 'drop')) }),
    simulation: sectionOf({
      dataset: mostly(fc.constantFrom('mnist', 'digits', 'iris', 'shakespeare')),
      numClients: mostly(int(1)),
      partition: mostly(
        fc.oneof(
          fc.constant('iid'),
          objectOf({
            kind: mostly(fc.constantFrom('iid', 'shards', 'dirichlet', 'quantity', 'natural')),
            shardsPerClient: mostly(int(1, 5)),
            alpha: mostly(positive),
            recipe: mostly(fc.constantFrom('per-client', 'per-class')),
            distribution: mostly(fc.constantFrom('lognormal', 'powerlaw')),
            sigma: mostly(fc.double({ min: 0, max: 3, noNaN: true })),
            exponent: mostly(fc.double({ min: 0.1, max: 5, noNaN: true })),
          }),
        ),
      ),
      examplesPerClient: mostly(int(1)),
      testExamples: mostly(int(1)),
      transport: mostly(fc.constantFrom('memory', 'ws')),
      workers: mostly(int(1, 4)),
    }),
  });

  /** Parses, or checks that the only failure is INVALID_CONFIG (which the CLI prints as `shoal: config: …`). */
  function parsesOrRejects(raw: unknown): boolean {
    try {
      parseConfig(raw);
      return true;
    } catch (error) {
      expect(error).toBeInstanceOf(ShoalError);
      expect((error as ShoalError).code).toBe('INVALID_CONFIG');
      return false;
    }
  }

  it('random JSON values either parse or throw INVALID_CONFIG', () => {
    fc.assert(fc.property(fc.jsonValue(), (raw) => void parsesOrRejects(raw)), { numRuns: 300 });
  });

  it('random configs near the schema either parse or throw INVALID_CONFIG, and some parse', () => {
    fc.assert(
      fc.property(config, (raw) => void parsesOrRejects(raw)),
      { numRuns: 2_000 },
    );
    // Guards the generator: a property where nothing ever parses would test only the first check.
    // Checked on a fixed sample (valid configs are rare, about 1 in 700, so a random run of 2,000 may hold none).
    const parsed = fc.sample(config, { numRuns: 10_000, seed: 1 }).filter((raw) => parsesOrRejects(raw)).length;
    expect(parsed).toBeGreaterThan(0);
  });
});

describe('what parseConfig accepts, the packages accept (property)', () => {
  /** Values each within its key's own range, drawn independently: the cross-key and cross-package rules decide. */
  const int = (min: number, max: number) => fc.integer({ min, max });
  const unit = fc.double({ min: 0, max: 0.99, noNaN: true });
  const positive = fc.double({ min: 1e-3, max: 10, noNaN: true });
  const inRange = fc.record(
    {
      rounds: int(1, 5),
      model: fc.oneof(
        fc.constantFrom(...BUILTIN_MODELS),
        fc.record(
          { builtin: fc.constantFrom(...BUILTIN_MODELS), inputShape: fc.oneof(fc.constantFrom([28, 28, 1], [64], [4]), fc.array(int(1, 9), { minLength: 1, maxLength: 3 })), numClasses: int(2, 12) },
          { requiredKeys: ['builtin'] },
        ),
      ),
      clientsPerRound: int(1, 12),
      minClients: int(1, 6),
      sampling: fc.constantFrom('fixed', 'poisson'),
      strategy: fc.oneof(
        fc.record({ name: fc.constantFrom('fedavg', 'fedavgm', 'fedprox'), momentum: unit, proximalMu: positive }, { requiredKeys: ['name'] }),
        fc.record({ name: fc.constant('fedavgm'), momentum: unit }),
        fc.record({ name: fc.constant('fedprox'), proximalMu: positive }),
      ),
      secagg: fc.record(
        { mode: fc.constantFrom('off', 'secagg', 'secagg+'), threshold: int(2, 12), degree: int(3, 13), maxDropout: unit, clipRange: positive, maxWeight: int(1, 5_000) },
        { requiredKeys: ['mode'] },
      ),
      dp: fc.record(
        {
          mode: fc.constantFrom('off', 'central', 'distributed'),
          noiseMultiplier: fc.double({ min: 0, max: 3, noNaN: true }),
          clipNorm: positive,
          adaptiveClip: fc.record({ targetQuantile: fc.double({ min: 0, max: 1, noNaN: true }), countNoiseStd: fc.double({ min: 0, max: 3, noNaN: true }) }, { requiredKeys: [] }),
        },
        { requiredKeys: ['mode'] },
      ),
      simulation: fc.record({ dataset: fc.constantFrom('mnist', 'digits', 'iris', 'shakespeare') }),
    },
    { requiredKeys: [] },
  );

  /** Starts every package the way serve and simulate do; throws what a package would throw at start or in a round. */
  function start(config: ShoalConfig): void {
    const strategy = createStrategy(config.strategy);
    const shape = DATASET_SHAPES[config.simulation.dataset];
    const model = 'path' in config.model ? undefined : builtinInitialModel(config.model.builtin, config.model.inputShape ?? shape.featureShape, config.model.numClasses ?? shape.numClasses);
    if (model) resolveOptions({ ...coordinatorOptions(config), model, tokens: ['t'] });
    const { secagg, dp } = coordinatorOptions(config);
    // With a fixed cohort every round has clientsPerRound clients: the round derives its SecAgg parameters for them.
    if (secagg && config.clientsPerRound !== undefined && config.sampling === 'fixed') {
      const maxWeight = Math.max(1, Math.min(strategy.clientWeight(Number.MAX_SAFE_INTEGER), secagg.maxWeight ?? 1_000));
      deriveSecAggParams({ ...secagg, cohortSize: config.clientsPerRound, numParams: model?.weights.length ?? 10, bound: (secagg.clipRange ?? 1) * maxWeight, maxWeight });
    }
    if (dp) new PrivacyPolicy(dp, config.clientsPerRound!, config.minClients, secagg !== undefined);
  }

  it('a config parseConfig accepts starts in every package; one it refuses is refused with INVALID_CONFIG', () => {
    let started = 0;
    fc.assert(
      fc.property(inRange, (raw) => {
        let config: ShoalConfig;
        try {
          config = parseConfig(raw);
        } catch (error) {
          expect(error).toBeInstanceOf(ShoalError);
          expect((error as ShoalError).code).toBe('INVALID_CONFIG');
          return;
        }
        start(config);
        started++;
      }),
      { numRuns: 3_000, seed: 9 },
    );
    expect(started, 'configs that parsed').toBeGreaterThan(100);
  });
});
