import { describe, expect, it } from 'vitest';
// config.js directly, not the package index: the index pulls in tfjs, which this file does not need.
import { parseConfig } from '../src/config.js';
import { at, configError } from './config-fixtures.js';

describe('parseConfig: simulation.partition', () => {
  const partition = (value: unknown) => parseConfig(at('simulation.partition', value)).simulation.partition;

  it('keeps the string "iid", and reads each kind with its defaults filled in', () => {
    expect(partition('iid')).toBe('iid');
    expect(partition({ kind: 'iid' })).toEqual({ kind: 'iid' });
    expect(partition({ kind: 'shards' })).toEqual({ kind: 'shards', shardsPerClient: 2 });
    expect(partition({ kind: 'shards', shardsPerClient: 5 })).toEqual({ kind: 'shards', shardsPerClient: 5 });
    expect(partition({ kind: 'dirichlet', alpha: 0.1, recipe: 'per-client' })).toEqual({ kind: 'dirichlet', alpha: 0.1, recipe: 'per-client' });
    expect(partition({ kind: 'dirichlet', alpha: 100, recipe: 'per-class' })).toEqual({ kind: 'dirichlet', alpha: 100, recipe: 'per-class' });
    expect(partition({ kind: 'quantity' })).toEqual({ kind: 'quantity', distribution: 'lognormal', sigma: 1 });
    expect(partition({ kind: 'quantity', sigma: 0 })).toEqual({ kind: 'quantity', distribution: 'lognormal', sigma: 0 });
    expect(partition({ kind: 'quantity', distribution: 'powerlaw' })).toEqual({ kind: 'quantity', distribution: 'powerlaw', exponent: 1.5 });
    expect(partition({ kind: 'quantity', distribution: 'powerlaw', exponent: 0.5 })).toEqual({ kind: 'quantity', distribution: 'powerlaw', exponent: 0.5 });
    expect(partition({ kind: 'shards', shardsPerClient: null })).toEqual({ kind: 'shards', shardsPerClient: 2 }); // null reads as absent
  });

  // [value, the message]: every key of every kind, and the keys a kind does not take.
  const bad: readonly (readonly [unknown, string])[] = [
    [{}, 'simulation.partition.kind is required: one of iid, shards, dirichlet, quantity, natural'],
    [{ kind: 'pathological' }, 'simulation.partition.kind must be one of iid, shards, dirichlet, quantity, natural, got "pathological"'],
    [{ kind: 2 }, 'simulation.partition.kind must be one of iid, shards, dirichlet, quantity, natural, got 2'],
    [{ kind: 'iid', alpha: 1 }, 'unknown key simulation.partition.alpha (allowed: kind)'],
    [{ kind: 'shards', shardsPerClient: 0 }, 'simulation.partition.shardsPerClient must be an integer in [1, ∞], got 0'],
    [{ kind: 'shards', shardsPerClient: 1.5 }, 'simulation.partition.shardsPerClient must be an integer in [1, ∞], got 1.5'],
    [{ kind: 'shards', shardsPerClient: 2, sigma: 1 }, 'unknown key simulation.partition.sigma (allowed: kind, shardsPerClient)'],
    [{ kind: 'dirichlet', recipe: 'per-client' }, 'simulation.partition.alpha is required for kind dirichlet'],
    [{ kind: 'dirichlet', alpha: 0.5 }, 'simulation.partition.recipe is required for kind dirichlet: per-client (Hsu et al. 2019'],
    [{ kind: 'dirichlet', alpha: 0, recipe: 'per-class' }, 'simulation.partition.alpha must be a number positive, got 0'],
    [{ kind: 'dirichlet', alpha: '1', recipe: 'per-class' }, 'simulation.partition.alpha must be a number positive, got "1"'],
    [{ kind: 'dirichlet', alpha: 1, recipe: 'hsu' }, 'simulation.partition.recipe must be one of per-client, per-class, got "hsu"'],
    [{ kind: 'dirichlet', alpha: 1, recipe: 'per-class', shardsPerClient: 2 }, 'unknown key simulation.partition.shardsPerClient (allowed: kind, alpha, recipe)'],
    [{ kind: 'quantity', sigma: -0.5 }, 'simulation.partition.sigma must be a number non-negative, got -0.5'],
    [{ kind: 'quantity', sigma: Number.POSITIVE_INFINITY }, 'simulation.partition.sigma must be a number non-negative'],
    [{ kind: 'quantity', alpha: 1 }, 'unknown key simulation.partition.alpha (allowed: kind, distribution, sigma, exponent)'],
    [{ kind: 'quantity', distribution: 'zipf' }, 'simulation.partition.distribution must be one of lognormal, powerlaw, got "zipf"'],
    [{ kind: 'quantity', exponent: 2 }, 'simulation.partition.exponent is for distribution powerlaw, but simulation.partition.distribution is lognormal'],
    [{ kind: 'quantity', distribution: 'powerlaw', sigma: 1 }, 'simulation.partition.sigma is for distribution lognormal, but simulation.partition.distribution is powerlaw'],
    [{ kind: 'quantity', distribution: 'powerlaw', exponent: 0 }, 'simulation.partition.exponent must be a number positive, got 0'],
    [{ kind: 'natural', alpha: 1 }, 'unknown key simulation.partition.alpha (allowed: kind)'],
  ];
  it.each(bad)('rejects %j, naming the key', (value, expected) => {
    const message = configError(() => partition(value));
    expect(message.startsWith(expected), message).toBe(true);
  });
});

describe('parseConfig: simulation.partition natural, and the datasets it needs', () => {
  const simulation = (value: Record<string, unknown>) => parseConfig({ model: 'char-gru', simulation: { dataset: 'shakespeare', ...value } }).simulation;

  it('is the default with shakespeare and synthetic, whose examples have owners; iid stays the default of the others', () => {
    expect(simulation({}).partition).toEqual({ kind: 'natural' });
    expect(simulation({ partition: { kind: 'natural' } }).partition).toEqual({ kind: 'natural' });
    expect(parseConfig({ model: 'logreg', simulation: { dataset: 'synthetic' } }).simulation.partition).toEqual({ kind: 'natural' });
    expect(parseConfig({ model: 'logreg', simulation: { dataset: 'synthetic', partition: { kind: 'natural' } } }).simulation.partition).toEqual({ kind: 'natural' });
    expect(parseConfig({ simulation: { dataset: 'digits' } }).simulation.partition).toBe('iid');
  });

  it('shakespeare takes the label kinds too (over the next character)', () => {
    expect(simulation({ partition: 'iid' }).partition).toBe('iid');
    expect(simulation({ partition: { kind: 'dirichlet', alpha: 1, recipe: 'per-class' } }).partition).toEqual({ kind: 'dirichlet', alpha: 1, recipe: 'per-class' });
  });

  it('is refused for datasets without owners, naming why and what to choose', () => {
    for (const dataset of ['mnist', 'digits', 'iris']) {
      expect(configError(() => parseConfig({ simulation: { dataset, partition: { kind: 'natural' } } }))).toBe(
        `simulation.partition kind natural needs examples that have an owner (shakespeare: its speakers; synthetic: its devices), but simulation.dataset ${dataset} has none: choose kind iid, shards, dirichlet or quantity`,
      );
    }
  });
});
