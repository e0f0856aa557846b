import { randomBytes } from 'node:crypto';
import {
  PROTOCOL_VERSION,
  ShoalError,
  closeCodeOf,
  closeReason,
  createSeededRandom,
  decodeClientMessage,
  encodeFrame,
  maxClientPayloadBytes,
  numParams,
  shuffled,
  type ClientMessageLimits,
  type CoordinatorMessage,
  type ErrorCode,
  type HelloMessage,
  type SeededRandom,
} from '@shoal/protocol';
import type { Aggregate, StepResult, Strategy, StrategyState } from '@shoal/strategy';
import { readLatestCheckpoint, writeCheckpoint } from './checkpoint.js';
import type { PeerConnection, PeerHandlers } from './connection.js';
import { PrivacyController, type PrivacyMetrics, type PrivacyState } from './privacy.js';
import { resolveOptions, type CoordinatorOptions, type EvaluationResult, type ResolvedOptions } from './options.js';
import { PlainRound, maxUpdateNormFor } from './plain-round.js';
import { SecAggRound } from './secagg-round.js';
import { nodeKeyAgreement, nodeMaskPrg } from '@shoal/secagg/node';
import { firstNonFinite, type ActiveRound, type RoundMessage, type RoundMetrics } from './round.js';
import { ClientRegistry, type ClientSession } from './sessions.js';

/** The largest cohort a SecAgg coordinator sizes its frame limit for, when no degree bounds it. */
const MAX_SECAGG_COHORT = 10_000;

/** The outcome of a whole training run. */
export interface TrainingSummary {
  readonly rounds: readonly RoundMetrics[];
  readonly modelVersion: string;
  readonly weights: Float32Array;
  /** Why training ended: all rounds ran, the privacy budget ran out, or the coordinator was stopped. */
  readonly stoppedBy: 'completed' | 'budget' | 'stopped';
  /** With `budget`: what the next round would have spent. */
  readonly reason?: string;
}

/**
 * The transport-neutral coordinator: admits connections, runs rounds, commits. A transport (the
 * WebSocket server, or the simulator's in-memory pairs) hands it connections through `accept`.
 */
export class Coordinator {
  readonly options: ResolvedOptions;
  readonly numParams: number;
  readonly maxPayloadBytes: number;
  private readonly limits: ClientMessageLimits;
  readonly history: RoundMetrics[] = [];
  private readonly registry: ClientRegistry;
  private readonly sessions = new Set<ClientSession>();
  /** Open connections that have not sent hello yet (counted against limits.maxPendingHello). */
  private awaitingHello = 0;
  private readonly random: SeededRandom;
  private readonly stopController = new AbortController();
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private runId = randomBytes(6).toString('hex');
  /** Fresh per process: SecAgg keys of a round re-run after a crash can never repeat. */
  private readonly sessionId = randomBytes(8).toString('hex');
  private weights: Float32Array;
  private strategyState: StrategyState;
  private nextRound = 1;
  /** The round whose commit produced the current weights (0: the initial model). */
  private lastCommittedRound = 0;
  private active: ActiveRound | undefined;
  /** The median update norm of the last plain round, for `maxUpdateNorm: 'auto'` (not checkpointed: a resumed run starts from the model-norm bound). */
  private previousMedianNorm: number | undefined;
  private privacy: PrivacyController | undefined;

