import type * as tf from '@tensorflow/tfjs';
import {
  PROTOCOL_VERSION,
  ShoalError,
  closeCodeOf,
  closeReason,
  createSeededRandom,
  decodeCoordinatorMessage,
  encodeFrame,
  errorCodeOfClose,
  numParams,
  type ClientMessage,
  type CoordinatorMessage,
  type ErrorCode,
  type RoundResultMessage,
  type TrainMessage,
  type WelcomeMessage,
} from '@shoal/protocol';
import { webCryptoMaskPrg, type KeyAgreement, type MaskPrg } from '@shoal/secagg';
import { backoffDelay, sleep, type BackoffOptions } from './backoff.js';
import { askConsent, planRound, type ClientStorage, type Consent, type RoundPlan } from './consent.js';
import { Emitter } from './emitter.js';
import { runPipeline, type LocalUpdate, type UpdateStep } from './pipeline.js';
import { SecAggParticipant } from './secagg-participant.js';
import { privacySteps } from './privacy-steps.js';
import { LocalTrainer, type ClientDataset, type TrainProgress } from './trainer.js';
import type { ClientConnection, ClientTransport } from './transport.js';

export type { ClientStorage, Consent, RoundPlan } from './consent.js';

export interface ShoalClientOptions {
  /** The coordinator's WebSocket URL, e.g. `ws://127.0.0.1:8080`. */
  readonly url: string;
  /** Bearer token the coordinator accepts. */
  readonly token: string;
  /** The local examples. They never leave the device; only model updates do. */
  readonly data: ClientDataset;
  /** The app's own model; it must match the coordinator's manifest. Default: built from the coordinator's topology. */
  readonly model?: tf.LayersModel;
  /** Steps applied to each update before it is sent (clip, noise, encode, mask). Default: none. */
  readonly updateSteps?: readonly UpdateStep[];
  readonly reconnect?: BackoffOptions;
  /** Opens connections (WebSocket in Node and browsers; in-memory in simulations). */
  readonly transport: ClientTransport;
  /** Prepares tfjs (e.g. picks a backend) before the first round. Default: nothing. */
  readonly prepare?: () => Promise<unknown>;
  /** Source of jitter for reconnect delays. Default Math.random (jitter needs no secrecy). */
  readonly random?: () => number;
  /**
   * Seeds the order in which local examples are visited each epoch, so a simulation is
   * reproducible run to run. Default: unseeded (a fresh random order).
   */
  readonly shuffleSeed?: number;
  /** The secure-aggregation mask PRG (AES-128-CTR). Default: WebCrypto; the Node entry uses node:crypto. */
  readonly maskPrg?: MaskPrg;
  /** X25519 for secure aggregation. Default: tweetnacl; the Node entry uses node:crypto (same bytes, faster). */
  readonly keyAgreement?: KeyAgreement;
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
  /** Where the app keeps model data on the device; `leave()` calls its `clear()`. Default: none. */
  readonly storage?: ClientStorage;
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
  error: { error: Error };
  disconnected: { code: number; reason: string };
}

