import { ShoalError, createSeededRandom, type ClientMessage, type SeededRandom, type Clock, type RoundResultMessage, type TrainMessage } from '@shoal/protocol';
import { webCryptoMaskPrg } from '@shoal/secagg';
import type { ClientEvents, ShoalClientOptions } from './client.js';
import { planRound } from './consent.js';
import { policyShortfalls, type PromiseState } from './policy.js';
import type { Mailbox, RoundOver } from './mailbox.js';
import { runPipeline, type LocalUpdate } from './pipeline.js';
import { maskedExtras, privacySteps } from './privacy-steps.js';
import { SecAggParticipant } from './secagg-participant.js';
import type { LocalTrainer, TrainProgress } from './trainer.js';

/** A global model the client holds, so the coordinator can skip resending it. */
export interface HeldModel {
  readonly version: string;
  readonly weights: Float32Array;
}

/** Why a client's part of a round stopped before its update was sent: its deadline passed, or the round ended for it first. */
export type RoundStop = 'deadline' | RoundOver['by'];

/** What a round works with: the connection (mailbox and sender), the trainer, the options and the events. */
export interface RoundIo {
  readonly mailbox: Mailbox;
  readonly send: (message: ClientMessage) => void;
  readonly emit: <K extends keyof ClientEvents>(event: K, payload: ClientEvents[K]) => void;
  readonly trainer: LocalTrainer;
  readonly options: ShoalClientOptions;
  readonly clock: Clock;
  /** `run()`'s signal: aborted when the app stops the client or calls `leave()`. */
  readonly signal: AbortSignal;
  /** The coordinator's promise as fetched for this `run()` (undefined without a `policy`). */
  readonly promise: PromiseState | undefined;
}

/**
 * The client's side of one round, top to bottom (docs/protocol.md, "Rounds" and "Secure aggregation"):
 *
 *     train ─ the model, the plan, the user's approval
 *           ─ plain:  train locally ─ update
 *           ─ SecAgg: advertise ─ keys → shares ─ inbox ─ (trained) ─ masked ─ survivors → confirm ─ unmask → reveal
 *     result
 *
 * Every wait pulls the round's next message from the mailbox. The client's part (training and each
 * stage up to its update) must end before `train.deadlineMs` has passed since `train` arrived
 * (`receivedAt`). When the deadline passes, or the round is over early (its `result` comes, a later
 * `train` supersedes it, the connection closes, `run()` stops), local training stops within one
 * batch, its tensors released, and the client sends nothing more for the round (when that comes
 * before its update was sent, `roundStopped` announces it once training has settled). A round the
 * client cannot or will not train is declined. Returns the model the client holds afterwards.
 */
