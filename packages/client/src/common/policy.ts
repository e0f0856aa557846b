// The client's privacy policy (docs/privacy.md, "Privacy policy"): what the app requires of every
// round, checked before anything is trained, against the round's `train` message and against the
// coordinator's published promise. Pure functions, except `fetchPromise`, which reads the promise.
import { decodePrivacyPromise, type PrivacyPromise, type TrainMessage } from '@shoal/protocol';
import type { RoundPlan } from './consent.js';

/** What an app requires of every round it takes part in. Every key is optional; unset: no requirement. */
export interface ClientPolicy {
  /** Only rounds under secure aggregation (SecAgg or SecAgg+): the coordinator sees only the cohort's sum. */
  readonly requireSecureAggregation?: boolean;
  /**
   * The smallest noise multiplier z a round may have. Under distributed DP the client checks the z it
   * can verify itself, noiseStd·√t / clipNorm (an honest client never unmasks with fewer than t
   * survivors), and the one the coordinator states, and takes the smaller; under central DP it can
   * only check what the coordinator states. A round without DP falls short.
   */
  readonly minNoiseMultiplier?: number;
  /** The largest ε budget (`train.privacy.epsilonBudget`) a round may run under; a round without a budget falls short. */
  readonly maxEpsilon?: number;
  /** No training or evaluation metrics in the clear: such rounds are declined, and federated evaluation is never answered. */
  readonly noMetricsInClear?: boolean;
  /** Decline every round when the coordinator's promise cannot be fetched or read. Default false. */
  readonly requirePromise?: boolean;
}

/** Fetches JSON from `url` (the promise): injectable for tests; rejects on any failure. */
export type PromiseFetch = (url: string, signal: AbortSignal) => Promise<unknown>;

/** The promise as fetched for one `run()`: the promise, or why there is none. */
export type PromiseState = { readonly promise: PrivacyPromise } | { readonly problem: string };

/** Where the coordinator behind a WebSocket URL publishes its promise: ws→http, wss→https, same host and port. */
export const PROMISE_PATH = '/.well-known/shoal-privacy.json';

