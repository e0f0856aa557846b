import { randomBytes } from 'node:crypto';
import {
  PROTOCOL_VERSION,
  ShoalError,
  closeCodeOf,
  closeReason,
  decodeClientMessage,
  encodeFrame,
  maxClientPayloadBytes,
  numParams,
  type ClientMessageLimits,
  type CoordinatorMessage,
  type ErrorCode,
  type HelloMessage,
} from '@shoal/protocol';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '@shoal/secagg/node';
import { mkdir, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readLatestCheckpoint, readRelease, writeRelease } from './checkpoint.js';
import { CODE_VERSION, LEDGER_FILE, LedgerWriter, ledgerConfigHash, ledgerSettings, ledgerSink, readLedger, reconcileLedger, roundEntry, type LedgerHead, type RoundEntry, type StartEntry, type Unchained } from './ledger.js';
import { LocalCohort } from './cohort.js';
import type { PeerConnection, PeerHandlers } from './connection.js';
import { resolveOptions, type CoordinatorOptions, type ResolvedOptions } from './options.js';
import { PrivacyPolicy } from './privacy.js';
import { roundRandom } from './random.js';
import { checkpointSink, weightsHash, type Release, type RoundRecord } from './round-log.js';
import type { RoundMetrics } from './round.js';
import { UnmaskWorkers } from './unmask-workers.js';
import { abortedRound, modelVersion, runRound, sampleRate, type CoordinatorState, type RoundPorts, type RunSetup } from './run-round.js';
import { ClientRegistry, type ConnectedClient } from './clients.js';
import { RoundLogWithSubjectRequests, SUBJECT_REQUESTS_CAPABILITY, SubjectRequestCounter } from './subject-requests.js';
import { CoordinatorTelemetry, type LiveState } from './telemetry.js';

/** The capability a client announces when it reports `update.initialLoss` on request (q-FedAvg). */
export const INITIAL_LOSS_CAPABILITY = 'initial-loss';

/** The largest cohort a SecAgg coordinator sizes its frame limit for, when no degree bounds it. */
const MAX_SECAGG_COHORT = 10_000;

/** The outcome of a whole training run. */
export interface TrainingSummary {
  readonly rounds: readonly RoundMetrics[];
  readonly modelVersion: string;
  readonly weights: Float32Array;
  /**
   * Why training ended: all rounds ran, the privacy budget ran out, a committed round reached
   * `targetAccuracy`, or the coordinator was stopped.
   */
  readonly stoppedBy: 'completed' | 'budget' | 'target' | 'stopped';
  /** With `budget`: what the next round would have spent. */
  readonly reason?: string;
}

/**
 * Where a run's rounds come from. By default (`localRounds`) each round runs here over this
 * process's own connections (`runRound`); scale-out replaces it: a leader's rounds are run by its
 * gateways' groups, and a gateway's rounds are its groups of the leader's rounds (@shoal/scaleout).
 * The run loop around it (budget, target, history, checkpoints, ledger) stays the same.
 */
export interface RoundDriver {
  /**
   * Resolves once the next round may start, with how many clients are eligible for it (the sample
   * rate, so the budget check, depends on it); undefined: the run is over (a gateway whose leader
   * finished).
   */
  ready(signal: AbortSignal): Promise<number | undefined>;
  /** Runs the round after `state` and appends its record to `ports.log` (as `runRound` does). */
  run(ports: RoundPorts, setup: RunSetup, state: CoordinatorState, signal: AbortSignal): Promise<{ state: CoordinatorState; record: RoundRecord }>;
}

