// How `serve` reads a config file: the coordinator's part exactly as `simulate` reads it (one
// composeConfig), and of the simulator's sections only `simulation.dataset`, which shapes its model.
import { describe, expect, it } from 'vitest';
// The config schema only, not the package index: the index pulls in tfjs, which this file does not need.
import { parseConfig } from '@shoal/sim/config';
import { parseServeConfig } from '../src/serve.js';
import { FULL, FULL_WITH_FEDPROX, FULL_WITH_FRACTION, FULL_WITH_SAVED_MODEL, configError } from '../../sim/test/config-fixtures.js';

describe('parseServeConfig', () => {
  it('reads the coordinator part exactly as simulate does, and of the simulator only simulation.dataset', () => {
    for (const raw of [{}, FULL, FULL_WITH_FRACTION, FULL_WITH_SAVED_MODEL, FULL_WITH_FEDPROX]) {
      const { simulation, faults: _faults, seed, ...coordinatorPart } = parseConfig(raw);
      // The one difference: without a seed serve leaves it unset (a CSPRNG draws its cohorts), simulate uses 0.
      const served = 'seed' in raw ? { seed } : {};
      expect(parseServeConfig(raw), JSON.stringify(raw)).toEqual({ ...coordinatorPart, ...served, simulation: { dataset: simulation.dataset } });
    }
  });

  it('leaves seed unset unless given, where simulate defaults it to 0', () => {
    expect(parseServeConfig({}).seed).toBeUndefined();
    expect(parseConfig({}).seed).toBe(0);
    expect(parseServeConfig({ seed: 0 }).seed).toBe(0);
  });

  it('takes any model for its clients, not only one shaped like a bundled dataset', () => {
    expect(parseServeConfig({ model: { builtin: 'mlp', inputShape: [4], numClasses: 2 } }).model).toEqual({ builtin: 'mlp', inputShape: [4], numClasses: 2 });
    expect(parseServeConfig({ model: { builtin: 'cnn', inputShape: [4, 4, 1] } }).model).toEqual({ builtin: 'cnn', inputShape: [4, 4, 1] });
    expect(parseServeConfig({ model: { builtin: 'cnn', inputShape: [8, 8, 1] }, simulation: { dataset: 'digits' } }).simulation.dataset).toBe('digits');
  });

  it('refuses a built-in model the dataset that shapes it cannot feed, and a cnn too small to pool', () => {
    expect(configError(() => parseServeConfig({ model: 'cnn', simulation: { dataset: 'digits' } }))).toBe(
      "model cnn needs an image input shape [height, width, channels] of at least 4×4 (it max-pools by 2 twice), but simulation.dataset digits has examples of shape [64]: give model.inputShape (the shape of your clients' examples) or choose another model",
    );
    expect(configError(() => parseServeConfig({ model: { builtin: 'cnn', inputShape: [3, 28, 1] } }))).toContain('model.inputShape [3, 28, 1] does not fit model cnn');
  });

  it('checks simulation.dataset and that the simulator sections are objects, and leaves their other keys to simulate', () => {
    expect(() => parseServeConfig({ simulation: { numClients: -1, anything: true }, faults: { dropout: 7, stage: 'share' } })).not.toThrow();
    expect(configError(() => parseServeConfig({ simulation: { dataset: 'cifar' } }))).toBe('simulation.dataset must be one of mnist, digits, iris, synthetic, shakespeare, got "cifar"');
    expect(configError(() => parseServeConfig({ faults: 0.1 }))).toBe('faults must be an object');
    expect(configError(() => parseServeConfig({ simulation: [] }))).toBe('simulation must be an object');
    expect(configError(() => parseServeConfig({ simulations: {} }))).toContain('unknown key simulations');
  });
});
