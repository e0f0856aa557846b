import { MAX_ROUNDS_PER_CLIENT, type PrivacyPromise, type RoundPrivacy } from '@shoal/protocol';
import { retentionOf } from './checkpoint.js';
import type { ResolvedOptions } from './options.js';
import type { PrivacyPolicy, PrivacyState } from './privacy.js';

export type { PrivacyPromise } from '@shoal/protocol';

/**
 * The capability of a client that checks each round's privacy (`train.privacy`): only such clients
 * get the field, since older clients reject fields they do not know.
 */
export const ROUND_PRIVACY_CAPABILITY = 'round-privacy';

/**
 * The promise of a coordinator with these options, published at `/.well-known/shoal-privacy.json`.
 * It is derived from the options, never written by hand, so it cannot drift from what the rounds
 * do; clients hold the coordinator to it (their `policy`), and declining a round that falls short
 * of it is theirs to do.
 */
export function privacyPromise(options: ResolvedOptions): PrivacyPromise {
  const { secagg, dp } = options;
  const metricsInClear = secagg === undefined || (secagg.shareMetrics && dp?.mode !== 'distributed');
  const evaluationInClear = options.federatedEvaluation !== undefined;
  const retention = retentionOf(options.retention);
  return {
    formatVersion: 1,
    secureAggregation: { mode: secagg?.mode ?? 'off', ...(secagg?.threshold !== undefined ? { threshold: secagg.threshold } : {}) },
    differentialPrivacy: dp
      ? {
          mode: dp.mode,
          noiseMultiplier: dp.noiseMultiplier,
          clipNorm: dp.clipNorm,
          adaptiveClipping: dp.adaptiveClip !== undefined,
          ...(dp.delta !== undefined ? { delta: dp.delta } : {}),
          epsilonBudget: dp.targetEpsilon ?? null,
        }
      : { mode: 'off' },
    metricsInClear,
    evaluationInClear,
    leavesDevice: [
      secagg ? 'the model update, masked so that the coordinator can only recover the sum over the cohort' : 'the model update, in the clear',
      ...(secagg ? ['public keys and encrypted key shares for secure aggregation'] : ['the number of training examples']),
      ...(metricsInClear ? ['training loss and accuracy of the round, in the clear'] : []),
      ...(evaluationInClear ? ['evaluation loss, accuracy and example count on held-out data, in the clear'] : []),
    ],
    retention: {
      keepCheckpoints: retention.keepCheckpoints,
      maxCheckpointAgeMs: retention.maxCheckpointAgeMs ?? null,
      resumeTokenTtlMs: options.limits.resumeTokenTtlMs,
      roundsPerClient: MAX_ROUNDS_PER_CLIENT,
    },
  };
}

/** What `train.privacy` states for a round that starts with `state` (privacy spent so far). */
export function roundPrivacy(options: ResolvedOptions, policy: PrivacyPolicy | undefined, state: PrivacyState | undefined): RoundPrivacy {
  const dp = options.dp;
  if (dp === undefined || policy === undefined || state === undefined) return { dpMode: 'off' };
  const spent = policy.spent(state);
  return {
    dpMode: dp.mode,
    noiseMultiplier: dp.noiseMultiplier,
    epsilonSpent: spent.epsilon,
    delta: spent.delta,
    ...(dp.targetEpsilon !== undefined ? { epsilonBudget: dp.targetEpsilon } : {}),
  };
}
