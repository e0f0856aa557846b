import type * as tf from '@tensorflow/tfjs';
import {
  PACE_CAPABILITY,
  PROTOCOL_VERSION,
  ShoalError,
  closeCodeOf,
  closeReason,
  decodeCoordinatorMessage,
  encodeFrame,
  errorCodeOfClose,
  numParams,
  type ClientMessage,
  type ErrorCode,
  type PaceMessage,
  type RetryWindow,
  type WelcomeMessage,
} from '@shoal/protocol';
import { naclSigning, type AsyncKeyAgreement, type AsyncSigning, type KeyAgreement, type MaskPrg, type Signing } from '@shoal/secagg';
import { backoffDelay, paceDelay, sleep, type BackoffOptions } from './backoff.js';
import { systemClock, type Clock } from '@shoal/protocol';
import { askConsent, type ClientStorage, type Consent, type RoundPlan } from './consent.js';
import { Emitter } from './emitter.js';
import { Mailbox } from './mailbox.js';
import type { UpdateStep } from './pipeline.js';
import { answerEvaluate } from './evaluation.js';
import { endRound, playRound, type HeldModel, type RoundIo, type RoundStop } from './round.js';
import { LocalTrainer, type ClientDataset, type TrainProgress } from './trainer.js';
import { defaultPromiseFetch, evaluationShortfalls, fetchPromise, type ClientPolicy, type PromiseFetch, type PromiseState } from './policy.js';
import { SubjectRequests, type HeldData } from './subject-requests.js';
import type { ClientConnection, ClientTransport } from './transport.js';

export type { ClientStorage, Consent, RoundPlan } from './consent.js';
export type { ClientPolicy, PromiseFetch, PromiseState } from './policy.js';
export type { HeldData } from './subject-requests.js';
export type { RoundStop } from './round.js';

