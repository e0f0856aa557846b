import type { TrainMessage } from '@shoal/protocol';

/**
 * Whether the user agreed to take part in training: a fixed answer, or a function that asks (e.g.
 * shows a dialog) and resolves with the answer.
 */
export type Consent = boolean | (() => boolean | Promise<boolean>);

/** Local storage the client may keep model data in; `leave()` clears it. */
export interface ClientStorage {
  clear(): Promise<void>;
}

/**
 * What the client will send in one round, announced (event `roundPlan`, and `approveRound`)
 * before any local training starts, so an app can show the user what leaves the device.
 */
export interface RoundPlan {
  readonly round: number;
  readonly modelVersion: string;
  /**
   * How many numbers the update carries: one per model parameter, plus one (the noised
   * "update was within the clip norm" bit) under secure aggregation with adaptive clipping.
   */
  readonly updateValues: number;
  /**
   * Approximate size of the update message in bytes: 4 per float32 value (plain) or per uint32
   * word (secure aggregation, which adds one word for the masked weight), plus a small envelope.
   * Secure aggregation's key and share messages (a few hundred bytes per neighbour) are extra.
   */
  readonly updateBytes: number;
  /** Differential privacy: the L2 norm the update is clipped to on the device. */
  readonly clipNorm?: number;
  /** Distributed differential privacy: std of the Gaussian noise added to every value on the device. */
  readonly noiseStd?: number;
  /** Whether the update is masked so that the coordinator only ever sees the sum over clients. */
  readonly secureAggregation: boolean;
  readonly secaggMode?: 'secagg' | 'secagg+';
  /**
   * Whether training loss, accuracy and duration travel in the clear with the update: always in a
   * plain round; under secure aggregation only when the round asks (`train.secagg.shareMetrics`)
   * and never with distributed DP, where no noise would cover them.
   */
  readonly sendsMetrics: boolean;
}

/**
 * Bytes of an update message besides its vector: type, round, model version, example count,
 * metrics, and msgpack framing (measured at ~130 for a typical message; rounded up).
 */
const ENVELOPE_BYTES = 160;

/** The plan of the round a `train` message starts, for a model of `numParams` parameters. */
export function planRound(message: TrainMessage, numParams: number): RoundPlan {
  const { clipNorm, noiseStd, bitNoiseStd } = message.config;
  const secagg = message.secagg;
  const updateValues = numParams + (secagg !== undefined && bitNoiseStd !== undefined ? 1 : 0);
  // Under SecAgg the weight travels as one more masked word; in the clear it is `numExamples`.
  const words = updateValues + (secagg !== undefined ? 1 : 0);
  return {
    round: message.round,
    modelVersion: message.modelVersion,
    updateValues,
    updateBytes: 4 * words + ENVELOPE_BYTES + message.modelVersion.length,
    ...(clipNorm !== undefined ? { clipNorm } : {}),
    ...(noiseStd !== undefined ? { noiseStd } : {}),
    secureAggregation: secagg !== undefined,
    ...(secagg !== undefined ? { secaggMode: secagg.mode } : {}),
    sendsMetrics: secagg === undefined || (secagg.shareMetrics === true && noiseStd === undefined),
  };
}

/** Resolves a `Consent` option to the user's answer. */
export async function askConsent(consent: Consent): Promise<boolean> {
  return typeof consent === 'function' ? (await consent()) === true : consent === true;
}
