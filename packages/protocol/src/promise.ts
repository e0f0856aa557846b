import { Rejection, array, boolean, describeError, inRange, integer, isPlainObject, oneOf, positive, reject, string } from './field-checks.js';
import type { Decoded } from './validate.js';

/**
 * What a coordinator promises every device about privacy, published at
 * `/.well-known/shoal-privacy.json` (docs/privacy.md, "Privacy policy"). The coordinator derives it
 * from its options (`privacyPromise` in @shoal/coordinator); the client SDK fetches it and holds
 * every round to it. It lives here because both sides read it.
 */
export interface PrivacyPromise {
  readonly formatVersion: 1;
  readonly secureAggregation: {
    readonly mode: 'off' | 'secagg' | 'secagg+';
    /** The Shamir threshold when fixed by config; absent: derived per round (never below the 2t ≥ k + 2 rule). */
    readonly threshold?: number;
  };
  readonly differentialPrivacy: {
    readonly mode: 'off' | 'central' | 'distributed';
    /** z: the noise std on the sum as a multiple of the clip norm. */
    readonly noiseMultiplier?: number;
    /** The clip norm at the start (it moves with adaptive clipping). */
    readonly clipNorm?: number;
    readonly adaptiveClipping?: boolean;
    readonly delta?: number;
    /** Training stops before a round that would spend more; null: no budget. */
    readonly epsilonBudget?: number | null;
  };
  /** Whether a round's training loss and accuracy leave the device in the clear. */
  readonly metricsInClear: boolean;
  /** Whether devices are asked for federated evaluation (loss, accuracy, count in the clear). */
  readonly evaluationInClear: boolean;
  /** What leaves a device, in words an app can show a user. */
  readonly leavesDevice: readonly string[];
  /** How long the coordinator keeps what it holds (docs/privacy.md, "Retention"). */
  readonly retention: {
    /** Checkpoints (the global model and the privacy accountant; nothing per device) kept at most. */
    readonly keepCheckpoints: number;
    /** Checkpoints older than this are deleted when a new one is written (the newest is always kept); null: no age limit. */
    readonly maxCheckpointAgeMs: number | null;
    /** How long a disconnected device's id and resume token are kept. */
    readonly resumeTokenTtlMs: number;
    /** Rounds remembered per device id (selected for, contributed to), newest first. */
    readonly roundsPerClient: number;
  };
}

const MAX_TEXT = 1_024;
const MAX_LINES = 32;

/**
 * A fetched promise (untrusted JSON) -> a checked PrivacyPromise, or why not. Never throws. Keys this
 * version does not know are ignored, so a newer coordinator's promise still reads.
 */
export function decodePrivacyPromise(value: unknown): Decoded<PrivacyPromise> {
  try {
    return { ok: true, message: promise(value) };
  } catch (error) {
    if (error instanceof Rejection) return { ok: false, code: error.code, reason: error.reason };
    return { ok: false, code: 'INVALID_MESSAGE', reason: `internal validation error: ${describeError(error)}` };
  }
}

function promise(value: unknown): PrivacyPromise {
  const raw = section('promise', value);
  if (raw.formatVersion !== 1) reject('UNSUPPORTED_VERSION', `promise.formatVersion is ${String(raw.formatVersion)}; this client reads 1`);
  const secagg = section('promise.secureAggregation', raw.secureAggregation);
  const dp = section('promise.differentialPrivacy', raw.differentialPrivacy);
  const retention = section('promise.retention', raw.retention);
  const dpMode = oneOf('promise.differentialPrivacy.mode', dp.mode, ['off', 'central', 'distributed'] as const);
  const ageMs = retention.maxCheckpointAgeMs;
  return {
    formatVersion: 1,
    secureAggregation: {
      mode: oneOf('promise.secureAggregation.mode', secagg.mode, ['off', 'secagg', 'secagg+'] as const),
      ...(secagg.threshold !== undefined ? { threshold: integer('promise.secureAggregation.threshold', secagg.threshold, 1) } : {}),
    },
    differentialPrivacy:
      dpMode === 'off'
        ? { mode: 'off' }
        : {
            mode: dpMode,
            noiseMultiplier: inRange('promise.differentialPrivacy.noiseMultiplier', dp.noiseMultiplier, 0, Infinity),
            ...(dp.clipNorm !== undefined ? { clipNorm: positive('promise.differentialPrivacy.clipNorm', dp.clipNorm) } : {}),
            ...(dp.adaptiveClipping !== undefined ? { adaptiveClipping: boolean('promise.differentialPrivacy.adaptiveClipping', dp.adaptiveClipping) } : {}),
            ...(dp.delta !== undefined ? { delta: inRange('promise.differentialPrivacy.delta', dp.delta, 0, 1) } : {}),
            epsilonBudget: dp.epsilonBudget === null || dp.epsilonBudget === undefined ? null : positive('promise.differentialPrivacy.epsilonBudget', dp.epsilonBudget),
          },
    metricsInClear: boolean('promise.metricsInClear', raw.metricsInClear),
    evaluationInClear: boolean('promise.evaluationInClear', raw.evaluationInClear),
    leavesDevice: array('promise.leavesDevice', raw.leavesDevice, MAX_LINES, (line, path) => string(path, line, MAX_TEXT)),
    retention: {
      keepCheckpoints: integer('promise.retention.keepCheckpoints', retention.keepCheckpoints, 1),
      maxCheckpointAgeMs: ageMs === null ? null : positive('promise.retention.maxCheckpointAgeMs', ageMs),
      resumeTokenTtlMs: positive('promise.retention.resumeTokenTtlMs', retention.resumeTokenTtlMs),
      roundsPerClient: integer('promise.retention.roundsPerClient', retention.roundsPerClient, 0),
    },
  };
}

function section(path: string, value: unknown): Record<string, unknown> {
  if (!isPlainObject(value)) return reject('INVALID_MESSAGE', `${path} is not an object`);
  return value;
}