/** How a coordinator gets its rounds and its devices. */
export interface CoordinatorRole {
  /** Given the coordinator (for its counts), the driver of its rounds; default: rounds run here. */
  readonly driver?: (coordinator: Coordinator) => RoundDriver;
  /** Why this process takes no device connections (a scale-out leader), refused with HTTP 503; default: it does. */
  readonly refusesDevices?: string;
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
  /** Data-subject requests answered since the last round record (counts only; never who). */
  private readonly subjectRequests = new SubjectRequestCounter();
  private readonly clients = new Set<ConnectedClient>();
  /** Open connections that have not sent hello yet (counted against limits.maxPendingHello). */
  private awaitingHello = 0;
  private readonly stopController = new AbortController();
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private readonly setup: RunSetup;
  /** Threads for unmasking big SecAgg rounds: started by the first such round, ended with each run (and by stop). */
  readonly unmaskWorkers: UnmaskWorkers | undefined;
  private readonly cohort: LocalCohort;
  /** The round ports but `random`, which each round gets fresh (`roundRandom`). */
  private readonly ports: Omit<RoundPorts, 'random'>;
  /** Whether the strategy's train config asks clients for `update.initialLoss` (q-FedAvg). */
  private readonly needsInitialLoss: boolean;
  /** Between rounds: the model, strategy and privacy state, replaced by each round's result. */
  private state: CoordinatorState;
  /** `/metrics` and the dashboard's round feed: a sink of this coordinator's round log. */
  readonly telemetry: CoordinatorTelemetry;
  /** Set once `restore` found (or did not find) a checkpoint, or `run` started without one: `/readyz`. */
  private restoreSettled = false;
  /** The privacy ledger (in `ledger.dir` or `checkpointDir`; none without either), and whether its start/resume entry is written. */
  private readonly ledger: LedgerWriter | undefined;
  private ledgerBegun = false;
  /** The ledger head the restored checkpoint recorded. */
  private restoredLedgerHead: LedgerHead | undefined;
  /** The restored checkpoint's own ledger entry (see Checkpoint.ledgerEntry). */
  private restoredLedgerEntry: Unchained<RoundEntry> | undefined;
  private readonly driver: RoundDriver;
  private readonly refusesDevices: string | undefined;

  constructor(options: CoordinatorOptions, role: CoordinatorRole = {}) {
    this.options = resolveOptions(options);
    this.needsInitialLoss = this.options.strategy.configureTrain(1, this.options.train).reportInitialLoss === true;
    this.registry = new ClientRegistry({ ttlMs: this.options.limits.resumeTokenTtlMs, maxTokens: this.options.limits.maxResumeTokens });
    this.numParams = numParams(options.model.descriptor.manifest);
    if (options.model.weights.length !== this.numParams) {
      throw new RangeError(`coordinator: initial weights have ${options.model.weights.length} values; the manifest needs ${this.numParams}`);
    }
    const secaggDegree = this.options.secagg ? Math.min(this.options.secagg.degree ?? this.options.clientsPerRound ?? MAX_SECAGG_COHORT, MAX_SECAGG_COHORT) : 0;
    const extraMaskedValues = this.options.dp?.adaptiveClip && this.options.secagg ? 1 : 0;
    this.limits = { numParams: this.numParams, secaggDegree, extraMaskedValues };
    this.maxPayloadBytes = maxClientPayloadBytes(this.numParams, secaggDegree);
    const { dp, clientsPerRound, minClients, secagg } = this.options;
    this.unmaskWorkers = secagg ? new UnmaskWorkers() : undefined;
    this.setup = {
      options: this.options,
      numParams: this.numParams,
      sessionId: randomBytes(8).toString('hex'),
      ...(dp ? { privacy: new PrivacyPolicy(dp, clientsPerRound!, minClients, secagg !== undefined) } : {}),
      secaggCrypto: { prg: nodeMaskPrg, agreement: nodeKeyAgreement, signing: nodeSigning },
      ...(this.unmaskWorkers ? { unmaskRunner: this.unmaskWorkers } : {}),
    };
    this.cohort = new LocalCohort({
      registry: this.registry,
      eligible: () => this.eligibleIdle(),
      close: (client, code, reason) => this.closeConnection(client, code, reason),
      clock: this.options.clock,
      logger: this.options.logger,
    });
    this.telemetry = new CoordinatorTelemetry(() => this.liveState(), {
      dp: this.options.dp !== undefined,
      ...(this.options.dp?.targetEpsilon !== undefined ? { epsilonBudget: this.options.dp.targetEpsilon } : {}),
    });
    const ledgerDir = this.options.ledger?.dir ?? this.options.checkpointDir;
    this.ledger = ledgerDir !== undefined ? new LedgerWriter(join(ledgerDir, LEDGER_FILE)) : undefined;
    // The round log's durable sinks: the checkpoint first (durable before anyone hears of the round),
    // then the ledger (after it: a crash between the two leaves the checkpoint one round ahead, with
    // the higher ε, which restore() accepts; docs/privacy.md). Its observers: metrics, history and
    // onRound. Its release journal: next to the checkpoints.
    const checkpointDir = this.options.checkpointDir;
    const sinks = [
      ...(this.options.checkpointDir !== undefined
        ? [this.telemetry.timedCheckpoint(checkpointSink(this.options.checkpointDir, () => this.ledger?.head, { retention: this.options.retention }, this.ledger && ((record) => roundEntry(record, this.options))))]
        : []),
      ...(this.ledger ? [ledgerSink(this.ledger, this.options)] : []),
    ];
    const observers = [
      this.telemetry.sink,
      (record: { readonly metrics: RoundMetrics }) => {
        this.history.push(record.metrics);
        this.options.onRound?.(record.metrics);
      },
    ];
    const releaseSinks = checkpointDir !== undefined ? [(release: Release) => writeRelease(checkpointDir, release)] : [];
    this.ports = { cohort: this.cohort, clock: this.options.clock, log: new RoundLogWithSubjectRequests(sinks, this.subjectRequests, observers, releaseSinks), logger: this.options.logger };
    this.state = {
      runId: randomBytes(6).toString('hex'),
      round: 0,
      lastCommittedRound: 0,
      weights: options.model.weights.slice(),
      strategyState: this.options.strategy.initialState(this.numParams),
      ...(this.setup.privacy ? { privacy: this.setup.privacy.initialState() } : {}),
    };
    this.driver = role.driver?.(this) ?? this.localRounds();
    this.refusesDevices = role.refusesDevices;
  }

