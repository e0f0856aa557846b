// The `secagg` section of a Shoal config: its keys, their defaults (the same constants the round
// defaults to) and the rules of the neighbourhood size k and threshold t, the one implementation
// that both this schema and `deriveSecAggParams` (every round) apply. The coordinator's schema
// composes it with the others and hands it the cohort size, `clientsPerRound`.
import { ConfigSection, POSITIVE, SECAGG_LIMITS, ShoalError, integerAt } from '@shoal/protocol';
import { maxWeightFor } from './encoding.js';

export const SECAGG_MODES = ['off', 'secagg', 'secagg+'] as const;
export type SecAggMode = (typeof SECAGG_MODES)[number];

/** The `secagg` section with its defaults filled in. */
export interface SecAggConfig {
  readonly mode: SecAggMode;
  /** t. Unset: derived from the neighbourhood and maxDropout. */
  readonly threshold?: number;
  /** k, SecAgg+ only. Unset: `secAggPlusDegree(cohort)`. */
  readonly degree?: number;
  readonly maxDropout: number;
  readonly stageTimeoutMs: number;
  readonly clipRange: number;
  readonly maxWeight: number;
  /** Whether clients send their training metrics in the clear beside the masked input. */
  readonly shareMetrics: boolean;
  /** Scale-out: the smallest group a gateway may run a round's SecAgg over. Unset: MIN_SECAGG_COHORT. */
  readonly groupSize?: number;
}

/** The defaults of `secagg`, and of a round's SecAgg options. */
export const SECAGG_DEFAULTS = {
  mode: 'off',
  /** The fraction of a neighbourhood the derived threshold tolerates losing. */
  maxDropout: 0.3,
  /** Deadline of the advertise, share, confirm and unmask stages. */
  stageTimeoutMs: 30_000,
  /** Every weighted coordinate is clamped to ±clipRange·weight before encoding. */
  clipRange: 1,
  /** Cap on the weight (example count) a client may carry. */
  maxWeight: 1_000,
  /** Metrics stay on the clients: beside the sum, the coordinator learns nothing per client. */
  shareMetrics: false,
} as const satisfies Omit<SecAggConfig, 'threshold' | 'degree' | 'groupSize'>;

/** The smallest SecAgg+ degree a config may give: the client and one neighbour on each side. */
const MIN_DEGREE = 3;

/**
 * Reads the `secagg` section: its keys and ranges, the rules among them, and, when the cohort
 * size `clientsPerRound` (a top-level key) is given, the same rules every round applies to its
 * cohort, so a config whose every round would abort is refused before it starts. With `sampling`
 * `poisson` the cohort only averages clientsPerRound; it is checked at that size.
 */
export function parseSecAggConfig(raw: unknown, clientsPerRound: number | undefined): SecAggConfig {
  const secagg = new ConfigSection(raw, 'secagg', ['mode', 'threshold', 'degree', 'maxDropout', 'stageTimeoutMs', 'clipRange', 'maxWeight', 'shareMetrics', 'groupSize']);
  const config: SecAggConfig = {
    mode: secagg.oneOf('mode', SECAGG_DEFAULTS.mode, SECAGG_MODES),
    ...secagg.optional('threshold', (value, path) => integerAt(value, path, MIN_THRESHOLD)),
    ...secagg.optional('degree', (value, path) => integerAt(value, path, MIN_DEGREE)),
    maxDropout: secagg.read('maxDropout', SECAGG_DEFAULTS.maxDropout, checkMaxDropout),
    stageTimeoutMs: secagg.integer('stageTimeoutMs', SECAGG_DEFAULTS.stageTimeoutMs, 1),
    clipRange: secagg.number('clipRange', SECAGG_DEFAULTS.clipRange, POSITIVE),
    maxWeight: secagg.integer('maxWeight', SECAGG_DEFAULTS.maxWeight, 1),
    shareMetrics: secagg.boolean('shareMetrics', SECAGG_DEFAULTS.shareMetrics),
    ...secagg.optional('groupSize', (value, path) => integerAt(value, path, MIN_SECAGG_COHORT)),
  };
  const { mode, threshold, degree, maxWeight } = config;
  if (mode === 'off') {
    if (threshold !== undefined || degree !== undefined) invalid('secagg.threshold and secagg.degree need secagg.mode secagg or secagg+');
    if (config.groupSize !== undefined) invalid('secagg.groupSize needs secagg.mode secagg or secagg+ (without secure aggregation a gateway runs groups of any size)');
    return config;
  }
  if (mode === 'secagg' && degree !== undefined) invalid('secagg.degree is for secagg+ only: full secagg uses the whole cohort');
  if (degree !== undefined && degree % 2 === 0) invalid(`secagg.degree must be odd (the client itself plus equally many neighbours on each side), got ${degree}`);
  secAggNeighbourhood({ ...config, mode }, clientsPerRound === undefined ? undefined : { size: clientsPerRound, name: 'clientsPerRound', everyRound: true });
  if (clientsPerRound !== undefined && maxWeight > maxWeightFor(clientsPerRound)) {
    invalid(`secagg.maxWeight (${maxWeight}) × clientsPerRound (${clientsPerRound}) reaches 2^32, so the summed weight would wrap: lower secagg.maxWeight to at most ${maxWeightFor(clientsPerRound)}`);
  }
  return config;
}