export interface ShoalClientOptions {
  /** The coordinator's WebSocket URL, e.g. `ws://127.0.0.1:8080`. */
  readonly url: string;
  /** Bearer token the coordinator accepts. */
  readonly token: string;
  /** The local examples. They never leave the device; only model updates do. */
  readonly data: ClientDataset;
  /**
   * Held-out examples, never trained on, for federated evaluation: with them the client announces
   * the 'evaluate' capability and, when asked, reports the global model's loss, accuracy and
   * example count on them. Those three numbers leave the device in the clear, outside secure
   * aggregation and any DP guarantee (docs/privacy.md). Default: none (the client never evaluates).
   */
  readonly evaluationData?: ClientDataset;
  /** The app's own model; it must match the coordinator's manifest. Default: built from the coordinator's topology. */
  readonly model?: tf.LayersModel;
  /**
   * Builds the tfjs model only while a round (or an evaluation) uses it, and disposes it when that
   * round ends, instead of keeping it from `welcome` until `run()` ends: a device holds the model's
   * memory only while it works, and a process hosting thousands of mostly idle virtual clients holds
   * one model per client at work rather than one per client. Costs one model build per round. The
   * data are still checked against the coordinator's model at `welcome`. No effect with `model` (the
   * app owns that one). Default: `false` (the model is kept between rounds).
   */
  readonly releaseModelBetweenRounds?: boolean;
  /** Steps applied to each update before it is sent (clip, noise, encode, mask). Default: none. */
  readonly updateSteps?: readonly UpdateStep[];
  readonly reconnect?: BackoffOptions;
  /** Opens connections (WebSocket in Node and browsers; in-memory in simulations). */
  readonly transport: ClientTransport;
  /** Prepares tfjs (e.g. picks a backend) before the first round. Default: nothing. */
  readonly prepare?: () => Promise<unknown>;
  /** Source of jitter for reconnect delays and for the wait a `pace` asks for. Default Math.random (jitter needs no secrecy). */
  readonly random?: () => number;
  /**
   * Seeds the order in which local examples are visited each epoch, so a simulation is
   * reproducible run to run. Default: unseeded (a fresh random order).
   */
  readonly shuffleSeed?: number;
  /**
   * Seeds the stochastic rounding of a securely aggregated update (and nothing else), so a
   * simulation with secure aggregation repeats exactly. Never set it on a deployed client: a
   * coordinator that knows it learns which way each value was rounded. Default: the CSPRNG.
   */
  readonly roundingSeed?: number;
  /**
   * How many of a round's `train.epochs` this device trains, from 1 to that number: a device that
   * can afford only part of the work (battery, time) sends the update of fewer epochs rather than
   * miss the round, FedProx's partial work (Li et al. 2020). Called once per round it trains.
   * Default: every epoch asked for.
   */
  readonly localEpochs?: (round: number, epochs: number) => number;
  /** The secure-aggregation mask PRG (AES-128-CTR). Default: WebCrypto; the Node entry uses node:crypto. */
  readonly maskPrg?: MaskPrg;
  /**
   * X25519 for secure aggregation, synchronous or asynchronous. Default: tweetnacl; the browser
   * entry uses WebCrypto where the browser has X25519 (`webCryptoKeyAgreement()`, tweetnacl
   * otherwise), the Node entry node:crypto (all give the same bytes).
   */
  readonly keyAgreement?: KeyAgreement | AsyncKeyAgreement;
  /**
   * Ed25519 for secure aggregation's signatures, synchronous or asynchronous. Default: tweetnacl;
   * the browser entry uses WebCrypto where the browser has Ed25519 (`webCryptoSigning()`, tweetnacl
   * otherwise), the Node entry node:crypto (all give the same bytes).
   */
  readonly signing?: Signing | AsyncSigning;
  /**
   * A pinned identity (docs/secagg.md, "Pinned identities"): the 32-byte Ed25519 seed the app keeps
   * for this device across sessions. `hello` enrols its public key and every SecAgg round is signed
   * with it. Default: none (a fresh signing key per round).
   */
  readonly identitySeed?: Uint8Array;
  /**
   * The identity keys of the devices this client will run secure aggregation with, distributed by
   * the app outside the coordinator's reach: a neighbour signing with any other key is refused, so
   * a coordinator cannot make up clients. Default: any key.
   */
  readonly trustedIdentityKeys?: readonly Uint8Array[];
  /**
   * Whether the user agreed to take part: `run()` opens no connection until this is `true` (or
   * the function resolves `true`), and it is asked again on every `run()`. After `leave()` a plain
   * `true` no longer counts: only a function can grant consent again. Default: `false` (so a
   * browser app must ask); the Node entry defaults to `true`.
   */
  readonly consent?: Consent;
  /**
   * Asked before each round's local training with what the client would send; returning `false`
   * declines the round ('declined by the user') and nothing is trained. Default: every round approved.
   */
  readonly approveRound?: (plan: RoundPlan) => boolean | Promise<boolean>;
  /**
   * What the app requires of every round (docs/privacy.md, "Privacy policy"). With a policy the
   * client fetches the coordinator's privacy promise once per `run()` and, before training, checks
   * each round against the policy and the promise; a round that falls short is declined (event
   * `policyDeclined`) and nothing of it is sent. `{}` holds rounds to the promise only. Default:
   * none (nothing is fetched or checked beyond `approveRound`).
   */
  readonly policy?: ClientPolicy;
  /** Reads the promise's JSON from its URL (`/.well-known/shoal-privacy.json`). Default: the platform's `fetch`. */
  readonly fetchPromise?: PromiseFetch;
  /** Where the app keeps model data on the device; `leave()` calls its `clear()`. Default: none. */
  readonly storage?: ClientStorage;
  /**
   * Measures each round's deadline (`train.deadlineMs`, counted from the arrival of `train`) and
   * the wait before reconnecting after a `pace`. Default: the platform's clock (`performance.now()` and `setTimeout`); tests inject their own.
   */
  readonly clock?: Clock;
}