export async function playRound(train: TrainMessage, receivedAt: number, held: HeldModel | undefined, io: RoundIo): Promise<HeldModel | undefined> {
  const { round, modelVersion, config } = train;
  // The model this round trains from: sent with `train`, or held since an earlier round.
  const global = train.weights !== undefined ? { version: modelVersion, weights: train.weights } : held?.version === modelVersion ? held : undefined;
  const mail = io.mailbox.openRound(round, io.signal);
  // Our part stops at the deadline, when the round is over, or when we leave it (finally).
  const part = new AbortController();
  const unfollow = follow(mail.over, part);
  const cancelDeadline = io.clock.after(Math.max(0, receivedAt + train.deadlineMs - io.clock.now()), () => part.abort({ by: 'deadline' }));
  let training: Promise<LocalUpdate> | undefined;
  let sent = false;
  /** Set when our part stopped before the update was sent: announced once training has settled. */
  let stopped: RoundStop | undefined;
  try {
    // What the client will send, announced before anything is trained; the user may decline.
    if (global === undefined) throw new Decline(`client does not hold model ${modelVersion}`);
    io.emit('roundStart', { round, modelVersion });
    const plan = planRound(train, global.weights.length);
    // The app's policy and the coordinator's promise, before anything is trained or sent.
    const shortfalls = io.options.policy ? policyShortfalls(io.options.policy, train, plan, io.promise) : [];
    if (shortfalls.length > 0) {
      io.emit('policyDeclined', { round, kind: 'train', reasons: shortfalls });
      throw new Decline(`policy: ${shortfalls.join('; ')}`);
    }
    io.emit('roundPlan', plan);
    if (!(await unlessAborted(io.options.approveRound?.(plan) ?? true, part.signal))) throw new Decline('declined by the user');

    // Local training. Under SecAgg the keys and shares are exchanged meanwhile.
    const secagg =
      train.secagg &&
      new SecAggParticipant({
        round,
        modelVersion,
        config: train.secagg,
        numValues: plan.updateValues,
        prg: io.options.maskPrg ?? webCryptoMaskPrg(),
        randomBytes: (n) => globalThis.crypto.getRandomValues(new Uint8Array(n)),
        ...(io.options.roundingSeed !== undefined && { roundingBytes: seededBytes(roundStream(io.options.roundingSeed, round)) }),
        ...(io.options.keyAgreement && { agreement: io.options.keyAgreement }),
        ...(io.options.signing && { signing: io.options.signing }),
        ...(io.options.identitySeed && { identitySeed: io.options.identitySeed }),
        ...(io.options.trustedIdentityKeys && { trustedIdentityKeys: io.options.trustedIdentityKeys }),
      });
    if (secagg) io.send(await secagg.advertise());
    training = trainLocally(train, global, io, part.signal);
    training.catch(() => {}); // awaited below; handled meanwhile, while the key stages run
    if (secagg) {
      io.send(await secagg.share(await mail.next('keys', part.signal)));
      secagg.receiveInbox(await mail.next('inbox', part.signal));
    }
    const update = await training;

    // The update, weighted as the round says: in the clear, or masked (with the plan's extra values and metrics).
    const weight = updateWeight(train, update.numExamples);
    const answer: ClientMessage = secagg
      ? await secagg.mask({ delta: update.delta, weight, extra: maskedExtras(update, config), ...(plan.sendsMetrics ? { metrics: update.metrics } : {}) })
      : {
          type: 'update',
          round,
          modelVersion,
          numExamples: weight,
          delta: update.delta,
          metrics: update.metrics,
          ...(update.unclipped !== undefined ? { unclipped: update.unclipped } : {}),
          ...(update.initialLoss !== undefined ? { initialLoss: update.initialLoss } : {}),
        };
    part.signal.throwIfAborted();
    io.send(answer);
    sent = true;
    io.emit('roundEnd', { round, status: 'sent', modelVersion });
    cancelDeadline();

    // SecAgg: the coordinator's later stages have their own deadlines, so these waits have none of ours.
    if (secagg) {
      io.send(await secagg.confirm(await mail.next('survivors', mail.over)));
      io.send(await secagg.reveal(await mail.next('unmask', mail.over)));
    }
  } catch (error) {
    // Stopped (deadline passed, round over): send nothing more. Otherwise we cannot or will not
    // finish the round: say so, so that it need not wait for us.
    if (!part.signal.aborted) {
      if (!(error instanceof Decline)) io.emit('error', { error: error as Error });
      io.send({ type: 'decline', round, reason: (error as Error).message.slice(0, 1_000) });
    } else if (!sent) {
      stopped = (part.signal.reason as { by: RoundStop }).by;
    }
  } finally {
    cancelDeadline();
    unfollow();
    part.abort({ by: 'left' }); // training stops within one batch; the trainer is free once it settles
    await training?.catch(() => {});
  }
  if (stopped !== undefined) io.emit('roundStopped', { round, by: stopped });

  // The coordinator's `result` ends the round (it may have come already and ended our part).
  const result = await mail.next('result', mail.over).catch(() => undefined);
  mail.close();
  return result === undefined ? global : endRound(result, global, io.emit);
}

/**
 * The coordinator's verdict on a round: announced as `roundEnd`; returns the model the client
 * still holds (none once the verdict names a newer version: it comes with the next `train`).
 */