/** The fewest clients a SecAgg round can run with: t ≥ 2 and t > k/2 need k ≥ 3. */
export const MIN_SECAGG_COHORT = 3;
/** The smallest threshold: one share alone would reveal a secret. */
export const MIN_THRESHOLD = 2;

/**
 * The SecAgg+ degree for a cohort of n: the smallest odd k ≥ 3·log2 n, at most n.
 *
 * Why 3·log2 n: the ring stays connected after dropouts unless (k − 1)/2 consecutive clients in
 * the random order all drop; with dropout rate δ that happens somewhere with probability about
 * n·δ^((k−1)/2) = n^(1 + 1.5·log2 δ), which is ≈ n^−1.6 for δ = 0.3 (8·10^−5 at n = 500) and falls as n
 * grows. Google's FCP searches for the smallest (k, t) meeting 40-bit security and 20-bit
 * correctness bounds against a given corrupt and dropout rate (its test pins n = 10,000,
 * 5 % corrupt, 33 % dropout → k = 86, t = 29); this rule is simpler and makes no claim against
 * colluding clients beyond the threshold argument below.
 */
export function secAggPlusDegree(cohortSize: number): number {
  const atLeast = Math.ceil(3 * Math.log2(cohortSize));
  const odd = atLeast % 2 === 1 ? atLeast : atLeast + 1;
  return Math.min(cohortSize, Math.max(3, odd));
}

/**
 * `maxDropout` in [0, 0.5). The threshold t tolerating it is at most (1 − maxDropout)·k and must
 * exceed (k + 1)/2 (see `secAggNeighbourhood`), so no maxDropout of one half or more leaves any t.
 */
export function checkMaxDropout(value: unknown, path = 'secagg.maxDropout'): number {
  if (typeof value !== 'number' || !(value >= 0 && value < 0.5)) {
    throw new ShoalError(
      'INVALID_CONFIG',
      `${path} must be a number in [0, 0.5), got ${JSON.stringify(value) ?? String(value)}: the threshold must exceed half of each client's ` +
        'neighbourhood (or a coordinator that lies about who dropped out could unmask a client), so fewer than half of it can be allowed to drop out',
    );
  }
  return value;
}

/** The cohort a neighbourhood is checked against: its size, and what a message calls it. */
export interface CohortSize {
  readonly size: number;
  /** e.g. `clientsPerRound` in a config, `the cohort` in a round. */
  readonly name: string;
  /** A config's cohort is every round's: then a message says that every round would abort. */
  readonly everyRound?: boolean;
}

/**
 * The rules of the neighbourhood size k and the threshold t, and their derivation: the one
 * implementation behind `deriveSecAggParams` (for a round's cohort) and the `secagg` config
 * schema (for `clientsPerRound`, or with no cohort size at all, when only a given degree can be
 * checked). Messages name the `secagg.*` keys.
 *
 * - k: the cohort size n for full SecAgg; a given degree, or `secAggPlusDegree(n)`, for SecAgg+.
 * - t: the largest threshold that still tolerates maxDropout, t = ⌊(1 − maxDropout)·k⌋, or a
 *   given one, which must not exceed that; and 2t ≥ k + 2 (t above (k + 1)/2). With 2t > k a
 *   coordinator cannot collect t shares of both b_v and s_v^SK of one client v (each honest holder
 *   reveals one of them, and v has k holders); with the consistency round, 2t ≥ k + 2 is what
 *   keeps it from taking b_u from some holders and the s_v^SK of all of u's masking neighbours
 *   from others, whatever graph and survivor sets it shows (the argument is in docs/secagg.md,
 *   "Threat model"). A larger t also means more colluding clients are needed to open one
 *   client's secrets.
 *
 * Returns k and t, or undefined when k is not known (no cohort and no degree). Throws ShoalError
 * INVALID_CONFIG naming the broken rule.
 */
