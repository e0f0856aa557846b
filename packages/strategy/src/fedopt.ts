import { meanDelta } from './aggregate.js';
import { ADAPTIVE_SERVER_LEARNING_RATE, STRATEGY_DEFAULTS } from './config.js';
import { wrapStrategy } from './decorator.js';
import { applyUpdate, fedAvg, type FedAvgOptions } from './fedavg.js';
import { checkDecay, checkServerLearningRate, checkTau } from './options.js';
import type { Strategy, StrategyState } from './strategy.js';

export interface FedAdagradOptions extends FedAvgOptions {
  /** Server learning rate η. Default 0.01 (`ADAPTIVE_SERVER_LEARNING_RATE`), not FedAvg's 1. */
  readonly serverLearningRate?: number;
  /** Adaptivity τ: the step is m / (√v + τ), and v starts at τ². Default 1e-3. */
  readonly tau?: number;
}

export interface FedAdamOptions extends FedAdagradOptions {
  /** First-moment decay β1, in [0, 1). Default 0.9. */
  readonly beta1?: number;
  /** Second-moment decay β2, in [0, 1). Default 0.99. */
  readonly beta2?: number;
}

export type FedYogiOptions = FedAdamOptions;

/** The new second moment of one coordinate from the old one and the squared pseudo-gradient Δ². */
type SecondMoment = (previous: number, squared: number) => number;

/** One moment vector of a FedOpt state, checked because state may come back from a checkpoint. */
function momentOf(name: string, state: StrategyState, key: 'm' | 'v', numParams: number): Float64Array {
  const moment = state[key];
  if (!(moment instanceof Float64Array) || moment.length !== numParams) {
    throw new RangeError(`${name} state.${key} must be a Float64Array of ${numParams} values; use initialState()`);
  }
  return moment;
}

/**
 * The shared server step of Reddi et al., ICLR 2021, Algorithm 2, with the weighted mean update Δ
 * as the pseudo-gradient (Δ points downhill already: it is the clients' new weights minus the old):
 * m ← β1·m + (1 − β1)·Δ; v ← secondMoment(v, Δ²); new = global + η·m / (√v + τ).
 * State: `{ m, v }`, Float64Arrays (so a resumed run matches an unbroken one); m₀ = 0 and v₀ = τ²,
 * the paper's v₋₁ ≥ τ² at its smallest. No bias correction: the paper has none. Client weighting and
 * train config are FedAvg's.
 */
function fedOpt(name: string, options: FedAdagradOptions, beta1: number, tau: number, secondMoment: SecondMoment): Strategy {
  const serverLearningRate = checkServerLearningRate(options.serverLearningRate ?? ADAPTIVE_SERVER_LEARNING_RATE);
  return wrapStrategy(fedAvg({ ...options, serverLearningRate }), {
    name,
    initialState: (numParams) => ({ m: new Float64Array(numParams), v: new Float64Array(numParams).fill(tau * tau) }),
    step: (global, aggregate, state) => {
      const previousM = momentOf(name, state, 'm', global.length);
      const previousV = momentOf(name, state, 'v', global.length);
      const delta = meanDelta(aggregate);
      const m = new Float64Array(global.length);
      const v = new Float64Array(global.length);
      const direction = new Float64Array(global.length);
      for (let i = 0; i < direction.length; i++) {
        m[i] = beta1 * previousM[i]! + (1 - beta1) * delta[i]!;
        v[i] = secondMoment(previousV[i]!, delta[i]! * delta[i]!);
        direction[i] = m[i]! / (Math.sqrt(v[i]!) + tau);
      }
      return { weights: applyUpdate(global, direction, serverLearningRate), state: { ...state, m, v } };
    },
  });
}

/** FedAdam: v ← β2·v + (1 − β2)·Δ². Options default to η = 0.01, β1 = 0.9, β2 = 0.99, τ = 1e-3. */
export function fedAdam(options: FedAdamOptions = {}): Strategy {
  const beta1 = checkDecay('beta1', options.beta1 ?? STRATEGY_DEFAULTS.beta1);
  const beta2 = checkDecay('beta2', options.beta2 ?? STRATEGY_DEFAULTS.beta2);
  const tau = checkTau(options.tau ?? STRATEGY_DEFAULTS.tau);
  return fedOpt('fedadam', options, beta1, tau, (previous, squared) => beta2 * previous + (1 - beta2) * squared);
}

/**
 * FedYogi: v ← v − (1 − β2)·Δ²·sign(v − Δ²). v moves towards Δ² by a step that depends on Δ² only,
 * not on v, so it grows as Adam's does but shrinks more slowly; it stays > 0.
 * Options default to η = 0.01, β1 = 0.9, β2 = 0.99, τ = 1e-3.
 */
export function fedYogi(options: FedYogiOptions = {}): Strategy {
  const beta1 = checkDecay('beta1', options.beta1 ?? STRATEGY_DEFAULTS.beta1);
  const beta2 = checkDecay('beta2', options.beta2 ?? STRATEGY_DEFAULTS.beta2);
  const tau = checkTau(options.tau ?? STRATEGY_DEFAULTS.tau);
  return fedOpt('fedyogi', options, beta1, tau, (previous, squared) => previous - (1 - beta2) * squared * Math.sign(previous - squared));
}

/**
 * FedAdagrad: v ← v + Δ², with no momentum (β1 = 0, so m is this round's Δ), as Adagrad has none
 * and as Flower's FedAdagrad does. Options default to η = 0.01, τ = 1e-3.
 */
export function fedAdagrad(options: FedAdagradOptions = {}): Strategy {
  const tau = checkTau(options.tau ?? STRATEGY_DEFAULTS.tau);
  return fedOpt('fedadagrad', options, 0, tau, (previous, squared) => previous + squared);
}