  constructor(options: CoordinatorOptions) {
    this.options = resolveOptions(options);
    this.registry = new ClientRegistry({ ttlMs: this.options.limits.resumeTokenTtlMs, maxTokens: this.options.limits.maxResumeTokens });
    this.numParams = numParams(options.model.descriptor.manifest);
    if (options.model.weights.length !== this.numParams) {
      throw new RangeError(`coordinator: initial weights have ${options.model.weights.length} values; the manifest needs ${this.numParams}`);
    }
    const secaggDegree = this.options.secagg ? Math.min(this.options.secagg.degree ?? this.options.clientsPerRound ?? MAX_SECAGG_COHORT, MAX_SECAGG_COHORT) : 0;
    const extraMaskedValues = this.options.dp?.adaptiveClip && this.options.secagg ? 1 : 0;
    this.limits = { numParams: this.numParams, secaggDegree, extraMaskedValues };
    this.maxPayloadBytes = maxClientPayloadBytes(this.numParams, secaggDegree);
    this.random = createSeededRandom(this.options.seed);
    this.weights = options.model.weights.slice();
    this.strategyState = this.options.strategy.initialState(this.numParams);
    this.privacy = this.createPrivacy();
  }

  private createPrivacy(restored?: PrivacyState): PrivacyController | undefined {
    const { dp, clientsPerRound, minClients } = this.options;
    return dp && new PrivacyController(dp, clientsPerRound!, minClients, this.options.secagg !== undefined, restored);
  }

  /** The current global model version id: the run id and the last committed round. */
  get modelVersion(): string {
    return this.versionAt(this.lastCommittedRound);
  }

  private versionAt(round: number): string {
    return `${this.runId}:${round}`;
  }

  /** A copy of the current global weights. */
  globalWeights(): Float32Array {
    return this.weights.slice();
  }

  /** Restores from the newest checkpoint, if `checkpointDir` has one. Call before `run`. */
  async restore(): Promise<boolean> {
    if (this.options.checkpointDir === undefined) return false;
    const checkpoint = await readLatestCheckpoint(this.options.checkpointDir);
    if (checkpoint === undefined) return false;
    if (checkpoint.weights.length !== this.numParams) {
      // An operator error (model changed, folder reused), so a ShoalError the CLI reports, not a stack trace.
      throw new ShoalError(
        'INVALID_CONFIG',
        `checkpoint of round ${checkpoint.round} in ${this.options.checkpointDir} has ${checkpoint.weights.length} weights; the configured model has ${this.numParams}: configure the model it was trained with, or use another checkpoint folder`,
      );
    }
    if (checkpoint.strategyName !== this.options.strategy.name) {
      throw new ShoalError(
        'INVALID_CONFIG',
        `checkpoint of round ${checkpoint.round} in ${this.options.checkpointDir} was written by strategy ${checkpoint.strategyName}, not ${this.options.strategy.name}: configure that strategy, or use another checkpoint folder`,
      );
    }
    if ((checkpoint.privacy !== undefined) !== (this.options.dp !== undefined)) {
      throw new ShoalError(
        'INVALID_CONFIG',
        `checkpoint of round ${checkpoint.round} in ${this.options.checkpointDir} was written ${checkpoint.privacy ? 'with' : 'without'} differential privacy, but dp is ${this.options.dp ? 'on' : 'off'} now: use another checkpoint folder`,
      );
    }
    this.privacy = this.createPrivacy(checkpoint.privacy);
    this.runId = checkpoint.runId;
    this.weights = checkpoint.weights;
    this.strategyState = checkpoint.strategyState;
    this.nextRound = checkpoint.round + 1;
    this.lastCommittedRound = Number(checkpoint.modelVersion.split(':').at(-1));
    this.options.log(`resumed from checkpoint of round ${checkpoint.round}; next round ${this.nextRound}`);
    return true;
  }

  /**
   * Whether a new connection may open now: undefined, or why not (the transport refuses the
   * upgrade with HTTP 503). Checked before the upgrade so a flood costs no WebSocket state.
   */
  admission(): string | undefined {
    const { maxConnections, maxPendingHello } = this.options.limits;
    if (this.sessions.size >= maxConnections) return `the coordinator holds its limit of ${maxConnections} connections`;
    if (this.awaitingHello >= maxPendingHello) return `${maxPendingHello} connections are already waiting to say hello`;
    return undefined;
  }

