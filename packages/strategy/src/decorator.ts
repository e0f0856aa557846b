import type { Strategy } from './strategy.js';

/**
 * A strategy that behaves like `inner` except for the hooks in `overrides`. The seam for adding one
 * idea on top of another (FedProx on FedAvg, central DP on any strategy) without copying it.
 * Overrides that need the inner behaviour close over `inner` themselves.
 */
export function wrapStrategy(inner: Strategy, overrides: Partial<Omit<Strategy, 'name'>> & { name: string }): Strategy {
  const robustAggregate = overrides.robustAggregate ?? inner.robustAggregate;
  return Object.freeze({
    name: overrides.name,
    initialState: overrides.initialState ?? ((numParams) => inner.initialState(numParams)),
    configureTrain: overrides.configureTrain ?? ((round, base) => inner.configureTrain(round, base)),
    clientWeight: overrides.clientWeight ?? ((numExamples) => inner.clientWeight(numExamples)),
    step: overrides.step ?? ((global, aggregate, state, round) => inner.step(global, aggregate, state, round)),
    ...(robustAggregate ? { robustAggregate } : {}),
  } satisfies Strategy);
}