  /** The default driver: wait for enough idle eligible clients here, and run the round over them. */
  private localRounds(): RoundDriver {
    return {
      ready: async (signal) => {
        await this.waitForClients(signal);
        return this.eligibleIdle().length;
      },
      run: runRound,
    };
  }

  /** The current global model version id: the run id and the last committed round. */
  get modelVersion(): string {
    return modelVersion(this.state.runId, this.state.lastCommittedRound);
  }

  /** A copy of the current global weights. */
  globalWeights(): Float32Array {
    return this.state.weights.slice();
  }

  /**
   * Restores from the newest checkpoint, if `checkpointDir` has one, and charges a release the
   * previous process made and never committed (it died between asking for the unmasking and the
   * round's checkpoint). Call before `run`.
   */
  async restore(): Promise<boolean> {
    const restored = await this.restoreCheckpoint();
    const release = await this.uncommittedRelease(restored);
    // A release in round 1, before any checkpoint: that run goes on (its ledger has begun), at round 0.
    if (release && !restored) this.state = { ...this.state, runId: release.runId };
    await this.beginLedger(restored || release !== undefined);
    if (release) await this.chargeRelease(release);
    this.restoreSettled = true;
    return restored;
  }

  /** The release journal's newest release, if its round has no checkpoint (see `restore`). */
  private async uncommittedRelease(restored: boolean): Promise<Release | undefined> {
    const dir = this.options.checkpointDir;
    const release = dir !== undefined ? await readRelease(dir) : undefined;
    if (release === undefined || (restored && release.runId !== this.state.runId) || release.round <= this.state.round) return undefined;
    if (release.round !== this.state.round + 1 || (!restored && release.round !== 1)) {
      throw new ShoalError(
        'INVALID_CONFIG',
        `the release journal in ${dir} records a released round ${release.round} of run ${release.runId}, but the newest checkpoint there is of round ${this.state.round}${restored ? '' : ' (none)'}: checkpoints were removed; restore them`,
      );
    }
    if (this.setup.privacy === undefined) {
      throw new ShoalError('INVALID_CONFIG', `the release journal in ${dir} records a round released under differential privacy, but dp is off now: use another checkpoint folder`);
    }
    return release;
  }