  /** Open connections, and how many of them have not sent hello yet. */
  connectionCounts(): { readonly open: number; readonly awaitingHello: number; readonly resumeTokens: number } {
    return { open: this.sessions.size, awaitingHello: this.awaitingHello, resumeTokens: this.registry.tokenCount };
  }

  /** Admits a new connection; the transport reports its events to the returned handlers. */
  accept(connection: PeerConnection): PeerHandlers {
    const { helloTimeoutMs, maxIdlePartialBytes } = this.options.limits;
    const session: ClientSession = { connection, state: 'awaiting-hello', numExamples: 0, capabilities: [], assignedRounds: new Set(), lastSeenMs: Date.now() };
    this.sessions.add(session);
    this.awaitingHello++;
    // A peer that answers pings but never says hello would otherwise hold its slot forever.
    session.helloTimer = setTimeout(() => this.closeSession(session, 'HELLO_TIMEOUT', `no hello within ${helloTimeoutMs} ms`), helloTimeoutMs);
    if (this.stopController.signal.aborted) this.closeSession(session, 'COORDINATOR_SHUTDOWN', 'coordinator is stopping');
    return {
      message: (frame, isBinary) => this.onFrame(session, frame, isBinary),
      alive: () => {
        session.lastSeenMs = Date.now();
      },
      closed: (code, reason) => this.onClosed(session, code, reason),
      // Only a member of the round in flight has a reason to send a model-sized frame.
      maxPartialBytes: () => (session.busyRound === undefined ? maxIdlePartialBytes : this.maxPayloadBytes),
      tooMuchBuffered: (bytes) => this.closeSession(session, 'MESSAGE_TOO_LARGE', `${bytes} bytes of an unfinished frame exceed this connection's allowance`),
    };
  }

  /** Runs every configured round, then closes all connections with TRAINING_COMPLETE. */
  async run(): Promise<TrainingSummary> {
    const interval = this.options.heartbeatIntervalMs;
    this.heartbeatTimer = setInterval(() => this.checkHeartbeats(), interval);
    const signal = this.stopController.signal;
    let budgetReason: string | undefined;
    try {
      while (this.nextRound <= this.options.rounds && !signal.aborted) {
        await this.waitForClients(signal);
        if (signal.aborted) break;
        budgetReason = this.privacy?.budgetExhausted(this.sampleRate());
        if (budgetReason !== undefined) {
          this.options.log(`training stops before round ${this.nextRound}: ${budgetReason}`);
          break;
        }
        const metrics = await this.runRound(this.nextRound, signal);
        if (signal.aborted) break; // a round cut short by stop() is discarded, never committed
        this.history.push(metrics);
        this.nextRound++;
        this.options.onRound?.(metrics);
      }
    } finally {
      clearInterval(this.heartbeatTimer);
    }
    const stoppedBy = signal.aborted ? 'stopped' : budgetReason !== undefined ? 'budget' : 'completed';
    for (const session of this.sessions) {
      if (stoppedBy === 'stopped') this.closeSession(session, 'COORDINATOR_SHUTDOWN', 'coordinator is stopping');
      else this.closeSession(session, 'TRAINING_COMPLETE', stoppedBy === 'budget' ? 'privacy budget spent' : 'training complete');
    }
    return { rounds: this.history, modelVersion: this.modelVersion, weights: this.globalWeights(), stoppedBy, ...(budgetReason !== undefined ? { reason: budgetReason } : {}) };
  }

  /** Stops after discarding the round in flight; `run()` then resolves. */
  stop(): void {
    this.stopController.abort();
  }

  /** Waits until enough eligible clients are idle; each wait holds nothing once it returns (no growth per connection). */
  private async waitForClients(signal: AbortSignal): Promise<void> {
    while (this.eligibleIdle().length < this.options.minAvailable && !signal.aborted) {
      await this.registry.changed(signal);
    }
  }