/** What this SDK can do, announced in hello: the coordinator selects only clients able to run its rounds. */
const CAPABILITIES = ['fedavg', 'fedprox', 'secagg', 'dp'];

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
  private global: { version: string; weights: Float32Array } | undefined;
  /** The secure-aggregation round in progress, if any. */
  private secagg: { round: number; participant: SecAggParticipant } | undefined;
  /** Stops the current `run()` (aborted by its signal or by `leave()`). */
  private stopRun: AbortController | undefined;
  /** The current `run()`, settled (never rejects), so `leave()` can wait for it. */
  private running: Promise<void> | undefined;
  /** The last local training started, settled, so the trainer is never disposed under it. */
  private training: Promise<void> | undefined;
  /** Set by `leave()`: a standing `consent: true` no longer counts. */
  private left = false;

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
    const running = this.participate(stop.signal).finally(async () => {
      options.signal?.removeEventListener('abort', onAbort);
      if (this.stopRun === stop) this.stopRun = undefined;
      await this.training; // stops within one batch once `stop` is aborted
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
    this.secagg = undefined;
    await this.options.storage?.clear();
  }

  private async participate(signal: AbortSignal): Promise<void> {
    const granted = !(this.left && typeof this.options.consent !== 'function') && (await askConsent(this.options.consent ?? false));
    this.emit('consent', { granted });
    if (!granted || signal.aborted) return;
    this.left = false;
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
      if (code === 'TRAINING_COMPLETE' || signal.aborted) return;
      if (closed.fatal) throw closed.fatal;
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
   * Serves one connection until it closes. Messages are handled strictly in order (training is
   * awaited before the next message is looked at), so a round's result never overtakes its update.
   */
  private serve(
    connection: ClientConnection,
    signal: AbortSignal,
  ): Promise<{ code: number; reason: string; welcomed: boolean; rejectedFrame: boolean; fatal?: Error }> {
    return new Promise((resolve) => {
      let queue = Promise.resolve();
      let welcomed = false;
      let rejectedFrame = false;
      let fatal: Error | undefined;
      let open = true;
      const onAbort = () => connection.close(1000, this.left ? 'client left' : 'client stopped');
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      connection.onClose((code, reason) => {
        open = false;
        signal.removeEventListener('abort', onAbort);
        // Let the message in progress finish before reporting, so nothing runs after run() returns.
        void queue.then(() => resolve({ code, reason, welcomed, rejectedFrame, ...(fatal ? { fatal } : {}) }));
      });
      connection.onFrame((frame) => {
        queue = queue.then(async () => {
          // After a fatal error or a rejected frame nothing more is handled: the connection is closing.
          if (!open || fatal || rejectedFrame) return;
          const decoded = decodeCoordinatorMessage(frame, this.welcome ? { numParams: numParams(this.welcome.model.manifest) } : {});
          if (!decoded.ok) {
            const error = new ShoalError(decoded.code, `bad message from coordinator: ${decoded.reason}`);
            this.emit('error', { error });
            // Another protocol version stays another version. Anything else (NaN weights, a broken
            // frame) may be one bad frame: reconnect, holding no cached model, so we get fresh weights.
            if (decoded.code === 'UNSUPPORTED_VERSION') fatal = error;
            else rejectedFrame = true;
            this.global = undefined;
            connection.close(closeCodeOf(decoded.code), closeReason(decoded.reason));
            return;
          }
          try {
            await this.handle(decoded.message, connection, signal);
            if (decoded.message.type === 'welcome') welcomed = true;
          } catch (error) {
            if (signal.aborted) return; // training stopped because we are stopping: not an error
            fatal ??= error as Error;
            this.emit('error', { error: error as Error });
            connection.close(1000, 'client error');
          }
        });
      });
      this.send(connection, {
        type: 'hello',
        protocolVersion: PROTOCOL_VERSION,
        numExamples: this.options.data.y.length,
        capabilities: CAPABILITIES,
        ...(this.resumeToken !== undefined ? { resumeToken: this.resumeToken } : {}),
        ...(this.global !== undefined ? { modelVersion: this.global.version } : {}),
      });
    });
  }

  private async handle(message: CoordinatorMessage, connection: ClientConnection, signal: AbortSignal): Promise<void> {
    switch (message.type) {
      case 'welcome':
        return this.onWelcome(message);
      case 'train':
        return this.onTrain(message, connection, signal);
      case 'result':
        return this.onResult(message);
      case 'keys':
      case 'inbox':
      case 'unmask':
        return this.onSecAggStage(message, connection);
    }
  }

  /** Answers one coordinator message of the secure-aggregation stages of the current round. */
  private async onSecAggStage(
    message: Extract<CoordinatorMessage, { type: 'keys' | 'inbox' | 'unmask' }>,
    connection: ClientConnection,
  ): Promise<void> {
    const current = this.secagg;
    if (current === undefined || current.round !== message.round) return; // a round we already left
    try {
      switch (message.type) {
        case 'keys':
          return this.send(connection, current.participant.onKeys(message));
        case 'inbox':
          this.send(connection, await current.participant.onInbox(message));
          this.emit('roundEnd', { round: message.round, status: 'sent', modelVersion: this.global?.version ?? '' });
          return;
        case 'unmask':
          return this.send(connection, current.participant.onUnmask(message));
      }
    } catch (error) {
      // A refusal (the honest-client rules) or a failed training: leave this round, not the connection.
      if (!(error instanceof Error)) throw error;
      this.secagg = undefined;
      if (error instanceof ShoalError && error.code === 'ABORTED') return; // we are stopping; the connection is closing
      this.emit('error', { error });
      this.send(connection, { type: 'decline', round: message.round, reason: error.message.slice(0, 1_000) });
    }
  }

  private async onWelcome(message: WelcomeMessage): Promise<void> {
    this.resumeToken = message.resumeToken;
    if (!this.trainer || JSON.stringify(this.welcome?.model) !== JSON.stringify(message.model)) {
      this.trainer?.dispose();
      this.trainer = undefined;
      this.global = undefined;
      this.trainer = await LocalTrainer.create(message.model, this.options.data, this.options.model);
    }
    this.welcome = message;
    this.emit('connected', { clientId: message.clientId });
  }

  private async onTrain(message: TrainMessage, connection: ClientConnection, signal: AbortSignal): Promise<void> {
    if (!this.trainer) throw new ShoalError('UNEXPECTED_MESSAGE', 'coordinator sent train before welcome');
    if (message.weights) this.global = { version: message.modelVersion, weights: message.weights };
    if (this.global?.version !== message.modelVersion) {
      // We do not hold that version (e.g. we lost it): decline so the round need not wait for us.
      this.send(connection, { type: 'decline', round: message.round, reason: `client does not hold model ${message.modelVersion}` });
      this.global = undefined;
      return;
    }
    this.emit('roundStart', { round: message.round, modelVersion: message.modelVersion });
    const plan = planRound(message, this.global.weights.length);
    this.emit('roundPlan', plan);
    if (this.options.approveRound !== undefined) {
      const approved = await this.options.approveRound(plan);
      if (signal.aborted) return;
      if (!approved) {
        this.send(connection, { type: 'decline', round: message.round, reason: 'declined by the user' });
        return;
      }
    }
    if (message.secagg) {
      // Keys and shares are exchanged while the model trains; the masked update waits for both.
      const training = this.localUpdate(message, signal);
      training.catch(() => {}); // awaited (and its error reported) when the inbox arrives
      const participant = new SecAggParticipant(message.round, message.modelVersion, message.secagg, message.config, this.global.weights.length, training, {
        prg: this.options.maskPrg ?? webCryptoMaskPrg(),
        randomBytes: (n) => globalThis.crypto.getRandomValues(new Uint8Array(n)),
        ...(this.options.keyAgreement ? { agreement: this.options.keyAgreement } : {}),
      });
      this.secagg = { round: message.round, participant };
      this.send(connection, participant.advertise());
      return;
    }
    const update = await this.localUpdate(message, signal);
    this.send(connection, {
      type: 'update',
      round: message.round,
      modelVersion: message.modelVersion,
      numExamples: update.numExamples,
      delta: update.delta,
      metrics: update.metrics,
      ...(update.unclipped !== undefined ? { unclipped: update.unclipped } : {}),
    });
    this.emit('roundEnd', { round: message.round, status: 'sent', modelVersion: message.modelVersion });
  }

  /** Trains on the round's global model and runs the update pipeline; `signal` stops training after the current batch. */
  private localUpdate(message: TrainMessage, signal: AbortSignal): Promise<LocalUpdate> {
    const training = this.trainAndProcess(message, signal);
    this.training = training.then(
      () => {},
      () => {},
    );
    return training;
  }

  private async trainAndProcess(message: TrainMessage, signal: AbortSignal): Promise<LocalUpdate> {
    const trainer = this.trainer!;
    const global = this.global!;
    const context = { round: message.round, modelVersion: message.modelVersion, config: message.config };
    const { shuffleSeed } = this.options;
    // One stream per round, so a client that skips rounds still sees the same order in the others.
    const shuffle = shuffleSeed === undefined ? undefined : createSeededRandom((Math.imul(shuffleSeed, 0x9e3779b1) ^ message.round) >>> 0);
    const onProgress = (progress: TrainProgress) => this.emit('progress', { round: message.round, ...progress });
    // The signal stops training within one batch; the trainer releases its tensors and throws ABORTED.
    const result = await trainer.train(global.weights, message.config, onProgress, shuffle, signal);
    const steps = [...(this.options.updateSteps ?? []), ...privacySteps(message.config)];
    return runPipeline(steps, { ...result, numExamples: trainer.numExamples }, context);
  }

  private onResult(message: RoundResultMessage): void {
    if (this.secagg?.round === message.round) this.secagg = undefined;
    // The new global model arrives with the next `train`; our copy is now stale unless unchanged.
    if (this.global && message.modelVersion !== this.global.version) this.global = undefined;
    this.emit('roundEnd', {
      round: message.round,
      status: message.status,
      modelVersion: message.modelVersion,
      ...(message.reason !== undefined ? { reason: message.reason } : {}),
    });
  }

  private send(connection: ClientConnection, message: ClientMessage): void {
    connection.send(encodeFrame(message));
  }
}