  /** Records the release's round as aborted and charged: appended like any round (checkpoint, ledger). */
  private async chargeRelease(release: Release): Promise<void> {
    const reason = 'the coordinator stopped after asking for the unmasking, before the commit: the sum may have been released, so the round is charged';
    const aborted = abortedRound(this.ports, this.setup, this.state, release.round, reason, {}, release.charge);
    await this.ports.log.append(aborted.record);
    this.state = aborted.state;
  }

  /** Whether this coordinator serves clients now (`/readyz`): restored, and not stopping. */
  get ready(): boolean {
    return this.restoreSettled && !this.stopController.signal.aborted;
  }

  /** Whether `restore` has finished (or `run` started without it): before that, upgrades are refused. */
  get restoreFinished(): boolean {
    return this.restoreSettled;
  }

  /** Connected clients, and those idle with the capabilities the rounds need: what a scale-out gateway reports to its leader. */
  deviceCounts(): { readonly connected: number; readonly eligible: number } {
    return { connected: this.registry.connectedCount, eligible: this.eligibleIdle().length };
  }

  /** The live counts, round phase and privacy spent, for `/metrics` and the dashboard (read-only). */
  liveState(): LiveState {
    const ready = this.registry.ready();
    const training = ready.filter((client) => this.cohort.isBusy(client.clientId!)).length;
    const inFlight = this.cohort.phase();
    const idlePhase = this.state.round >= this.options.rounds ? 'finished' : 'waiting';
    const phase = !this.restoreSettled ? 'starting' : this.stopController.signal.aborted ? 'stopped' : (inFlight?.stage ?? idlePhase);
    const { privacy: policy } = this.setup;
    const budget = this.options.dp?.targetEpsilon;
    return {
      connected: ready.length,
      idle: ready.length - training,
      training,
      phase,
      round: inFlight?.round ?? this.state.round,
      ...(policy && this.state.privacy
        ? { privacy: { ...policy.spent(this.state.privacy), clipNorm: this.state.privacy.clipNorm, ...(budget !== undefined ? { epsilonBudget: budget } : {}) } }
        : {}),
    };
  }

  private async restoreCheckpoint(): Promise<boolean> {
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
    this.state = {
      runId: checkpoint.runId,
      round: checkpoint.round,
      lastCommittedRound: Number(checkpoint.modelVersion.split(':').at(-1)),
      weights: checkpoint.weights,
      strategyState: checkpoint.strategyState,
      ...(checkpoint.privacy ? { privacy: checkpoint.privacy } : {}),
    };
    this.restoredLedgerHead = checkpoint.ledger;
    this.restoredLedgerEntry = checkpoint.ledgerEntry;
    this.options.logger.info({ round: checkpoint.round }, 'resumed from the checkpoint of this round');
    return true;
  }

  /**
   * Checks the ledger against the restored checkpoint (`reconcileLedger`: refuses when the
   * checkpoint is behind it) and writes the run's start entry, or a resume entry. Once per process.
   */
  private async beginLedger(restored: boolean): Promise<void> {
    if (this.ledger === undefined || this.ledgerBegun) return;
    const dir = dirname(this.ledger.path);
    const verification = await readLedger(this.ledger.path, restored ? this.restoredLedgerHead : undefined);
    const checkpoint = restored
      ? { round: this.state.round, runId: this.state.runId, epsilon: this.spentEpsilon(), ...(this.restoredLedgerHead ? { ledger: this.restoredLedgerHead } : {}) }
      : undefined;
    const plan = reconcileLedger(dir, verification, checkpoint, this.options.dp !== undefined);
    if (plan.action === 'resume' && verification?.ok) {
      this.ledger.continueAt(verification.head);
      // The checkpoint is a round ahead (the process died between its write and the ledger's):
      // the ledger gets that round's entry first, so it records every round itself.
      const missing = this.restoredLedgerEntry;
      if (missing !== undefined && missing.round === this.state.round && !verification.entries.some((entry) => entry.type === 'round' && entry.round === missing.round)) {
        await this.ledger.append(missing);
      }
    }
    if (plan.action === 'new' && plan.archive && verification?.ok) {
      await rename(this.ledger.path, join(dir, `ledger-${(verification.entries[0] as StartEntry).runId}.jsonl`));
    }
    await mkdir(dir, { recursive: true });
    await this.ledger.append(
      {
        type: plan.action === 'resume' ? 'resume' : 'start',
        runId: this.state.runId,
        time: new Date().toISOString(),
        configHash: ledgerConfigHash(this.options, this.options.ledger?.config),
        codeVersion: CODE_VERSION,
        round: this.state.round,
        modelHash: weightsHash(this.state.weights),
        parameters: this.numParams,
        epsilon: this.spentEpsilon(),
        delta: this.options.dp ? (this.setup.privacy?.delta ?? null) : null,
        settings: ledgerSettings(this.options),
      });
    this.ledgerBegun = true;
  }

