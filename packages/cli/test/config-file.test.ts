// `--set key.path=value` overrides, applied to the raw config before either command validates it.
import fc from 'fast-check';
import { ShoalError } from '@shoal/protocol';
// The config schema only, not the package index: the index pulls in tfjs, which this file does not need.
import { parseConfig } from '@shoal/sim/config';
import { describe, expect, it } from 'vitest';
import { applyOverrides } from '../src/config-file.js';
import { CONFIG_LEAF, configError } from '../../sim/test/config-fixtures.js';

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

describe('applyOverrides on arbitrary input (property)', () => {

  /** Parses, or checks that the only failure is INVALID_CONFIG. */
  function parsesOrRejects(raw: unknown): void {
    try {
      parseConfig(raw);
    } catch (error) {
      expect(error).toBeInstanceOf(ShoalError);
      expect((error as ShoalError).code).toBe('INVALID_CONFIG');
    }
  }

  it('random --set assignments either apply or throw INVALID_CONFIG', () => {
    const segment = fc.oneof(fc.constantFrom('rounds', 'train', 'epochs', 'model', 'server', 'tokens', '__proto__', 'constructor'), fc.string());
    const assignment = fc.oneof(
      fc.tuple(fc.array(segment, { minLength: 1, maxLength: 3 }), fc.oneof(fc.json(), fc.string())).map(([path, value]) => `${path.join('.')}=${value}`),
      fc.string(),
    );
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('rounds', 'train', 'model', 'server'), CONFIG_LEAF), fc.array(assignment, { maxLength: 4 }), (raw, assignments) => {
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

describe('--set cannot reach Object.prototype', () => {
  it.each(['__proto__.polluted=1', 'train.__proto__.polluted=1', 'constructor.prototype.polluted=1'])('rejects %s', (assignment) => {
    expect(() => applyOverrides({}, [assignment])).toThrow(/is not a config key/);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});
