import { encodeFrame, type CoordinatorMessage, type SecAggRoundConfig, type TrainMetrics } from '@shoal/protocol';
import { SecAggAbort, SecAggError, SecAggServer, deriveSecAggParams, type KeyAgreement, type MaskPrg, type SecAggParams } from '@shoal/secagg';
import type { Aggregate } from '@shoal/strategy';
import type { RoundSetup } from './plain-round.js';
import { StageCollector, type ActiveRound, type RoundMessage, type RoundOutcome, type SecAggMetrics, type SecAggStage, type Verdict } from './round.js';
import type { ClientSession } from './sessions.js';

/** Secure-aggregation settings of a coordinator. Defaults on each field. */
export interface SecAggOptions {
  readonly mode: 'secagg' | 'secagg+';
  /** Shamir threshold; default derived from the cohort (or neighbourhood) size and maxDropout. */
  readonly threshold?: number;
  /** SecAgg+ neighbourhood size, the client included (odd); default O(log n). */
  readonly degree?: number;
  /** Dropout fraction the derived threshold tolerates. Default 0.3. */
  readonly maxDropout?: number;
  /** Deadline of the advertise, share and unmask stages. Default 30,000 ms. */
  readonly stageTimeoutMs?: number;
  /** Every weighted coordinate is clamped to ±clipRange·weight before encoding. Default 1. */
  readonly clipRange?: number;
  /** Cap on the weight (example count) a client may carry. Default 1,000. */
  readonly maxWeight?: number;
}

/** The message each stage waits for. */
const EXPECTED: Readonly<Record<SecAggStage, RoundMessage['type']>> = {
  advertise: 'advertise',
  share: 'shares',
  masked: 'masked',
  unmask: 'reveal',
};

/**
 * A round under secure aggregation (DESIGN.md §5): four stages, each with its own deadline, over
 * the pure `SecAggServer` state machine. The coordinator never sees an individual update: only
 * masked vectors, and at the end the sum of the survivors' inputs.
 */
export class SecAggRound implements ActiveRound {
  readonly round: number;
  readonly modelVersion: string;
  private readonly indexOf = new Map<string, number>();
  private readonly sessionOf = new Map<number, ClientSession>();
  private stageName: SecAggStage = 'advertise';
  private stage: StageCollector;
  private server: SecAggServer | undefined;
  private readonly trainMetrics: TrainMetrics[] = [];
  private readonly stageMs: Record<SecAggStage, number> = { advertise: 0, share: 0, masked: 0, unmask: 0 };
  private readonly stageDropouts: Record<SecAggStage, number> = { advertise: 0, share: 0, masked: 0, unmask: 0 };
  private bytesUp = 0;
  private bytesDown = 0;

  constructor(
    private readonly setup: RoundSetup,
    private readonly options: SecAggOptions,
    private readonly context: {
      sessionId: string;
      prg: MaskPrg;
      agreement: KeyAgreement;
      shuffle: <T>(items: readonly T[]) => T[];
      /** Values each masked input carries after the model's (1: the unclipped bit of adaptive clipping). */
      extraValues: number;
      /** Whether clients noised their bits (distributed DP) or the coordinator must (central). */
      bitsNoised: boolean;
    },
  ) {
    this.round = setup.round;
    this.modelVersion = setup.modelVersion;
    setup.cohort.forEach((session, i) => {
      this.indexOf.set(session.clientId!, i + 1);
      this.sessionOf.set(i + 1, session);
    });
    this.stage = new StageCollector(setup.cohort.map((s) => s.clientId!));
  }

  isMember(clientId: string): boolean {
    return this.indexOf.has(clientId);
  }