export interface ClientEvents {
  /** Once per `run()`, before anything connects: the user's answer to the `consent` option. */
  consent: { granted: boolean };
  connected: { clientId: string };
  roundStart: { round: number; modelVersion: string };
  /** Before each round's local training: what this client will send. */
  roundPlan: RoundPlan;
  progress: { round: number } & TrainProgress;
  roundEnd: { round: number; status: 'committed' | 'aborted' | 'sent'; modelVersion: string; reason?: string };
  /**
   * This client's part of a round stopped before its update was sent, once local training has
   * stopped and released its tensors: `by` 'deadline' when `train.deadlineMs` passed, otherwise
   * why the round ended for the client first (its `result` came, a later `train` or `welcome`
   * superseded it, the connection closed, or `run()` stopped). Nothing more is sent for the round;
   * the coordinator's verdict still comes as `roundEnd` when the connection lasts.
   */
  roundStopped: { round: number; by: RoundStop };
  /** A round (or a federated evaluation) declined because it falls short of the policy or the promise: nothing of it was sent. */
  policyDeclined: { round: number; kind: 'train' | 'evaluate'; reasons: readonly string[] };
  /** After answering a federated evaluation: what was sent. */
  evaluated: { round: number; modelVersion: string; loss: number; accuracy: number; numExamples: number };
  error: { error: Error };
  disconnected: { code: number; reason: string };
  /**
   * A scale-out gateway did not admit this client to `round` and asked it to come back within
   * `retryInMs` (pace steering): the client closed the connection normally and reconnects (with its
   * resume token) after `delayMs`, drawn uniformly from the window. Not an error; after `disconnected`.
   */
  paced: { round: number; retryInMs: RetryWindow; delayMs: number };
}

/**
 * What this SDK can do, announced in hello: the coordinator selects only clients able to run its
 * rounds. 'initial-loss': reports `update.initialLoss` when the train config asks (q-FedAvg).
 * 'evaluate' is added only when the app gives `evaluationData`.
 */
const CAPABILITIES = ['fedavg', 'fedprox', 'secagg', 'dp', 'initial-loss', 'round-privacy', 'subject-requests', PACE_CAPABILITY];
const EVALUATE_CAPABILITY = 'evaluate';

/**
 * Close codes from the coordinator after which reconnecting cannot help: it speaks another protocol
 * version, or it refused bytes this SDK would send again (a schema it does not share, a model of
 * another size). Everything else, NON_FINITE included (local training diverged once), is retried;
 * so is a frame *this client* rejected (see `serve`). docs/errors.md lists what happens per code.
 */
const FATAL_CLOSES: ReadonlySet<ErrorCode> = new Set(['UNSUPPORTED_VERSION', 'INVALID_MESSAGE', 'MALFORMED_MESSAGE', 'LENGTH_MISMATCH']);

/**
 * A federated-learning participant. `run()` asks for consent, connects, trains whenever the
 * coordinator selects this client, reconnects with backoff when the connection drops, and resolves
 * when the coordinator says training is complete (or `signal` aborts, or `leave()` is called).
 */
export class ShoalClient extends Emitter<ClientEvents> {
  private readonly options: ShoalClientOptions;
  private trainer: LocalTrainer | undefined;
  private welcome: WelcomeMessage | undefined;
  private resumeToken: string | undefined;
  /** The global model this client holds, so the coordinator can skip resending it. */
  private global: HeldModel | undefined;
  /** Stops the current `run()` (aborted by its signal or by `leave()`). */
  private stopRun: AbortController | undefined;
  /** The current `run()`, settled (never rejects), so `leave()` can wait for it. */
  private running: Promise<void> | undefined;
  /** Set by `leave()`: a standing `consent: true` no longer counts. */
  private left = false;
  /** The coordinator's privacy promise, fetched once per `run()` when the app gives a `policy`. */
  private promise: PromiseState | undefined;
  /** Data-subject requests on the current connection, once its welcome says the coordinator answers them. */
  private subjectRequests: SubjectRequests | undefined;
  /** The pinned identity's public key, announced in every hello: derived once. */
  private pinnedIdentityKey: Uint8Array | undefined;

  constructor(options: ShoalClientOptions) {
    super();
    this.options = options;
  }

  get clientId(): string | undefined {
    return this.welcome?.clientId;
  }

