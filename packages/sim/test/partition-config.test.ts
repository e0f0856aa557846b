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
    expect(partition({ kind: 'quantity' })).toEqual({ kind: 'quantity', sigma: 1 });
    expect(partition({ kind: 'quantity', sigma: 0 })).toEqual({ kind: 'quantity', sigma: 0 });
    expect(partition({ kind: 'shards', shardsPerClient: null })).toEqual({ kind: 'shards', shardsPerClient: 2 }); // null reads as absent
  });

  // [value, the message]: every key of every kind, and the keys a kind does not take.
  const bad: readonly (readonly [unknown, string])[] = [
    [{}, 'simulation.partition.kind is required: one of iid, shards, dirichlet, quantity'],
    [{ kind: 'pathological' }, 'simulation.partition.kind must be one of iid, shards, dirichlet, quantity, got "pathological"'],
    [{ kind: 2 }, 'simulation.partition.kind must be one of iid, shards, dirichlet, quantity, got 2'],
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
    [{ kind: 'quantity', alpha: 1 }, 'unknown key simulation.partition.alpha (allowed: kind, sigma)'],
  ];
  it.each(bad)('rejects %j, naming the key', (value, expected) => {
    const message = configError(() => partition(value));
    expect(message.startsWith(expected), message).toBe(true);
  });
});