  /** ε spent so far, or null without DP. */
  private spentEpsilon(): number | null {
    return this.setup.privacy && this.state.privacy ? this.setup.privacy.spent(this.state.privacy).epsilon : null;
  }

  /**
   * Whether a new connection may open now: undefined, or why not (the transport refuses the
   * upgrade with HTTP 503). Checked before the upgrade so a flood costs no WebSocket state.
   */
  admission(): string | undefined {
    if (this.refusesDevices !== undefined) return this.refusesDevices;
    const { maxConnections, maxPendingHello } = this.options.limits;
    if (this.clients.size >= maxConnections) return `the coordinator holds its limit of ${maxConnections} connections`;
    if (this.awaitingHello >= maxPendingHello) return `${maxPendingHello} connections are already waiting to say hello`;
    return undefined;
  }

  /** Admits a new connection; the transport reports its events to the returned handlers. */
  accept(connection: PeerConnection): PeerHandlers {
    const { helloTimeoutMs, maxIdlePartialBytes } = this.options.limits;
    const client: ConnectedClient = { connection, state: 'awaiting-hello', capabilities: [], assignedRounds: new Set(), lastSeenMs: Date.now() };
    this.clients.add(client);
    this.awaitingHello++;
    // A peer that answers pings but never says hello would otherwise hold its slot forever.
    client.cancelHelloTimer = this.options.clock.after(helloTimeoutMs, () => this.closeConnection(client, 'HELLO_TIMEOUT', `no hello within ${helloTimeoutMs} ms`));
    if (this.stopController.signal.aborted) this.closeConnection(client, 'COORDINATOR_SHUTDOWN', 'coordinator is stopping');
    return {
      message: (frame, isBinary) => this.onFrame(client, frame, isBinary),
      alive: () => {
        client.lastSeenMs = Date.now();
      },
      closed: (code, reason) => this.onClosed(client, code, reason),
      // Only a member of the round in flight has a reason to send a model-sized frame.
      maxPartialBytes: () => (client.clientId !== undefined && this.cohort.isMember(client.clientId) ? this.maxPayloadBytes : maxIdlePartialBytes),
      tooMuchBuffered: (bytes) => this.closeConnection(client, 'MESSAGE_TOO_LARGE', `${bytes} bytes of an unfinished frame exceed this connection's allowance`),
    };
  }

