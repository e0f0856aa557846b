// The RDP accountant against values asserted in the reference libraries' own tests:
// tensorflow/privacy (compute_dp_sgd_privacy_test.py, rdp_accountant_test.py), Opacus
// (opacus/tests/accountants_test.py) and Google's dp_accounting (rdp_privacy_accountant_test.py).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { computeRdp, DEFAULT_RDP_ORDERS, epsilonFromRdp, noiseMultiplierFor, RdpAccountant, rdpOfStep } from '../src/index.js';

const range = (from: number, toExclusive: number) => Array.from({ length: toExclusive - from }, (_, k) => from + k);
/** tensorflow/privacy compute_dp_sgd_privacy_lib.py's orders. */
const TF_PRIVACY_ORDERS = [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, ...range(5, 64), 128, 256, 512];
/** Opacus RDPAccountant.DEFAULT_ALPHAS. */
const OPACUS_ORDERS = [...range(1, 100).map((x) => 1 + x / 10), ...range(12, 64)];

const relativeError = (actual: number, expected: number) => Math.abs(actual - expected) / Math.abs(expected);

/** tensorflow/privacy compute_dp_sgd_privacy(n, batch_size, noise_multiplier, epochs, delta). */
function dpSgdPrivacy(n: number, batchSize: number, noiseMultiplier: number, epochs: number, delta: number) {
  const q = batchSize / n;
  const steps = Math.ceil((epochs * n) / batchSize);
  return epsilonFromRdp(TF_PRIVACY_ORDERS, computeRdp(q, noiseMultiplier, steps, TF_PRIVACY_ORDERS), delta);
}

describe('ε of DP-SGD: tensorflow/privacy compute_dp_sgd_privacy_test', () => {
  it.each([
    // n, batch, z, epochs, δ, ε, order
    [60_000, 150, 1.3, 15, 1e-5, 0.7242234026109595, 19],
    [100_000, 100, 1.0, 30, 1e-7, 1.4154988495444842, 13],
    [100_000_000, 1024, 0.1, 10, 1e-7, 5907982.3113978775, 1.25],
  ])('n = %i, batch %i, z = %f, %i epochs, δ = %f → ε = %f at order %f (to 1e-10 relative)', (n, batch, z, epochs, delta, epsilon, order) => {
    const spent = dpSgdPrivacy(n, batch, z, epochs, delta);
    expect(relativeError(spent.epsilon, epsilon)).toBeLessThan(1e-10);
    expect(spent.order).toBe(order);
  });
});

describe('ε of the subsampled Gaussian: Opacus accountants_test', () => {
  it('test_rdp_accountant: z = 1.5, q = 0.04, 2,250 steps, δ = 1e-5 → 7.32911117143, with Opacus orders and with ours', () => {
    for (const orders of [OPACUS_ORDERS, DEFAULT_RDP_ORDERS]) {
      const accountant = new RdpAccountant(orders);
      accountant.compose(0.04, 1.5, 2250);
      const { epsilon, order } = accountant.epsilon(1e-5);
      expect(Math.abs(epsilon - 7.32911117143)).toBeLessThan(5e-8); // assertAlmostEqual: 7 places
      expect(order).toBe(3.9);
    }
  });

  it('composing one step at a time (as Opacus does) equals composing 2,250 at once, and the history stays one entry', () => {
    const stepwise = new RdpAccountant();
    for (let step = 0; step < 2250; step++) stepwise.compose(0.04, 1.5);
    const batched = new RdpAccountant();
    batched.compose(0.04, 1.5, 2250);
    stepwise.rdp.forEach((value, k) => expect(relativeError(value, batched.rdp[k]!)).toBeLessThan(1e-12));
    expect(Math.abs(stepwise.epsilon(1e-5).epsilon - 7.32911117143)).toBeLessThan(5e-8);
    expect(stepwise.history).toEqual([{ q: 0.04, noiseMultiplier: 1.5, steps: 2250 }]);
  });

  it('test_get_noise_multiplier_rdp_*: Opacus\'s bisection answers 1.416 and 1.3562 spend ε in its window [7.99, 8]; the exact inverse is just below', () => {
    for (const [steps, opacusAnswer] of [[2250, 1.416], [2000, 1.3562]] as const) {
      const atOpacusAnswer = epsilonFromRdp(OPACUS_ORDERS, computeRdp(0.04, opacusAnswer, steps, OPACUS_ORDERS), 1e-5).epsilon;
      expect(atOpacusAnswer).toBeGreaterThan(7.99);
      expect(atOpacusAnswer).toBeLessThanOrEqual(8);
      const exact = noiseMultiplierFor({ targetEpsilon: 8, q: 0.04, steps, delta: 1e-5, orders: OPACUS_ORDERS });
      expect(exact.noiseMultiplier).toBeLessThan(opacusAnswer);
      expect(exact.noiseMultiplier).toBeGreaterThan(opacusAnswer - 1e-3);
      expect(exact.epsilon).toBeLessThanOrEqual(8);
      expect(exact.epsilon).toBeGreaterThan(8 - 1e-6);
    }
  });
});

