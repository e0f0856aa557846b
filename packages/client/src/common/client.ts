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
import { Emitter } from './emitter.js';
import { runPipeline, type LocalUpdate, type UpdateStep } from './pipeline.js';
import { SecAggParticipant } from './secagg-participant.js';
import { privacySteps } from './privacy-steps.js';
import { LocalTrainer, type ClientDataset, type TrainProgress } from './trainer.js';
import type { ClientConnection, ClientTransport } from './transport.js';

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
}

export interface ClientEvents {
  connected: { clientId: string };
  roundStart: { round: number; modelVersion: string };
  progress: { round: number } & TrainProgress;
  roundEnd: { round: number; status: 'committed' | 'aborted' | 'sent'; modelVersion: string; reason?: string };
  error: { error: Error };
  disconnected: { code: number; reason: string };
}

/** What this SDK can do, announced in hello: the coordinator selects only clients able to run its rounds. */
const CAPABILITIES = ['fedavg', 'fedprox', 'secagg', 'dp'];

/** Close codes after which reconnecting cannot help. */
const FATAL_CLOSES: ReadonlySet<ErrorCode> = new Set(['UNSUPPORTED_VERSION', 'INVALID_MESSAGE', 'MALFORMED_MESSAGE', 'LENGTH_MISMATCH', 'NON_FINITE']);

/**
 * A federated-learning participant. `run()` connects, trains whenever the coordinator selects this
 * client, reconnects with backoff when the connection drops, and resolves when the coordinator
 * says training is complete (or `signal` aborts).
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

  constructor(options: ShoalClientOptions) {
    super();
    this.options = options;
  }

  get clientId(): string | undefined {
    return this.welcome?.clientId;
  }

  /** Takes part in training until the coordinator finishes or `signal` aborts. */
  async run(options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options;
    await this.options.prepare?.();
    let attempt = 0;
    try {
      while (!signal?.aborted) {
        let connection: ClientConnection;
        try {
          connection = await this.options.transport.connect(this.options.url, this.options.token, signal);
        } catch (error) {
          if (error instanceof ShoalError && error.code === 'UNAUTHORIZED') throw error;
          this.emit('error', { error: error as Error });
          if (attempt >= (this.options.reconnect?.maxAttempts ?? Infinity)) throw error;
          await sleep(backoffDelay(attempt++, this.options.reconnect ?? {}, this.options.random ?? Math.random), signal);
          continue;
        }
        const closed = await this.serve(connection, signal);
        this.emit('disconnected', closed);
        const code = errorCodeOfClose(closed.code);
        if (code === 'TRAINING_COMPLETE' || signal?.aborted) return;
        if (closed.fatal) throw closed.fatal;
        if (code !== undefined && FATAL_CLOSES.has(code)) {
          throw new ShoalError(code, `coordinator closed the connection: ${closed.reason}`);
        }
        if (closed.welcomed) attempt = 0;
        if (attempt >= (this.options.reconnect?.maxAttempts ?? Infinity)) {
          throw new ShoalError('CONNECTION_FAILED', `lost the coordinator (${closed.code} ${closed.reason}) and gave up after ${attempt} reconnects`);
        }
        await sleep(backoffDelay(attempt++, this.options.reconnect ?? {}, this.options.random ?? Math.random), signal);
      }
    } finally {
      this.trainer?.dispose();
      this.trainer = undefined;
    }
  }

  /**
   * Serves one connection until it closes. Messages are handled strictly in order (training is
   * awaited before the next message is looked at), so a round's result never overtakes its update.
   */
  private serve(
    connection: ClientConnection,
    signal: AbortSignal | undefined,
  ): Promise<{ code: number; reason: string; welcomed: boolean; fatal?: Error }> {
    return new Promise((resolve) => {
      let queue = Promise.resolve();
      let welcomed = false;
      let fatal: Error | undefined;
      let open = true;
      const onAbort = () => connection.close(1000, 'client stopped');
      signal?.addEventListener('abort', onAbort, { once: true });
      connection.onClose((code, reason) => {
        open = false;
        signal?.removeEventListener('abort', onAbort);
        // Let the message in progress finish before reporting, so nothing runs after run() returns.
        void queue.then(() => resolve({ code, reason, welcomed, ...(fatal ? { fatal } : {}) }));
      });
      connection.onFrame((frame) => {
        queue = queue.then(async () => {
          // After a fatal error nothing more is handled: the first error is the one run() reports.
          if (!open || fatal) return;
          const decoded = decodeCoordinatorMessage(frame, this.welcome ? { numParams: numParams(this.welcome.model.manifest) } : {});
          if (!decoded.ok) {
            this.emit('error', { error: new ShoalError(decoded.code, `bad message from coordinator: ${decoded.reason}`) });
            connection.close(closeCodeOf(decoded.code), closeReason(decoded.reason));
            return;
          }
          try {
            await this.handle(decoded.message, connection);
            if (decoded.message.type === 'welcome') welcomed = true;
          } catch (error) {
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

  private async handle(message: CoordinatorMessage, connection: ClientConnection): Promise<void> {
    switch (message.type) {
      case 'welcome':
        return this.onWelcome(message);
      case 'train':
        return this.onTrain(message, connection);
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

  private async onTrain(message: TrainMessage, connection: ClientConnection): Promise<void> {
    if (!this.trainer) throw new ShoalError('UNEXPECTED_MESSAGE', 'coordinator sent train before welcome');
    if (message.weights) this.global = { version: message.modelVersion, weights: message.weights };
    if (this.global?.version !== message.modelVersion) {
      // We do not hold that version (e.g. we lost it): decline so the round need not wait for us.
      this.send(connection, { type: 'decline', round: message.round, reason: `client does not hold model ${message.modelVersion}` });
      this.global = undefined;
      return;
    }
    this.emit('roundStart', { round: message.round, modelVersion: message.modelVersion });
    if (message.secagg) {
      // Keys and shares are exchanged while the model trains; the masked update waits for both.
      const training = this.localUpdate(message);
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
    const update = await this.localUpdate(message);
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

  /** Trains on the round's global model and runs the update pipeline. */
  private async localUpdate(message: TrainMessage): Promise<LocalUpdate> {
    const trainer = this.trainer!;
    const global = this.global!;
    const context = { round: message.round, modelVersion: message.modelVersion, config: message.config };
    const { shuffleSeed } = this.options;
    // One stream per round, so a client that skips rounds still sees the same order in the others.
    const shuffle = shuffleSeed === undefined ? undefined : createSeededRandom((Math.imul(shuffleSeed, 0x9e3779b1) ^ message.round) >>> 0);
    const result = await trainer.train(global.weights, message.config, (progress) => this.emit('progress', { round: message.round, ...progress }), shuffle);
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