export function endRound(result: RoundResultMessage, held: HeldModel | undefined, emit: RoundIo['emit']): HeldModel | undefined {
  emit('roundEnd', { round: result.round, status: result.status, modelVersion: result.modelVersion, ...(result.reason !== undefined ? { reason: result.reason } : {}) });
  return held?.version === result.modelVersion ? held : undefined;
}

/**
 * The weight this client's update carries in the round's weighted mean, the same rule for plain and
 * secure rounds: its example count, capped at `train.secagg.maxWeight` under secure aggregation (the
 * coordinator cannot cap a weight it only sees masked; under DP it sends maxWeight 1, so every client
 * weighs 1). A plain update carries the count as `numExamples`, which the coordinator's strategy caps.
 */
export function updateWeight(train: TrainMessage, numExamples: number): number {
  return train.secagg === undefined ? numExamples : Math.min(numExamples, train.secagg.maxWeight);
}

/** Trains from the round's global model, then runs the app's update steps and the round's DP steps. */
async function trainLocally(train: TrainMessage, global: HeldModel, io: RoundIo, signal: AbortSignal): Promise<LocalUpdate> {
  const { round, modelVersion, config } = train;
  const { shuffleSeed, updateSteps = [] } = io.options;
  const shuffle = shuffleSeed === undefined ? undefined : roundStream(shuffleSeed, round);
  const onProgress = (progress: TrainProgress) => io.emit('progress', { round, ...progress });
  // q-FedAvg weighs the update by F_k(w^t), the received model's loss on the training data, so it is measured before training.
  const initialLoss = config.reportInitialLoss === true ? (await io.trainer.evaluate(global.weights)).loss : undefined;
  if (initialLoss !== undefined && !Number.isFinite(initialLoss)) throw new ShoalError('NON_FINITE', `round ${round}: the loss of ${modelVersion} on the training data is ${initialLoss}`);
  const epochs = localEpochs(io.options, round, config.epochs);
  // `signal` stops training within one batch; the trainer then releases its tensors and throws ABORTED.
  const result = await io.trainer.train(global.weights, { ...config, epochs }, onProgress, shuffle, signal);
  const update = await runPipeline([...updateSteps, ...privacySteps(config)], { ...result, numExamples: io.trainer.numExamples }, { round, modelVersion, config });
  // Added after the app's and DP's steps, which transform the update, not this measurement.
  return initialLoss === undefined ? update : { ...update, initialLoss };
}

/** The stream of a per-client seed for one round: a client that skips rounds still draws the same in the others. */
function roundStream(seed: number, round: number): SeededRandom {
  return createSeededRandom((Math.imul(seed, 0x9e3779b1) ^ round) >>> 0);
}

/** `randomBytes` drawn from a seeded stream (simulations only: see `roundingSeed`). */
function seededBytes(random: SeededRandom): (n: number) => Uint8Array {
  return (n) => Uint8Array.from({ length: n }, () => random.nextInt(256));
}

/** The epochs this device trains in `round`: the app's `localEpochs` choice, checked, or all `epochs` asked for. */
function localEpochs(options: ShoalClientOptions, round: number, epochs: number): number {
  const chosen = options.localEpochs?.(round, epochs) ?? epochs;
  if (!Number.isInteger(chosen) || chosen < 1 || chosen > epochs) {
    throw new RangeError(`localEpochs returned ${chosen} for round ${round}: it must be an integer from 1 to the ${epochs} epochs the round asks for`);
  }
  return chosen;
}

/** Thrown inside a round the client will not train (it lacks the model, or the user said no): a decline, not an error. */
class Decline extends Error {}

/** Aborts `controller` with `signal`'s reason once `signal` aborts (at once if it has); returns the function that stops following. */
function follow(signal: AbortSignal, controller: AbortController): () => void {
  const onAbort = () => controller.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

/** `value`, or a ShoalError ABORTED as soon as `signal` aborts, whichever comes first. */
function unlessAborted<T>(value: T | Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new ShoalError('ABORTED', 'the round ended while waiting', { cause: signal.reason }));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    Promise.resolve(value).then(
      (settled) => {
        signal.removeEventListener('abort', onAbort);
        resolve(settled);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