  /**
   * Takes part in training until the coordinator finishes, `signal` aborts or `leave()` is called.
   * Resolves without connecting when consent is refused.
   */
  async run(options: { signal?: AbortSignal } = {}): Promise<void> {
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) stop.abort();
    this.stopRun = stop;
    // A round settles its training before `participate` returns, so the trainer is idle here.
    const running = this.participate(stop.signal).finally(() => {
      options.signal?.removeEventListener('abort', onAbort);
      if (this.stopRun === stop) this.stopRun = undefined;
      this.trainer?.dispose();
      this.trainer = undefined;
    });
    this.running = running.catch(() => {});
    return running;
  }

  /**
   * Stops taking part at once: closes the connection (a round in progress counts as a dropout),
   * makes `run()` resolve, stops reconnecting, disposes the model this client built, forgets the
   * cached global model and the resume token, and clears `storage`. A later `run()` needs consent again.
   */
  async leave(): Promise<void> {
    this.left = true;
    this.stopRun?.abort();
    await this.running;
    this.trainer?.dispose();
    this.trainer = undefined;
    this.global = undefined;
    this.welcome = undefined;
    this.resumeToken = undefined;
    await this.options.storage?.clear();
  }

  /**
   * Asks the coordinator what it holds about this client: its id, whether it holds a resume token,
   * and the rounds the id was selected for and sent an update for; nothing else is kept. Needs an
   * open connection (during `run()`) to a coordinator that offers it; rejects with NOT_SUPPORTED
   * otherwise, and with CONNECTION_FAILED when the connection closes before the answer.
   */
  async requestHeldData(): Promise<HeldData> {
    const { type: _type, ...held } = await this.subjectChannel().ask({ type: 'subject-access' }, 'subject-data');
    return held;
  }

  /**
   * Asks the coordinator to forget this client (its registry entry, resume token and round
   * history), then leaves as `leave()` does: the coordinator closes the connection with FORGOTTEN
   * (4017), `run()` resolves, and a later `run()` joins as a new client. Same preconditions as
   * `requestHeldData`. Resolves with the id that was forgotten.
   */
  async forgetMe(): Promise<{ clientId: string }> {
    const { clientId } = await this.subjectChannel().ask({ type: 'forget' }, 'forgotten');
    await this.leave();
    return { clientId };
  }

  private subjectChannel(): SubjectRequests {
    if (this.subjectRequests === undefined) {
      throw new ShoalError('NOT_SUPPORTED', this.welcome === undefined ? 'not connected: data-subject requests need an open connection (during run())' : 'this coordinator does not answer data-subject requests (its welcome did not offer them)');
    }
    return this.subjectRequests;
  }

  private async participate(signal: AbortSignal): Promise<void> {
    const granted = !(this.left && typeof this.options.consent !== 'function') && (await askConsent(this.options.consent ?? false));
    this.emit('consent', { granted });
    if (!granted || signal.aborted) return;
    this.left = false;
    this.promise = this.options.policy ? await fetchPromise(this.options.url, this.options.fetchPromise ?? defaultPromiseFetch, signal) : undefined;
    await this.options.prepare?.();
    let attempt = 0;
    while (!signal.aborted) {
      let connection: ClientConnection;
      try {
        connection = await this.options.transport.connect(this.options.url, this.options.token, signal);
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ShoalError && error.code === 'UNAUTHORIZED') throw error;
        this.emit('error', { error: error as Error });
        if (attempt >= (this.options.reconnect?.maxAttempts ?? Infinity)) throw error;
        await sleep(backoffDelay(attempt++, this.options.reconnect ?? {}, this.options.random ?? Math.random), signal);
        continue;
      }
      const closed = await this.serve(connection, signal);
      this.emit('disconnected', closed);
      const code = errorCodeOfClose(closed.code);
      if (code === 'TRAINING_COMPLETE' || code === 'FORGOTTEN' || signal.aborted) return;
      if (closed.fatal) throw closed.fatal;
      if (closed.paced) {
        // Not needed this round: come back within the window the gateway gave. A normal close,
        // not a failure, so the reconnect backoff starts over.
        attempt = 0;
        const delayMs = paceDelay(closed.paced.retryInMs, this.options.random ?? Math.random);
        this.emit('paced', { round: closed.paced.round, retryInMs: closed.paced.retryInMs, delayMs });
        await sleep(delayMs, signal, this.options.clock ?? systemClock);
        continue;
      }
      // When we rejected a frame, the close code is our own (the coordinator echoes it): not fatal.
      if (!closed.rejectedFrame && code !== undefined && FATAL_CLOSES.has(code)) {
        throw new ShoalError(code, `coordinator closed the connection: ${closed.reason}`);
      }
      // A coordinator that keeps sending frames we reject must not be hammered: keep backing off.
      if (closed.welcomed && !closed.rejectedFrame) attempt = 0;
      if (attempt >= (this.options.reconnect?.maxAttempts ?? Infinity)) {
        throw new ShoalError('CONNECTION_FAILED', `lost the coordinator (${closed.code} ${closed.reason}) and gave up after ${attempt} reconnects`);
      }
      await sleep(backoffDelay(attempt++, this.options.reconnect ?? {}, this.options.random ?? Math.random), signal);
    }
  }

  /**
   * Serves one connection until it closes. Frames are decoded as they arrive and filed in the
   * connection's mailbox; this loop takes them in order between rounds, and a `train` hands the
   * mailbox to that round (`playRound`) until the round is over.
   */
  private async serve(
    connection: ClientConnection,
    signal: AbortSignal,
  ): Promise<{ code: number; reason: string; welcomed: boolean; rejectedFrame: boolean; fatal?: Error; paced?: PaceMessage }> {
    const clock = this.options.clock ?? systemClock;
    const mailbox = new Mailbox(clock);
    const subject = new SubjectRequests((message) => this.send(connection, message));
    let welcomed = false;
    let rejectedFrame = false;
    let fatal: Error | undefined;
    /** Set when the coordinator paced this client: it closed the connection to come back later. */
    let paced: PaceMessage | undefined;
    /** Set when a bad frame made us forget the cached model: a round that ends later must not restore it. */
    let forgotModel = false;
    /** The model's size once this connection's `welcome` has arrived: `train.weights` must match it. */
    let expectedParams: number | undefined;
    const closed = new Promise<{ code: number; reason: string }>((resolve) => {
      connection.onClose((code, reason) => {
        mailbox.close();
        subject.close(code, reason);
        if (this.subjectRequests === subject) this.subjectRequests = undefined;
        resolve({ code, reason });
      });
    });
    connection.onFrame((frame) => {
      // After a fatal error or a rejected frame nothing more is handled: the connection is closing.
      if (mailbox.isClosed) return;
      const decoded = decodeCoordinatorMessage(frame, expectedParams !== undefined ? { numParams: expectedParams } : {});
      if (!decoded.ok) {
        const error = new ShoalError(decoded.code, `bad message from coordinator: ${decoded.reason}`);
        this.emit('error', { error });
        // Another protocol version stays another version. Anything else (NaN weights, a broken
        // frame) may be one bad frame: reconnect, holding no cached model, so we get fresh weights.
        if (decoded.code === 'UNSUPPORTED_VERSION') fatal = error;
        else rejectedFrame = true;
        this.global = undefined;
        forgotModel = true;
        mailbox.close();
        connection.close(closeCodeOf(decoded.code), closeReason(decoded.reason));
        return;
      }
      if (decoded.message.type === 'welcome') expectedParams = numParams(decoded.message.model.manifest);
      // Answers to data-subject requests belong to no round: they go to whoever asked.
      if (decoded.message.type === 'subject-data' || decoded.message.type === 'forgotten') return subject.answer(decoded.message);
      mailbox.put(decoded.message);
    });
    const onAbort = () => connection.close(1000, this.left ? 'client left' : 'client stopped');
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    this.send(connection, {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      // No numExamples: the example count is the weight secure aggregation masks.
      // A policy without metrics in the clear never evaluates, so the client does not offer to.
      capabilities: this.options.evaluationData !== undefined && this.options.policy?.noMetricsInClear !== true ? [...CAPABILITIES, EVALUATE_CAPABILITY] : CAPABILITIES,
      ...(this.resumeToken !== undefined ? { resumeToken: this.resumeToken } : {}),
      ...(this.global !== undefined ? { modelVersion: this.global.version } : {}),
      ...(this.options.identitySeed !== undefined ? { identityKey: this.identityKey(this.options.identitySeed) } : {}),
    });
    const emit: RoundIo['emit'] = (event, payload) => this.emit(event, payload);
    const send = (message: ClientMessage) => this.send(connection, message);
    try {
      for (;;) {
        const received = await mailbox.take();
        if (received === undefined || signal.aborted) break;
        const { message } = received;
        switch (message.type) {
          case 'welcome':
            await this.onWelcome(message);
            welcomed = true;
            this.subjectRequests = message.subjectRequests === true ? subject : undefined;
            break;
          case 'train': {
            if (!welcomed) throw new ShoalError('UNEXPECTED_MESSAGE', 'coordinator sent train before welcome');
            const held = await this.withTrainer((trainer) => playRound(message, received.at, this.global, { mailbox, send, emit, trainer, options: this.options, clock, signal, promise: this.promise }));
            if (!forgotModel) this.global = held;
            break;
          }
          case 'evaluate': {
            if (!welcomed) throw new ShoalError('UNEXPECTED_MESSAGE', 'coordinator sent evaluate before welcome');
            const shortfalls = evaluationShortfalls(this.options.policy, this.promise);
            if (shortfalls.length > 0) {
              send({ type: 'decline', round: message.round, reason: `policy: ${shortfalls.join('; ')}`.slice(0, 1_000) });
              this.emit('policyDeclined', { round: message.round, kind: 'evaluate', reasons: shortfalls });
              break;
            }
            const held = await this.withTrainer((trainer) => answerEvaluate(message, received.at, this.global, { trainer, data: this.options.evaluationData, send, emit, clock }));
            if (!forgotModel) this.global = held;
            break;
          }
          case 'pace':
            // Not admitted to that round: leave now (the mailbox drops whatever follows) and let
            // `participate` reconnect within the window.
            paced = message;
            mailbox.close();
            connection.close(1000, 'paced');
            break;
          case 'result': // of a round this client is no longer in (e.g. from before a reconnect)
            this.global = endRound(message, this.global, emit);
            break;
          default: // keys, inbox or unmask of a round this client already left
            break;
        }
      }
    } catch (error) {
      if (!signal.aborted) {
        fatal ??= error as Error;
        this.emit('error', { error: error as Error });
        connection.close(1000, 'client error');
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    // Nothing runs after this resolves: the round in progress, if any, has settled.
    return { ...(await closed), welcomed, rejectedFrame, ...(fatal ? { fatal } : {}), ...(paced ? { paced } : {}) };
  }

  private async onWelcome(message: WelcomeMessage): Promise<void> {
    this.resumeToken = message.resumeToken;
    const { data, model, evaluationData } = this.options;
    if (this.options.releaseModelBetweenRounds === true) {
      // Nothing is built until a round needs it; what building would refuse is refused now.
      if (JSON.stringify(this.welcome?.model) !== JSON.stringify(message.model)) this.global = undefined;
      LocalTrainer.check(message.model, data, model, evaluationData);
    } else if (!this.trainer || JSON.stringify(this.welcome?.model) !== JSON.stringify(message.model)) {
      this.trainer?.dispose();
      this.trainer = undefined;
      this.global = undefined;
      this.trainer = await LocalTrainer.create(message.model, data, model, evaluationData);
    }
    this.welcome = message;
    this.emit('connected', { clientId: message.clientId });
  }

  /**
   * Runs `work` (a round, an evaluation) with the trainer kept since `welcome`, or, with
   * `releaseModelBetweenRounds`, with one built for it and disposed once `work` has settled (a
   * round settles its training before it returns, so nothing uses the model afterwards).
   */
  private async withTrainer<T>(work: (trainer: LocalTrainer) => Promise<T>): Promise<T> {
    if (this.trainer !== undefined) return work(this.trainer);
    const welcome = this.welcome;
    if (welcome === undefined) throw new ShoalError('UNEXPECTED_MESSAGE', 'coordinator sent a round before welcome');
    const { data, model, evaluationData } = this.options;
    const trainer = await LocalTrainer.create(welcome.model, data, model, evaluationData);
    try {
      return await work(trainer);
    } finally {
      trainer.dispose();
    }
  }

  /**
   * The public key of the pinned identity `seed`. Every Ed25519 gives the same bytes, so the
   * synchronous tweetnacl derives it (once: hello is sent synchronously, and `options.signing` may
   * be asynchronous).
   */
  private identityKey(seed: Uint8Array): Uint8Array {
    return (this.pinnedIdentityKey ??= naclSigning.keyPair(seed).publicKey);
  }

  private send(connection: ClientConnection, message: ClientMessage): void {
    connection.send(encodeFrame(message));
  }
}