  /** One round, top to bottom: select, configure and collect (plain or secure), aggregate, evaluate, commit. */
  private async runRound(round: number, signal: AbortSignal): Promise<RoundMetrics> {
    const started = performance.now();
    const { options } = this;
    const sampleRate = this.sampleRate();
    const cohort = this.selectCohort(sampleRate);
    for (const session of cohort) {
      session.busyRound = round;
      session.assignedRounds.add(round);
    }
    const active = this.createRound(round, cohort);
    this.active = active;
    const outcome = await active.collect(signal);
    this.active = undefined;
    if (outcome.normBound?.medianUpdateNorm !== undefined) this.previousMedianNorm = outcome.normBound.medianUpdateNorm;
    for (const session of cohort) if (session.busyRound === round) session.busyRound = undefined;

    let status: RoundMetrics['status'] = 'aborted';
    let reason = 'abortReason' in outcome ? outcome.abortReason : undefined;
    let evaluation: EvaluationResult | undefined;
    let privacy: Partial<PrivacyMetrics> = this.privacy?.epsilonNow() ?? {};
    if ('aggregate' in outcome) {
      const next = await this.nextModel(active.strategy, outcome.aggregate, round);
      if (signal.aborted) {
        reason = 'coordinator stopped';
      } else if ('failure' in next) {
        reason = next.failure;
      } else {
        evaluation = next.evaluation;
        this.weights = next.step.weights;
        this.strategyState = next.step.state;
        this.lastCommittedRound = round;
        status = 'committed';
        // Only a committed round releases anything about the clients' data, so only it is charged.
        if (this.privacy) privacy = this.privacy.commit(sampleRate, outcome.unclipped);
      }
    }
    if (reason !== undefined) options.log(`round ${round} aborted: ${reason}`);
    await this.commit(round);
    let bytesDown = outcome.bytesDown;
    for (const session of cohort) {
      if (session.state !== 'ready') continue;
      bytesDown += this.send(session, { type: 'result', round, status, modelVersion: this.modelVersion, ...(reason !== undefined ? { reason } : {}) });
    }
    return {
      round,
      status,
      ...(reason !== undefined ? { reason } : {}),
      selected: cohort.length,
      participants: outcome.participants,
      dropouts: outcome.dropouts,
      modelVersion: this.modelVersion,
      ...(evaluation ?? {}),
      ...(outcome.trainLoss !== undefined ? { trainLoss: outcome.trainLoss } : {}),
      bytesUp: outcome.bytesUp,
      bytesDown,
      durationMs: performance.now() - started,
      ...(outcome.secagg ? { secagg: outcome.secagg } : {}),
      ...(outcome.normBound ?? {}),
      ...privacy,
    };
  }

  /**
   * The strategy's step from `aggregate` and the central evaluation of its result, or why the round
   * must abort instead: an aggregate or new weights that are not finite, a step that throws, or an
   * evaluation that throws or rejects. Changes nothing. A failure costs one round, not the run, and
   * is never silent: its message is the round's reason and its stack goes to the log.
   */
  private async nextModel(strategy: Strategy, aggregate: Aggregate, round: number): Promise<{ step: StepResult; evaluation?: EvaluationResult } | { failure: string }> {
    const badSum = firstNonFinite(aggregate.weightedSum);
    if (badSum >= 0 || !Number.isFinite(aggregate.totalWeight)) {
      return { failure: `the aggregate is not finite (${badSum >= 0 ? `weighted sum[${badSum}] = ${aggregate.weightedSum[badSum]}` : `total weight ${aggregate.totalWeight}`})` };
    }
    let step: StepResult;
    try {
      step = strategy.step(this.weights, aggregate, this.strategyState, round);
    } catch (error) {
      return { failure: this.failure(round, `strategy ${strategy.name} failed to step`, error) };
    }
    const bad = firstNonFinite(step.weights);
    if (bad >= 0) return { failure: `the new global weights are not finite (weight ${bad} would be ${step.weights[bad]}); the model is kept` };
    if (this.options.evaluate === undefined) return { step };
    try {
      return { step, evaluation: await this.options.evaluate(step.weights, round) };
    } catch (error) {
      return { failure: this.failure(round, 'evaluate failed', error) };
    }
  }