  /** Runs every configured round, then closes all connections with TRAINING_COMPLETE. */
  async run(): Promise<TrainingSummary> {
    this.restoreSettled = true; // run without restore: a fresh start
    await this.beginLedger(false);
    const interval = this.options.heartbeatIntervalMs;
    let lastCheckMs = Date.now();
    this.heartbeatTimer = setInterval(() => {
      const now = Date.now();
      // A check that fires late means this process was too busy to read pongs (a long unmasking, a
      // stall): that stretch is not held against the clients; they are pinged and judged next time.
      const late = now - lastCheckMs > 1.5 * interval;
      lastCheckMs = now;
      this.checkHeartbeats(now, late);
    }, interval);
    const signal = this.stopController.signal;
    let budgetReason: string | undefined;
    let reachedTarget = false;
    try {
      while (this.state.round < this.options.rounds && !signal.aborted) {
        const eligible = await this.driver.ready(signal);
        if (signal.aborted || eligible === undefined) break;
        budgetReason = this.state.privacy && this.setup.privacy?.budgetExhausted(this.state.privacy, sampleRate(this.options, eligible));
        if (budgetReason !== undefined) {
          this.options.logger.info({ round: this.state.round + 1, reason: budgetReason }, 'training stops before this round: privacy budget');
          break;
        }
        const random = roundRandom(this.options.seed, this.state.round + 1);
        const { state } = await this.driver.run({ ...this.ports, random }, this.setup, this.state, signal);
        this.state = state;
        reachedTarget = this.reachedTargetAccuracy();
        if (reachedTarget) {
          this.options.logger.info({ round: this.state.round, reason: `test accuracy reached targetAccuracy ${this.options.targetAccuracy}` }, 'training stops after this round: target accuracy');
          break;
        }
      }
    } finally {
      clearInterval(this.heartbeatTimer);
      await this.unmaskWorkers?.close();
    }
    const stoppedBy = signal.aborted ? 'stopped' : budgetReason !== undefined ? 'budget' : reachedTarget ? 'target' : 'completed';
    const delta = this.options.dp ? (this.setup.privacy?.delta ?? null) : null;
    await this.ledger?.append({ type: 'end', time: new Date().toISOString(), stoppedBy, round: this.state.round, modelHash: weightsHash(this.state.weights), epsilon: this.spentEpsilon(), delta });
    for (const client of this.clients) {
      if (stoppedBy === 'stopped') this.closeConnection(client, 'COORDINATOR_SHUTDOWN', 'coordinator is stopping');
      else this.closeConnection(client, 'TRAINING_COMPLETE', stoppedBy === 'budget' ? 'privacy budget spent' : stoppedBy === 'target' ? 'target accuracy reached' : 'training complete');
    }
    return { rounds: this.history, modelVersion: this.modelVersion, weights: this.globalWeights(), stoppedBy, ...(budgetReason !== undefined ? { reason: budgetReason } : {}) };
  }

  /** Whether the round just run committed with a central test accuracy at or above `targetAccuracy`. */
  private reachedTargetAccuracy(): boolean {
    const target = this.options.targetAccuracy;
    const last = this.history.at(-1);
    return target !== undefined && last?.status === 'committed' && last.accuracy !== undefined && last.accuracy >= target;
  }

  /** Stops after discarding the round in flight; `run()` then resolves. */
  stop(): void {
    this.stopController.abort();
    // An unmasking in flight rejects at once (its round aborts) instead of running to its end.
    void this.unmaskWorkers?.close();
  }

  /** Waits until enough eligible clients are idle; each wait holds nothing once it returns (no growth per connection). */
  private async waitForClients(signal: AbortSignal): Promise<void> {
    // The count first: filtering every client on each join would make admitting n clients O(n²).
    const { minAvailable } = this.options;
    while ((this.registry.connectedCount < minAvailable || this.eligibleIdle().length < minAvailable) && !signal.aborted) {
      await this.registry.changed(signal);
    }
  }

  /**
   * Idle clients that can take part in this coordinator's rounds: under secure aggregation or DP
   * only those that announced the capability (a client that ignores the round's SecAgg or DP
   * settings would break the round or the privacy guarantee); with a strategy that asks for
   * `initialLoss` (q-FedAvg), only those that announced 'initial-loss'.
   */
  private eligibleIdle(): ConnectedClient[] {
    const needed = [...(this.options.secagg ? ['secagg'] : []), ...(this.options.dp ? ['dp'] : []), ...(this.needsInitialLoss ? [INITIAL_LOSS_CAPABILITY] : [])];
    return this.registry
      .ready()
      .filter((client) => !this.cohort.isBusy(client.clientId!) && needed.every((capability) => client.capabilities.includes(capability)));
  }

  // ---- connection events ----