describe('RDP values: dp_accounting and tensorflow/privacy rdp tests', () => {
  const orders = [1.5, 2.5, 5, 50, 100, Infinity];
  const rdp = computeRdp(0.01, 2.5, 50, orders);

  it('q = 0.01, z = 2.5, 50 steps: dp_accounting\'s values at orders 2.5, 5, 50, 100 (rtol 1e-4) and ∞ → ∞', () => {
    const dpAccounting = [1.08548710e-3, 2.18075656e-3, 2.38460375e-2, 1.67416308e2];
    dpAccounting.forEach((expected, k) => expect(relativeError(rdp[k + 1]!, expected)).toBeLessThan(1e-4));
    expect(rdp[5]).toBe(Infinity);
  });

  it('at the fractional order 1.5 gives the legacy signed-series value 6.5007e-4, not dp_accounting\'s absolute-series 6.7058e-4', () => {
    expect(relativeError(rdp[0]!, 6.5007e-4)).toBeLessThan(1e-4);
    expect(relativeError(rdp[0]!, 6.70579741e-4)).toBeGreaterThan(0.03);
  });

  it('tensorflow/privacy test_compute_rdp_sequence (delta 1e-5) and test_compute_rdp_scalar (5 places)', () => {
    [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307].forEach((expected, k) => expect(Math.abs(rdp[k]! - expected)).toBeLessThan(1e-5));
    expect(Math.abs(computeRdp(0.1, 2, 10, [5])[0]! - 0.07737)).toBeLessThan(5e-6);
  });

  // log A_α at tensorflow/privacy's test_compute_log_a_equals_mp parameters. Expected values computed
  // here with mpmath at 40 digits: the exact binomial sum for integer orders, split adaptive
  // quadrature of ∫ μ0 (μ/μ0)^α for fractional ones. The references check rtol 1e-4.
  it.each([
    [1e-7, 0.1, 1.01, 4.0034123225263986e-8],
    [1e-6, 0.1, 256, 3260463.2292971608],
    [1e-5, 0.1, 256.1, 3263607.0397884213],
    [1e-6, 1, 27, 8.7695113048484979e-10],
    [1e-4, 1, 1.5, 6.4426869538366497e-9],
    [1e-3, 1, 2, 1.7182803522145154e-6],
    [0.01, 10, 20, 0.00019129699912842963],
    [0.1, 100, 20.5, 0.00019991818458068296],
    [0.99, 0.1, 256, 3263997.4271140211],
    [0.999, 100, 256.1, 3.2601080379731127],
    [0.04, 1.5, 3.9, 0.0053162863787931898],
  ])('log A at q = %f, z = %f, α = %f matches high-precision integration to 1e-6 relative', (q, z, order, logA) => {
    expect(relativeError(rdpOfStep(q, z, order) * (order - 1), logA)).toBeLessThan(1e-6);
  });

  it('the exact cases: q = 1 is the Gaussian α/(2z²) exactly, z = 0 is ∞, q = 0 is 0', () => {
    for (const order of [1.5, 2, 32, 100.5]) {
      expect(rdpOfStep(1, 2.71828, order)).toBe(order / (2 * 2.71828 ** 2));
      expect(rdpOfStep(0.3, 0, order)).toBe(Infinity);
      expect(rdpOfStep(0, 0, order)).toBe(0);
    }
    const noNoise = new RdpAccountant();
    noNoise.compose(0.1, 0);
    expect(noNoise.epsilon(1e-5).epsilon).toBe(Infinity);
    const nobodySampled = new RdpAccountant();
    nobodySampled.compose(0, 1, 100);
    expect(nobodySampled.epsilon(1e-10).epsilon).toBe(0);
  });

  it('RDP grows with the order and shrinks with the noise (property)', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-4, max: 0.5, noNaN: true }), fc.double({ min: 0.5, max: 5, noNaN: true }), (q, z) => {
        const values = computeRdp(q, z, 1, [1.5, 2, 3.5, 8, 20]);
        for (let k = 1; k < values.length; k++) expect(values[k]!).toBeGreaterThanOrEqual(values[k - 1]! * (1 - 1e-9));
        const noisier = computeRdp(q, z * 1.1, 1, [1.5, 2, 3.5, 8, 20]);
        noisier.forEach((value, k) => expect(value).toBeLessThanOrEqual(values[k]!));
      }),
      { numRuns: 30 },
    );
  });
});

