// Federated evaluation (DESIGN.md §3, step 6): after a round commits, idle clients that announced
// the 'evaluate' capability score the committed model on their own held-out data and report loss,
// accuracy and example count. It only adds metrics to the round: a client that is late, absent or
// sends an invalid answer simply does not count, and nothing here can abort or change the round.
import { configError, encodeFrame, integerAt, shuffled, type EvaluateMessage } from '@shoal/protocol';
import { summarizeEvaluations, type ClientEvaluation, type FederatedEvaluationMetrics } from './evaluation-summary.js';
import { Refusal, type Clock, type Cohort, type Random } from './ports.js';

/** The capability a client announces in hello when it can evaluate (it has held-out data). */
export const EVALUATE_CAPABILITY = 'evaluate';

/** Federated evaluation settings (config `federatedEvaluation`). Defaults on each field. */
export interface FederatedEvaluationOptions {
  /** Evaluate after each committed round whose number is a multiple of this. Default 1 (every committed round). */
  readonly every?: number;
  /** How many idle evaluation-capable clients are asked, drawn with the round's seeded randomness. Default `'all'`. */
  readonly clients?: number | 'all';
  /** Answers must arrive within this many ms of `evaluate` being sent; later ones do not count. Default 30,000. */
  readonly timeoutMs?: number;
  /**
   * Per-client loss and accuracy leave the device in the clear, outside secure aggregation and
   * outside the DP guarantee (docs/privacy.md). With `secagg` or `dp` on, federated evaluation is
   * refused unless this is true. Default false.
   */
  readonly allowUnprotectedMetrics?: boolean;
}

export type ResolvedFederatedEvaluation = Required<FederatedEvaluationOptions>;

export const FEDERATED_EVALUATION_DEFAULTS = { every: 1, clients: 'all', timeoutMs: 30_000, allowUnprotectedMetrics: false } as const satisfies ResolvedFederatedEvaluation;

/**
 * Fills in the defaults and checks the values and the privacy rule: refused with `secagg` or `dp`
 * on unless `allowUnprotectedMetrics`. Throws ShoalError INVALID_CONFIG naming the key.
 */
export function resolveFederatedEvaluation(options: FederatedEvaluationOptions, privacy: { readonly secagg: boolean; readonly dp: boolean }): ResolvedFederatedEvaluation {
  const every = integerAt(options.every ?? FEDERATED_EVALUATION_DEFAULTS.every, 'federatedEvaluation.every', 1);
  const clients = options.clients === undefined || options.clients === 'all' ? 'all' : integerAt(options.clients, 'federatedEvaluation.clients', 1);
  const timeoutMs = integerAt(options.timeoutMs ?? FEDERATED_EVALUATION_DEFAULTS.timeoutMs, 'federatedEvaluation.timeoutMs', 1);
  const allowUnprotectedMetrics = options.allowUnprotectedMetrics ?? FEDERATED_EVALUATION_DEFAULTS.allowUnprotectedMetrics;
  const protections = [...(privacy.secagg ? ['secagg.mode'] : []), ...(privacy.dp ? ['dp.mode'] : [])];
  if (protections.length > 0 && !allowUnprotectedMetrics) {
    throw configError(
      `federatedEvaluation sends each client's loss and accuracy in the clear, outside the protection of ${protections.join(' and ')}: set federatedEvaluation.allowUnprotectedMetrics to true to accept that, or remove federatedEvaluation`,
    );
  }
  return { every, clients, timeoutMs, allowUnprotectedMetrics };
}

/** What an evaluation step runs over: the round's cohort, clock and randomness. */
export interface EvaluationPorts {
  readonly cohort: Cohort;
  readonly clock: Clock;
  readonly random: Random;
}

/** The committed model to evaluate. */
export interface EvaluatedModel {
  readonly round: number;
  readonly modelVersion: string;
  readonly weights: Float32Array;
}

/**
 * Asks the chosen idle clients to evaluate `model` and gathers their answers until they are all in
 * or `timeoutMs` has passed. Returns the distribution (absent when nobody answered with examples)
 * and the bytes exchanged. `weightOf` is the strategy's client weight, for the weighted means.
 */
export async function evaluateOnClients(
  ports: EvaluationPorts,
  options: ResolvedFederatedEvaluation,
  model: EvaluatedModel,
  weightOf: (numExamples: number) => number,
  signal: AbortSignal,
): Promise<{ readonly metrics?: FederatedEvaluationMetrics; readonly bytesUp: number; readonly bytesDown: number }> {
  const { cohort, clock, random } = ports;
  const members = cohort.select(model.round, (eligible) => (options.clients === 'all' ? eligible : shuffled(eligible, random).slice(0, options.clients)), EVALUATE_CAPABILITY);
  const answers = new Map<string, ClientEvaluation>();
  let bytesDown = 0;
  try {
    if (members.length === 0) return { bytesUp: 0, bytesDown: 0 };
    const message: EvaluateMessage = { type: 'evaluate', round: model.round, modelVersion: model.modelVersion, deadlineMs: options.timeoutMs };
    let withWeights: Uint8Array | undefined;
    let withoutWeights: Uint8Array | undefined;
    for (const member of members) {
      const frame = cohort.holds(member, model.modelVersion) ? (withoutWeights ??= encodeFrame(message)) : (withWeights ??= encodeFrame({ ...message, weights: model.weights }));
      bytesDown += cohort.send(member, frame, model.modelVersion);
    }
    const gathered = await cohort.gather({
      kind: 'evaluation',
      members,
      deadline: clock.now() + options.timeoutMs,
      quorum: 1,
      signal,
      accept: (member, answer) => {
        if (answer.modelVersion !== model.modelVersion) {
          throw new Refusal('ROUND_MISMATCH', `evaluation for round ${model.round} names model ${answer.modelVersion}, not ${model.modelVersion}`);
        }
        answers.set(member, { loss: answer.loss, accuracy: answer.accuracy, numExamples: answer.numExamples });
      },
    });
    // Summed in selection order, not arrival order, so the same run gives the same floating-point means.
    const metrics = summarizeEvaluations(members.flatMap((member) => answers.get(member) ?? []), weightOf);
    return { ...(metrics ? { metrics } : {}), bytesUp: gathered.bytes, bytesDown };
  } finally {
    cohort.release(model.round);
  }
}