  private onFrame(client: ConnectedClient, frame: Uint8Array, isBinary: boolean): void {
    if (client.state === 'closed') return;
    client.lastSeenMs = Date.now();
    if (!isBinary) return this.closeConnection(client, 'BINARY_REQUIRED', 'send binary frames only');
    if (frame.byteLength > this.maxPayloadBytes) {
      return this.closeConnection(client, 'MESSAGE_TOO_LARGE', `frame of ${frame.byteLength} bytes exceeds ${this.maxPayloadBytes}`);
    }
    const decoded = decodeClientMessage(frame, this.limits);
    if (!decoded.ok) return this.closeConnection(client, decoded.code, decoded.reason);
    const message = decoded.message;
    if (client.state === 'awaiting-hello') {
      if (message.type !== 'hello') return this.closeConnection(client, 'UNEXPECTED_MESSAGE', `expected hello first, got ${message.type}`);
      return this.onHello(client, message);
    }
    switch (message.type) {
      case 'hello':
        return this.closeConnection(client, 'UNEXPECTED_MESSAGE', 'hello was already received on this connection');
      case 'subject-access':
        this.subjectRequests.count('access');
        this.send(client, { type: 'subject-data', clientId: client.clientId!, ...this.registry.heldAbout(client) });
        return;
      case 'forget': {
        // Answer first, then erase: the close that follows finds nothing left to release.
        this.subjectRequests.count('erasure');
        this.send(client, { type: 'forgotten', clientId: client.clientId! });
        this.registry.erase(client);
        return this.closeConnection(client, 'FORGOTTEN', 'forgotten at the client\'s request');
      }
      case 'update':
      case 'masked':
        if (client.assignedRounds.has(message.round)) this.registry.contributed(client.clientId!, message.round);
        return this.cohort.receive(client, message, frame.byteLength);
      default:
        return this.cohort.receive(client, message, frame.byteLength);
    }
  }

  private onHello(client: ConnectedClient, hello: HelloMessage): void {
    client.cancelHelloTimer?.();
    this.awaitingHello--;
    client.capabilities = hello.capabilities;
    if (hello.identityKey !== undefined) client.identityKey = hello.identityKey;
    const { clientId, resumeToken } = this.registry.admit(client, hello.resumeToken);
    if (hello.modelVersion !== undefined) this.cohort.announced(clientId, hello.modelVersion);
    client.state = 'ready';
    this.send(client, {
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      clientId,
      resumeToken,
      model: this.options.model.descriptor,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      ...(hello.capabilities.includes(SUBJECT_REQUESTS_CAPABILITY) ? { subjectRequests: true } : {}),
    });
    this.options.logger.info({ stage: 'admit', clientId }, 'client joined');
  }

  private onClosed(client: ConnectedClient, code: number, reason: string): void {
    // The close reason is the peer's text: a field, so the log writer escapes it.
    if (client.state !== 'closed') this.options.logger.info({ ...(client.clientId !== undefined ? { clientId: client.clientId } : {}), code, reason }, 'client disconnected');
    this.forget(client);
  }

  private checkHeartbeats(now: number, late: boolean): void {
    const limit = now - 2 * this.options.heartbeatIntervalMs;
    for (const client of this.clients) {
      if (!late && client.lastSeenMs < limit) this.closeConnection(client, 'HEARTBEAT_TIMEOUT', 'no heartbeat for two intervals');
      else client.connection.ping();
    }
  }

  private send(client: ConnectedClient, message: CoordinatorMessage): number {
    const frame = encodeFrame(message);
    client.connection.send(frame);
    return frame.byteLength;
  }

  /** Closes one connection with Shoal's close code; the coordinator and the round go on. */
  private closeConnection(client: ConnectedClient, code: ErrorCode, reason: string): void {
    if (client.state === 'closed') return;
    // A field: reasons can carry peer text (a field name, a model version).
    this.options.logger.info({ ...(client.clientId !== undefined ? { clientId: client.clientId } : {}), code, reason }, 'closing connection');
    client.connection.close(closeCodeOf(code), closeReason(reason));
    this.forget(client);
  }

  private forget(client: ConnectedClient): void {
    if (client.state === 'awaiting-hello') this.awaitingHello--;
    client.cancelHelloTimer?.();
    client.state = 'closed';
    this.clients.delete(client);
    this.registry.remove(client);
    if (client.clientId !== undefined) this.cohort.disconnected(client.clientId);
  }
}