  receive(clientId: string, message: RoundMessage, bytes: number): Verdict {
    if (!this.stage.isMember(clientId)) return undefined; // left in an earlier stage: a straggler
    if (message.type === 'decline') {
      this.stage.drop(clientId);
      return undefined;
    }
    if (message.type !== EXPECTED[this.stageName]) {
      return this.stage.isPending(clientId) ? { close: 'UNEXPECTED_MESSAGE', reason: `${message.type} during the ${this.stageName} stage` } : undefined;
    }
    if (!this.stage.isPending(clientId)) return { close: 'DUPLICATE_MESSAGE', reason: `second ${message.type} in round ${this.round}` };
    this.bytesUp += bytes;
    const index = this.indexOf.get(clientId)!;
    const server = this.server!;
    try {
      switch (message.type) {
        case 'advertise':
          server.receiveAdvertise(index, { encryptionKey: message.encryptionKey, maskKey: message.maskKey });
          break;
        case 'shares':
          server.receiveShares(index, message.ciphertexts);
          break;
        case 'masked':
          if (message.modelVersion !== this.modelVersion) {
            return { close: 'ROUND_MISMATCH', reason: `masked input for round ${this.round} was computed on ${message.modelVersion}` };
          }
          server.receiveMasked(index, message.masked);
          if (message.metrics) this.trainMetrics.push(message.metrics);
          break;
        case 'reveal':
          server.receiveReveal(index, { selfMaskShares: message.selfMaskShares, maskKeyShares: message.maskKeyShares });
          break;
        default:
          return { close: 'UNEXPECTED_MESSAGE', reason: `${message.type} in a secure-aggregation round` };
      }
    } catch (error) {
      if (!(error instanceof SecAggError)) throw error;
      this.stage.drop(clientId);
      return { close: error.errorCode, reason: error.message };
    }
    this.stage.answer(clientId);
    return undefined;
  }

  drop(clientId: string): void {
    this.stage.drop(clientId);
  }

  async collect(signal: AbortSignal): Promise<RoundOutcome> {
    const { setup, options } = this;
    const stageTimeoutMs = options.stageTimeoutMs ?? 30_000;
    let params: SecAggParams;
    try {
      params = deriveSecAggParams({
        mode: options.mode,
        cohortSize: setup.cohort.length,
        numParams: setup.numParams + this.context.extraValues,
        maxDropout: options.maxDropout ?? 0.3,
        ...(options.threshold !== undefined ? { threshold: options.threshold } : {}),
        ...(options.degree !== undefined ? { degree: options.degree } : {}),
        bound: (options.clipRange ?? 1) * this.maxWeight(),
        maxWeight: this.maxWeight(),
      });
    } catch (error) {
      return this.outcome({ abortReason: `secure aggregation cannot run for a cohort of ${setup.cohort.length}: ${(error as Error).message}` });
    }
    const minimum = Math.max(params.threshold, setup.minClients);
    this.server = new SecAggServer({
      round: this.round,
      sessionId: this.context.sessionId,
      params,
      indices: [...this.sessionOf.keys()],
      prg: this.context.prg,
      agreement: this.context.agreement,
      shuffle: this.context.shuffle,
    });
    try {
      // Stage 0: the train message carries each client's index and the round's SecAgg parameters.
      for (const [index, session] of this.sessionOf) {
        const secagg: SecAggRoundConfig = {
          mode: params.mode,
          index,
          threshold: params.threshold,
          degree: params.degree,
          bound: params.bound,
          scale: params.scale,
          maxWeight: params.maxWeight,
          sessionId: this.context.sessionId,
        };
        const sendWeights = session.heldVersion !== this.modelVersion;
        this.sendTo(session, {
          type: 'train',
          round: this.round,
          modelVersion: this.modelVersion,
          ...(sendWeights ? { weights: setup.weights } : {}),
          config: setup.config,
          deadlineMs: setup.deadlineMs,
          secagg,
        });
        session.heldVersion = this.modelVersion;
      }
      await this.runStage('advertise', stageTimeoutMs, minimum, signal);
      for (const [index, neighbours] of this.server.closeAdvertise()) {
        this.sendTo(this.sessionOf.get(index)!, { type: 'keys', round: this.round, neighbours });
      }
      await this.runStage('share', stageTimeoutMs, minimum, signal);
      for (const [index, ciphertexts] of this.server.closeShares()) {
        this.sendTo(this.sessionOf.get(index)!, { type: 'inbox', round: this.round, ciphertexts });
      }
      // The masked stage includes local training, so it gets the round's own deadline.
      await this.runStage('masked', setup.deadlineMs, minimum, signal);
      // Each survivor hears only its own neighbourhood's part of U3 and U2∖U3.
      for (const [index, request] of this.server.closeMasked().requests) {
        this.sendTo(this.sessionOf.get(index)!, { type: 'unmask', round: this.round, survivors: request.survivors, dropped: request.dropped });
      }
      await this.runStage('unmask', stageTimeoutMs, params.threshold, signal);
      const result = await this.server.finish();
      if (result.count < setup.minClients) {
        return this.outcome({ abortReason: `only ${result.count} clients survived secure aggregation; minClients is ${setup.minClients}` }, params, result.count);
      }
      // The weight word is masked like the rest, so a client can forge it; an honest sum lies in
      // 1..count·maxWeight (0 only if nobody had examples). Outside it the mean would be garbage.
      const maxTotalWeight = result.count * params.maxWeight;
      if (!(result.totalWeight > 0 && result.totalWeight <= maxTotalWeight)) {
        return this.outcome(
          { abortReason: `the decoded total weight ${result.totalWeight} of ${result.count} clients is outside 1..${maxTotalWeight} (count × maxWeight ${params.maxWeight}): a masked weight was forged, or no client had examples` },
          params,
          result.count,
        );
      }
      const d = setup.numParams;
      const aggregate = { weightedSum: result.sum.slice(0, d), totalWeight: result.totalWeight, count: result.count };
      const unclipped = this.context.extraValues > 0 ? { unclipped: { count: result.sum[d]!, reports: result.count, noised: this.context.bitsNoised } } : {};
      return this.outcome({ aggregate, ...unclipped }, params, result.count);
    } catch (error) {
      if (error instanceof SecAggAbort) return this.outcome({ abortReason: `secure aggregation aborted in the ${this.stageName} stage: ${error.reason}` }, params);
      throw error;
    }
  }