/** The promise URL of coordinator `url`, or undefined when it is not a ws:// or wss:// URL (e.g. the simulator's memory://). */
export function promiseUrl(url: string): string | undefined {
  const match = /^(wss?):\/\/([^/?#]+)/i.exec(url);
  if (match === null) return undefined;
  return `${match[1]!.toLowerCase() === 'wss' ? 'https' : 'http'}://${match[2]}${PROMISE_PATH}`;
}

/** The platform's fetch, reading JSON; a non-2xx status is a failure. */
export const defaultPromiseFetch: PromiseFetch = async (url, signal) => {
  const response = await fetch(url, { signal, headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
};

/** Fetches and checks the promise of coordinator `url`. Never throws: a failure is the state's `problem`. */
export async function fetchPromise(url: string, fetcher: PromiseFetch, signal: AbortSignal): Promise<PromiseState> {
  const target = promiseUrl(url);
  if (target === undefined) return { problem: `${url} has no HTTP origin to fetch a privacy promise from` };
  let body: unknown;
  try {
    body = await fetcher(target, signal);
  } catch (error) {
    return { problem: `could not fetch the privacy promise from ${target}: ${error instanceof Error ? error.message : String(error)}` };
  }
  const decoded = decodePrivacyPromise(body);
  return decoded.ok ? { promise: decoded.message } : { problem: `the privacy promise at ${target} is not valid: ${decoded.reason}` };
}

/**
 * Relative slack when comparing noise multipliers: a z computed on the device (noiseStd·√t / C)
 * may differ from the configured one in its last bits.
 */
const RELATIVE_SLACK = 1e-9;

function below(value: number, floor: number): boolean {
  return value < floor * (1 - RELATIVE_SLACK);
}

/**
 * The noise multiplier a client can verify itself: under distributed DP (the round noises each
 * update and masks it), noiseStd·√t / clipNorm, t being the SecAgg threshold, the fewest survivors
 * an honest client unmasks for. Undefined when the round does not noise on the device.
 */
export function verifiedNoiseMultiplier(train: TrainMessage): number | undefined {
  const { noiseStd, clipNorm } = train.config;
  if (noiseStd === undefined || clipNorm === undefined || train.secagg === undefined) return undefined;
  return (noiseStd * Math.sqrt(train.secagg.threshold)) / clipNorm;
}

/**
 * Why a round falls short of `policy` and of the coordinator's promise (an empty list: it does not).
 * `plan` is the round's plan (`planRound`), `promise` the promise fetched for this `run()`, or
 * undefined when no policy asked for one.
 */
export function policyShortfalls(policy: ClientPolicy, train: TrainMessage, plan: RoundPlan, promise: PromiseState | undefined): string[] {
  return [...againstPolicy(policy, train, plan, promise), ...(promise !== undefined && 'promise' in promise ? againstPromise(promise.promise, train, plan) : [])];
}

function againstPolicy(policy: ClientPolicy, train: TrainMessage, plan: RoundPlan, promise: PromiseState | undefined): string[] {
  const reasons: string[] = [];
  const stated = train.privacy;
  if (policy.requirePromise === true && (promise === undefined || 'problem' in promise)) {
    reasons.push(`the policy requires the coordinator's privacy promise: ${promise !== undefined && 'problem' in promise ? promise.problem : 'none was fetched'}`);
  }
  if (policy.requireSecureAggregation === true && train.secagg === undefined) {
    reasons.push('the round is not securely aggregated; the policy requires secure aggregation');
  }
  if (policy.minNoiseMultiplier !== undefined) {
    const minimum = policy.minNoiseMultiplier;
    const verified = verifiedNoiseMultiplier(train);
    const claimed = stated?.dpMode === 'off' ? undefined : stated?.noiseMultiplier;
    if (train.config.clipNorm === undefined || stated?.dpMode === 'off') {
      reasons.push(`the round has no differential privacy; the policy requires a noise multiplier of at least ${minimum}`);
    } else if (verified === undefined && claimed === undefined) {
      reasons.push(`the round does not state its noise multiplier; the policy requires at least ${minimum}`);
    } else {
      const effective = Math.min(verified ?? Infinity, claimed ?? Infinity);
      if (below(effective, minimum)) {
        const source = verified !== undefined && verified <= (claimed ?? Infinity) ? 'verified from noiseStd, clipNorm and the SecAgg threshold' : 'as the coordinator states it';
        reasons.push(`the round's noise multiplier ${format(effective)} (${source}) is below the policy's minimum ${minimum}`);
      }
    }
  }
  if (policy.maxEpsilon !== undefined) {
    const maximum = policy.maxEpsilon;
    if (stated === undefined || stated.dpMode === 'off') reasons.push(`the round states no ε; the policy allows at most ${maximum}`);
    else if (stated.epsilonBudget === undefined) reasons.push(`the coordinator sets no ε budget; the policy allows at most ${maximum}`);
    else if (stated.epsilonBudget > maximum) reasons.push(`the round's ε budget ${format(stated.epsilonBudget)} exceeds the policy's maximum ${maximum}`);
    else if ((stated.epsilonSpent ?? 0) > maximum) reasons.push(`ε ${format(stated.epsilonSpent!)} is already spent, more than the policy's maximum ${maximum}`);
  }
  if (policy.noMetricsInClear === true && plan.sendsMetrics) {
    reasons.push('the round sends training metrics in the clear; the policy forbids metrics in the clear');
  }
  return reasons;
}

function againstPromise(promise: PrivacyPromise, train: TrainMessage, plan: RoundPlan): string[] {
  const reasons: string[] = [];
  const promisedSecagg = promise.secureAggregation;
  if (promisedSecagg.mode !== 'off') {
    if (train.secagg === undefined) reasons.push(`the round is not securely aggregated, but the coordinator promises ${promisedSecagg.mode}`);
    else if (promisedSecagg.mode === 'secagg' && train.secagg.mode === 'secagg+') reasons.push('the round uses secagg+, but the coordinator promises full secagg');
    else if (promisedSecagg.threshold !== undefined && train.secagg.threshold < promisedSecagg.threshold) {
      reasons.push(`the round's SecAgg threshold ${train.secagg.threshold} is below the promised ${promisedSecagg.threshold}`);
    }
  }
  const dp = promise.differentialPrivacy;
  if (dp.mode !== 'off') {
    const stated = train.privacy;
    if (train.config.clipNorm === undefined) reasons.push(`the round does not clip updates, but the coordinator promises ${dp.mode} differential privacy`);
    if (dp.mode === 'distributed' && train.config.noiseStd === undefined) reasons.push('the round adds no noise on the device, but the coordinator promises distributed differential privacy');
    if (stated === undefined) {
      reasons.push('the round does not state its privacy settings, so it cannot be held to the promise');
    } else {
      if (stated.dpMode !== dp.mode) reasons.push(`the round's differential privacy is ${stated.dpMode}, but the coordinator promises ${dp.mode}`);
      if (stated.noiseMultiplier !== undefined && dp.noiseMultiplier !== undefined && below(stated.noiseMultiplier, dp.noiseMultiplier)) {
        reasons.push(`the round's noise multiplier ${format(stated.noiseMultiplier)} is below the promised ${dp.noiseMultiplier}`);
      }
      const budget = dp.epsilonBudget ?? null;
      if (budget !== null && (stated.epsilonBudget === undefined || stated.epsilonBudget > budget)) {
        reasons.push(`the round's ε budget ${stated.epsilonBudget === undefined ? 'is unlimited' : format(stated.epsilonBudget)}, more than the promised ${budget}`);
      }
    }
  }
  if (!promise.metricsInClear && plan.sendsMetrics) reasons.push('the round sends training metrics in the clear, which the coordinator promises it does not');
  return reasons;
}

/** Why this client must not answer a federated evaluation (an empty list: it may). */
export function evaluationShortfalls(policy: ClientPolicy | undefined, promise: PromiseState | undefined): string[] {
  const reasons: string[] = [];
  if (policy?.noMetricsInClear === true) reasons.push('evaluation metrics would leave the device in the clear; the policy forbids metrics in the clear');
  if (promise !== undefined && 'promise' in promise && !promise.promise.evaluationInClear) reasons.push('the coordinator promises no federated evaluation');
  return reasons;
}

function format(value: number): string {
  return String(Number(value.toPrecision(6)));
}