describe('RDP → (ε, δ) conversion', () => {
  it('pure DP (constant RDP 1.1 at orders 2..32, δ = 1e-5) → ε = 1.32783806176 at order 32', () => {
    const orders = range(2, 33);
    const { epsilon, order } = epsilonFromRdp(orders, orders.map(() => 1.1), 1e-5);
    expect(Math.abs(epsilon - 1.32783806176)).toBeLessThan(5e-8);
    expect(order).toBe(32);
  });

  it('the Gaussian with z = 4.530877117, orders 1.000..99.999, is (1, 1e-6)-DP to 7 places', () => {
    const orders = range(1000, 100_000).map((i) => 0.001 * i);
    const { epsilon } = epsilonFromRdp(orders, computeRdp(1, 4.530877117, 1, orders), 1e-6);
    expect(Math.abs(epsilon - 1)).toBeLessThan(5e-8);
  });

  it('gives ε = 0 when the KL bound already covers δ, and no bound at orders ≤ 1.01', () => {
    expect(epsilonFromRdp([2], [1e-12], 1e-5).epsilon).toBe(0);
    expect(epsilonFromRdp([1.005], [0.1], 1e-5).epsilon).toBe(Infinity);
    expect(() => epsilonFromRdp([2], [0.1], 0)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });
});

describe('RdpAccountant', () => {
  it('adds the RDP of heterogeneous rounds and records each run of identical rounds once', () => {
    const accountant = new RdpAccountant([2, 8]);
    accountant.compose(0.1, 1, 3);
    accountant.compose(0.1, 1, 2);
    accountant.compose(0.2, 2);
    const expected = [2, 8].map((order) => 5 * rdpOfStep(0.1, 1, order) + rdpOfStep(0.2, 2, order));
    accountant.rdp.forEach((value, k) => expect(relativeError(value, expected[k]!)).toBeLessThan(1e-14));
    expect(accountant.history).toEqual([
      { q: 0.1, noiseMultiplier: 1, steps: 5 },
      { q: 0.2, noiseMultiplier: 2, steps: 1 },
    ]);
    accountant.compose(0.2, 2, 0);
    expect(accountant.history).toHaveLength(2);
  });

  it('previews the ε of more rounds without composing them (to stop before the budget is exceeded)', () => {
    const accountant = new RdpAccountant();
    accountant.compose(0.04, 1.5, 2000);
    const before = accountant.toJSON();
    const preview = accountant.epsilonIfComposed(0.04, 1.5, 250, 1e-5);
    expect(accountant.toJSON()).toEqual(before);
    accountant.compose(0.04, 1.5, 250);
    expect(preview).toEqual(accountant.epsilon(1e-5));
    expect(accountant.epsilonIfComposed(0.5, 0, 0, 1e-5)).toEqual(accountant.epsilon(1e-5));
    expect(() => accountant.epsilonIfComposed(0.04, 1.5, -1, 1e-5)).toThrow(/steps must be an integer/);
  });

  it('round-trips through JSON (∞ included) and continues exactly: Opacus test_accountant_load_state_dict', () => {
    const first = new RdpAccountant([...DEFAULT_RDP_ORDERS, Infinity]);
    first.compose(0.04, 1.5, 1250);
    const restored = RdpAccountant.fromJSON(JSON.parse(JSON.stringify(first)));
    expect(restored.toJSON()).toEqual(first.toJSON());
    expect(restored.toJSON().rdp.at(-1)).toBe('Infinity');
    restored.compose(0.04, 1.5, 1000);
    expect(Math.abs(restored.epsilon(1e-5).epsilon - 7.32911117143)).toBeLessThan(5e-8);
    expect(restored.history).toEqual([{ q: 0.04, noiseMultiplier: 1.5, steps: 2250 }]);
  });

  it('rejects a corrupt checkpoint with CHECKPOINT_CORRUPT naming the problem', () => {
    const good = new RdpAccountant([2, 3]).toJSON();
    const cases: [unknown, RegExp][] = [
      [null, /not an object/],
      [{ ...good, orders: [] }, /orders must be a non-empty array/],
      [{ ...good, rdp: [0] }, /one value per order/],
      [{ ...good, rdp: [0, -1] }, /rdp\[1\]/],
      [{ ...good, rdp: [0, 'NaN'] }, /rdp\[1\]/],
      [{ ...good, orders: [0.5, 3] }, /order 0\.5/],
      [{ ...good, history: [{ q: 2, noiseMultiplier: 1, steps: 1 }] }, /history entry/],
      [{ ...good, history: 'none' }, /history must be an array/],
    ];
    for (const [state, message] of cases) {
      expect(() => RdpAccountant.fromJSON(state)).toThrow(expect.objectContaining({ code: 'CHECKPOINT_CORRUPT', message: expect.stringMatching(message) }));
    }
  });

  it('rejects bad orders and arguments with INVALID_CONFIG', () => {
    expect(() => new RdpAccountant([])).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    expect(() => new RdpAccountant([1, 2])).toThrow(/orders must be numbers > 1/);
    const accountant = new RdpAccountant();
    expect(() => accountant.compose(1.5, 1)).toThrow(/q must be in \[0, 1\]/);
    expect(() => accountant.compose(0.1, -1)).toThrow(/noiseMultiplier must be/);
    expect(() => accountant.compose(0.1, 1, 1.5)).toThrow(/steps must be an integer/);
    expect(() => accountant.epsilon(1)).toThrow(/delta must be in \(0, 1\)/);
  });

  it('has 156 default orders: Opacus\'s plus dp_accounting\'s 11, 128, 256, 512, 1024', () => {
    expect(DEFAULT_RDP_ORDERS).toHaveLength(156);
    expect(DEFAULT_RDP_ORDERS).toEqual(expect.arrayContaining([...OPACUS_ORDERS, 11, 128, 256, 512, 1024]));
  });
});

describe('noiseMultiplierFor', () => {
  it('inverts the Opacus case: ε = 7.32911117143 over 2,250 steps at q = 0.04 needs z = 1.5', () => {
    const result = noiseMultiplierFor({ targetEpsilon: 7.32911117143, q: 0.04, steps: 2250, delta: 1e-5 });
    expect(relativeError(result.noiseMultiplier, 1.5)).toBeLessThan(1e-6);
    expect(result.epsilon).toBeLessThanOrEqual(7.32911117143);
    expect(result.order).toBe(3.9);
  });

  it('errs on the private side and finds z below 1 when the target allows it', () => {
    const result = noiseMultiplierFor({ targetEpsilon: 50, q: 0.01, steps: 100, delta: 1e-5 });
    expect(result.noiseMultiplier).toBeLessThan(1);
    expect(result.epsilon).toBeLessThanOrEqual(50);
    const justBelow = epsilonFromRdp(DEFAULT_RDP_ORDERS, computeRdp(0.01, result.noiseMultiplier * (1 - 1e-6), 100, DEFAULT_RDP_ORDERS), 1e-5);
    expect(justBelow.epsilon).toBeGreaterThan(50);
  });

  it('needs no noise when nobody is sampled, and reports an unreachable target with INVALID_CONFIG', () => {
    expect(noiseMultiplierFor({ targetEpsilon: 1, q: 0, steps: 10, delta: 1e-5 }).noiseMultiplier).toBe(0);
    expect(() => noiseMultiplierFor({ targetEpsilon: 1e-3, q: 1, steps: 1_000_000, delta: 1e-5 })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringMatching(/targetEpsilon 0\.001 is out of reach/) }),
    );
    expect(() => noiseMultiplierFor({ targetEpsilon: 0, q: 0.1, steps: 10, delta: 1e-5 })).toThrow(/targetEpsilon must be/);
  });
});