  /** Opens `name` for the members that answered the previous stage and waits for them. */
  private async runStage(name: SecAggStage, deadlineMs: number, minimum: number, signal: AbortSignal): Promise<void> {
    const started = performance.now();
    const members = name === 'advertise' ? [...this.indexOf.keys()] : this.stage.answeredIds();
    this.stageName = name;
    this.stage = new StageCollector(members);
    await this.stage.collect(deadlineMs, minimum, signal);
    this.stageMs[name] = performance.now() - started;
    this.stageDropouts[name] = members.length - this.stage.answered;
    if (signal.aborted) throw new SecAggAbort('the coordinator is stopping');
    if (this.stage.answered < minimum) {
      throw new SecAggAbort(`${this.stage.answered} of ${members.length} clients answered, fewer than the ${minimum} needed`);
    }
  }

  private maxWeight(): number {
    // The strategy decides the weights (example counts, or 1 under DP); SecAgg needs a finite cap.
    return Math.max(1, Math.min(this.setup.strategy.clientWeight(Number.MAX_SAFE_INTEGER), this.options.maxWeight ?? 1_000));
  }

  private sendTo(session: ClientSession, message: CoordinatorMessage): void {
    if (session.state !== 'ready') return;
    const frame = encodeFrame(message);
    session.connection.send(frame);
    this.bytesDown += frame.byteLength;
  }

  private outcome(result: { aggregate: Aggregate; unclipped?: RoundOutcome['unclipped'] } | { abortReason: string }, params?: SecAggParams, participants = 0): RoundOutcome {
    const secagg: SecAggMetrics | undefined = params && {
      mode: params.mode,
      threshold: params.threshold,
      degree: params.degree,
      scale: params.scale,
      stageMs: { ...this.stageMs },
      dropouts: { ...this.stageDropouts },
    };
    return {
      participants,
      dropouts: this.setup.cohort.length - participants,
      ...(this.trainMetrics.length > 0 ? { trainLoss: this.trainMetrics.reduce((t, m) => t + m.loss, 0) / this.trainMetrics.length } : {}),
      bytesUp: this.bytesUp,
      bytesDown: this.bytesDown,
      ...(secagg ? { secagg } : {}),
      ...result,
    };
  }
}