export function secAggNeighbourhood(
  options: { readonly mode: 'secagg' | 'secagg+'; readonly maxDropout: number; readonly threshold?: number | undefined; readonly degree?: number | undefined },
  cohort?: CohortSize,
): { degree: number; threshold: number } | undefined {
  const { mode, threshold, degree: givenDegree } = options;
  const maxDropout = checkMaxDropout(options.maxDropout);
  if (threshold !== undefined && !(Number.isSafeInteger(threshold) && threshold >= MIN_THRESHOLD)) invalid(`secagg.threshold must be an integer ≥ ${MIN_THRESHOLD}, got ${threshold}`);
  if (givenDegree !== undefined && !(Number.isSafeInteger(givenDegree) && givenDegree >= 2)) invalid(`secagg.degree must be an integer ≥ 2, got ${givenDegree}`);
  if (threshold !== undefined && givenDegree !== undefined && threshold > givenDegree) {
    invalid(`secagg.threshold (${threshold}) exceeds secagg.degree (${givenDegree}): no secret could ever be reconstructed`);
  }
  let degree = givenDegree;
  let neighbourhood = `secagg.degree (${givenDegree})`;
  if (cohort !== undefined) {
    const { size: n, name } = cohort;
    const aborts = cohort.everyRound ? ': every round would abort' : '';
    if (!Number.isSafeInteger(n) || n < MIN_SECAGG_COHORT || n > SECAGG_LIMITS.maxIndex) {
      invalid(`secagg.mode ${mode} needs ${MIN_SECAGG_COHORT} to ${SECAGG_LIMITS.maxIndex} clients per round, but ${name} is ${n}`);
    }
    if (threshold !== undefined && threshold > n) invalid(`secagg.threshold (${threshold}) exceeds ${name} (${n})${aborts}`);
    if (givenDegree !== undefined && givenDegree > n) invalid(`secagg.degree (${givenDegree}) exceeds ${name} (${n})${aborts}`);
    if (mode === 'secagg' && givenDegree !== undefined && givenDegree !== n) {
      invalid(`full secagg uses every client as a neighbour: secagg.degree must be ${name} (${n}), got ${givenDegree}`);
    }
    if (mode === 'secagg+' && givenDegree !== undefined && givenDegree < n && givenDegree % 2 === 0) {
      invalid(`secagg.degree must be odd below ${name} (the client itself plus equally many neighbours on each side), got ${givenDegree}`);
    }
    if (givenDegree === undefined) {
      degree = mode === 'secagg' ? n : secAggPlusDegree(n);
      neighbourhood = mode === 'secagg' ? `${name} (${n}), the neighbourhood of full secagg` : `the secagg+ neighbourhood of ${degree} derived for ${name} (${n})`;
    }
  }
  if (degree === undefined) return undefined;

  const tolerated = Math.floor((1 - maxDropout) * degree + 1e-9); // the epsilon absorbs (1 − 0.3)·10 = 6.999…
  if (threshold === undefined) {
    if (tolerated < MIN_THRESHOLD || !isSafeThreshold(tolerated, degree)) {
      invalid(
        `secagg.maxDropout ${maxDropout} leaves no valid threshold for ${neighbourhood}: the threshold tolerating it, ⌊(1 − ${maxDropout})·${degree}⌋ = ${tolerated}, ` +
          `must be at least ${MIN_THRESHOLD} and exceed (${degree} + 1)/2; lower secagg.maxDropout or use more clients per round`,
      );
    }
    return { degree, threshold: tolerated };
  }
  if (!isSafeThreshold(threshold, degree)) {
    invalid(`secagg.threshold (${threshold}) must exceed (k + 1)/2 for ${neighbourhood}, or a coordinator that lies about who dropped out could unmask a client`);
  }
  if (threshold > tolerated) {
    invalid(`secagg.threshold (${threshold}) cannot tolerate secagg.maxDropout ${maxDropout} of ${neighbourhood} (it allows at most ${tolerated}); lower secagg.threshold or secagg.maxDropout`);
  }
  return { degree, threshold };
}

/**
 * Whether threshold t protects a neighbourhood of k against a lying coordinator: 2t ≥ k + 2
 * (see `secAggNeighbourhood`). The clients check it too (SecAggClient), since they cannot verify
 * the cohort's size or graph.
 */
export function isSafeThreshold(threshold: number, degree: number): boolean {
  return 2 * threshold >= degree + 2;
}

function invalid(message: string): never {
  throw new ShoalError('INVALID_CONFIG', message);
}