  /** A failure's reason (with the error's message) for the round's metrics; its stack goes to the log. */
  private failure(round: number, what: string, error: unknown): string {
    this.options.log(`round ${round}: ${what}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return `${what}: ${error instanceof Error ? error.message : String(error)}`;
  }

  /**
   * q, the probability that a given client takes part in the next round: the expected cohort over
   * the clients available now. The accountant's bound assumes Poisson sampling at this rate; with
   * fixed-size cohorts the reported ε is the usual approximation (docs/privacy.md).
   */
  private sampleRate(): number {
    const available = Math.max(1, this.eligibleIdle().length);
    const { clientsPerRound, fraction } = this.options;
    return Math.min(1, clientsPerRound !== undefined ? clientsPerRound / available : (fraction ?? 1));
  }

  private createRound(round: number, cohort: readonly ClientSession[]): ActiveRound & { strategy: Strategy } {
    const { options, privacy } = this;
    const strategy = privacy ? privacy.strategy(options.strategy) : options.strategy;
    const base = strategy.configureTrain(round, options.train);
    const setup = {
      round,
      modelVersion: this.modelVersion,
      cohort,
      weights: this.weights,
      numParams: this.numParams,
      config: privacy ? privacy.trainConfig(base) : base,
      strategy,
      deadlineMs: options.roundTimeoutMs,
      minClients: options.minClients,
      maxUpdateNorm: maxUpdateNormFor(options.maxUpdateNorm, this.weights, this.previousMedianNorm),
    };
    if (options.secagg === undefined) return Object.assign(new PlainRound(setup), { strategy });
    const secagg = privacy ? { ...options.secagg, clipRange: privacy.valueBound() } : options.secagg;
    const secaggRound = new SecAggRound(setup, secagg, {
      sessionId: this.sessionId,
      prg: nodeMaskPrg,
      agreement: nodeKeyAgreement,
      shuffle: (items) => shuffled(items, this.random),
      extraValues: privacy?.sendsMaskedBit ? 1 : 0,
      bitsNoised: privacy?.mode === 'distributed',
    });
    return Object.assign(secaggRound, { strategy });
  }

  /**
   * Idle clients that can take part in this coordinator's rounds: under secure aggregation or DP
   * only those that announced the capability (a client that ignores the round's SecAgg or DP
   * settings would break the round or the privacy guarantee).
   */
  private eligibleIdle(): ClientSession[] {
    const needed = [...(this.options.secagg ? ['secagg'] : []), ...(this.options.dp ? ['dp'] : [])];
    return this.registry.idle().filter((session) => needed.every((capability) => session.capabilities.includes(capability)));
  }

  private selectCohort(sampleRate: number): ClientSession[] {
    const idle = this.eligibleIdle();
    if (this.options.sampling === 'poisson') return idle.filter(() => this.random.next() < sampleRate);
    const { clientsPerRound, fraction } = this.options;
    const wanted = clientsPerRound ?? (fraction !== undefined ? Math.ceil(fraction * idle.length) : idle.length);
    return shuffled(idle, this.random).slice(0, Math.min(wanted, idle.length));
  }

  /** Checkpoints after every round (aborted ones too, so round numbers are never reused). */
  private async commit(round: number): Promise<void> {
    if (this.options.checkpointDir === undefined) return;
    await writeCheckpoint(this.options.checkpointDir, {
      formatVersion: 1,
      runId: this.runId,
      round,
      modelVersion: this.modelVersion,
      weights: this.weights,
      strategyName: this.options.strategy.name,
      strategyState: this.strategyState,
      ...(this.privacy ? { privacy: this.privacy.state() } : {}),
    });
  }

  // ---- connection events ----

  private onFrame(session: ClientSession, frame: Uint8Array, isBinary: boolean): void {
    if (session.state === 'closed') return;
    session.lastSeenMs = Date.now();
    if (!isBinary) return this.closeSession(session, 'BINARY_REQUIRED', 'send binary frames only');
    if (frame.byteLength > this.maxPayloadBytes) {
      return this.closeSession(session, 'MESSAGE_TOO_LARGE', `frame of ${frame.byteLength} bytes exceeds ${this.maxPayloadBytes}`);
    }
    const decoded = decodeClientMessage(frame, this.limits);
    if (!decoded.ok) return this.closeSession(session, decoded.code, decoded.reason);
    const message = decoded.message;
    if (session.state === 'awaiting-hello') {
      if (message.type !== 'hello') return this.closeSession(session, 'UNEXPECTED_MESSAGE', `expected hello first, got ${message.type}`);
      return this.onHello(session, message);
    }
    switch (message.type) {
      case 'hello':
        return this.closeSession(session, 'UNEXPECTED_MESSAGE', 'hello was already received on this connection');
      default:
        return this.onRoundMessage(session, message, frame.byteLength);
    }
  }

  private onHello(session: ClientSession, hello: HelloMessage): void {
    clearTimeout(session.helloTimer);
    this.awaitingHello--;
    session.numExamples = hello.numExamples;
    session.capabilities = hello.capabilities;
    if (hello.modelVersion !== undefined) session.heldVersion = hello.modelVersion;
    const { clientId, resumeToken } = this.registry.admit(session, hello.resumeToken);
    session.state = 'ready';
    this.send(session, {
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      clientId,
      resumeToken,
      model: this.options.model.descriptor,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
    });
    this.options.log(`client ${clientId} joined with ${hello.numExamples} examples`);
  }

  private onRoundMessage(session: ClientSession, message: RoundMessage, bytes: number): void {
    const clientId = session.clientId!;
    const active = this.active;
    if (active && message.round === active.round && active.isMember(clientId)) {
      if (message.type === 'decline') {
        this.options.log(`client ${clientId} declined round ${message.round}: ${message.reason}`);
        session.busyRound = undefined;
      }
      const verdict = active.receive(clientId, message, bytes);
      if (verdict) this.closeSession(session, verdict.close, verdict.reason);
      return;
    }
    // A straggler's message for a round it really was in, arriving after that round closed: dropped.
    if (session.assignedRounds.has(message.round)) return;
    this.closeSession(session, 'ROUND_MISMATCH', `client was not selected for round ${message.round}`);
  }

  private onClosed(session: ClientSession, code: number, reason: string): void {
    if (session.state !== 'closed') this.options.log(`client ${session.clientId ?? '(before hello)'} disconnected (${code} ${reason})`);
    this.forget(session);
  }

  private checkHeartbeats(): void {
    const limit = Date.now() - 2 * this.options.heartbeatIntervalMs;
    for (const session of this.sessions) {
      if (session.lastSeenMs < limit) this.closeSession(session, 'HEARTBEAT_TIMEOUT', 'no heartbeat for two intervals');
      else session.connection.ping();
    }
  }

  private send(session: ClientSession, message: CoordinatorMessage): number {
    const frame = encodeFrame(message);
    session.connection.send(frame);
    return frame.byteLength;
  }

  /** Closes one connection with Shoal's close code; the coordinator and the round go on. */
  private closeSession(session: ClientSession, code: ErrorCode, reason: string): void {
    if (session.state === 'closed') return;
    this.options.log(`closing ${session.clientId ?? 'connection'}: ${code} ${reason}`);
    session.connection.close(closeCodeOf(code), closeReason(reason));
    this.forget(session);
  }

  private forget(session: ClientSession): void {
    if (session.state === 'awaiting-hello') this.awaitingHello--;
    clearTimeout(session.helloTimer);
    session.state = 'closed';
    this.sessions.delete(session);
    this.registry.remove(session);
    if (session.clientId !== undefined) this.active?.drop(session.clientId);
  }
}
