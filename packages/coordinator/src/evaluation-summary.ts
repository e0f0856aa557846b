// The distribution of a federated evaluation across clients: the fairness view q-FFL reports (Li et
// al., ICLR 2020: mean, spread, worst and best 10 %), next to the example-weighted mean. Pure.

/** One client's answer to `evaluate`, as validated (loss ≥ 0, accuracy in [0, 1], count ≥ 0). */
export interface ClientEvaluation {
  readonly loss: number;
  readonly accuracy: number;
  readonly numExamples: number;
}

/** How one metric is spread across the reporting clients, each client counting once. */
export interface MetricDistribution {
  readonly mean: number;
  /** Population standard deviation across clients. */
  readonly std: number;
  readonly min: number;
  readonly max: number;
  /** Mean over the worst 10 % of clients (at least one): lowest accuracies, highest losses. */
  readonly worst10: number;
  /** Mean over the best 10 % of clients (at least one): highest accuracies, lowest losses. */
  readonly best10: number;
}

/** `RoundMetrics.federatedEvaluation`: the committed model evaluated on the clients' held-out data. */
export interface FederatedEvaluationMetrics {
  /** Clients whose evaluation counted (valid, on time, with at least one example). */
  readonly clients: number;
  /** Held-out examples they evaluated on, as they reported them. */
  readonly examples: number;
  readonly accuracy: MetricDistribution;
  readonly loss: MetricDistribution;
  /** Accuracy averaged with each client weighing as its update would (example count capped by the strategy). */
  readonly weightedAccuracy: number;
  readonly weightedLoss: number;
}

/** How many clients the 10 % tails hold: ⌊n / 10⌋, at least one. */
export function tailSize(clients: number): number {
  return Math.max(1, Math.floor(clients / 10));
}

/**
 * The distribution of `values` (one per client; at least one). `higherIsBetter` says which end is
 * the best 10 %. The tails and the mean are clamped into order (min ≤ worst ≤ mean ≤ best ≤ max
 * for accuracy), which exact arithmetic guarantees and rounding could break by an ulp.
 */
export function distributionOf(values: readonly number[], higherIsBetter: boolean): MetricDistribution {
  if (values.length === 0) throw new RangeError('a distribution needs at least one value');
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const min = sorted[0]!;
  const max = sorted[n - 1]!;
  const average = (part: readonly number[]) => part.reduce((total, value) => total + value, 0) / part.length;
  const mean = Math.min(max, Math.max(min, average(sorted)));
  const variance = sorted.reduce((total, value) => total + (value - mean) ** 2, 0) / n;
  const k = tailSize(n);
  const low = Math.min(mean, average(sorted.slice(0, k)));
  const high = Math.max(mean, average(sorted.slice(n - k)));
  return { mean, std: Math.sqrt(variance), min, max, worst10: higherIsBetter ? low : high, best10: higherIsBetter ? high : low };
}

/**
 * The round's federated evaluation from the clients' answers. Answers with no examples carry no
 * measurement and are left out; undefined when none is left. `weightOf` maps a client's reported
 * count to its weight in the weighted means (the strategy's `clientWeight`, so a client claiming
 * 2^53 examples is capped as its update would be).
 */
export function summarizeEvaluations(answers: readonly ClientEvaluation[], weightOf: (numExamples: number) => number): FederatedEvaluationMetrics | undefined {
  const counted = answers.filter((answer) => answer.numExamples > 0);
  if (counted.length === 0) return undefined;
  // Should the strategy weigh every client 0, the weighted means fall back to the unweighted ones.
  const strategyWeights = counted.map((answer) => weightOf(answer.numExamples));
  const weights = strategyWeights.some((weight) => weight > 0) ? strategyWeights : counted.map(() => 1);
  const totalWeight = weights.reduce((total, weight) => total + weight, 0);
  const weighted = (pick: (answer: ClientEvaluation) => number) =>
    counted.reduce((total, answer, i) => total + weights[i]! * pick(answer), 0) / totalWeight;
  return {
    clients: counted.length,
    examples: counted.reduce((total, answer) => total + answer.numExamples, 0),
    accuracy: distributionOf(counted.map((answer) => answer.accuracy), true),
    loss: distributionOf(counted.map((answer) => answer.loss), false),
    weightedAccuracy: weighted((answer) => answer.accuracy),
    weightedLoss: weighted((answer) => answer.loss),
  };
}
