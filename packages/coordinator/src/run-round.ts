import { encodeFrame, shuffled, type CoordinatorMessage, type RoundPrivacy, type SecAggRoundConfig, type TrainConfig } from '@shoal/protocol';
import { enforceClip } from '@shoal/dp';
import { SecAggAbort, SecAggServer, deriveSecAggParams, type KeyAgreement, type MaskPrg, type SecAggParams, type Signing, type UnmaskRunner } from '@shoal/secagg';
import { WeightedSum, type Aggregate, type StepResult, type Strategy, type StrategyState, type WeightedUpdate } from '@shoal/strategy';
import type { FederatedEvaluationMetrics } from './evaluation-summary.js';
import { evaluateOnClients } from './federated-evaluation.js';
import type { Logger } from './logger.js';
import type { EvaluationResult, ResolvedOptions } from './options.js';
import { maxUpdateNormFor } from './norm-bound.js';
import { ROUND_PRIVACY_CAPABILITY, roundPrivacy } from './promise.js';
import { Refusal, type AnswerKind, type AnswerOf, type Clock, type Cohort, type Random } from './ports.js';
import type { PrivacyMetrics, PrivacyPolicy, PrivacyState } from './privacy.js';
import { roundRecord, type Release, type RoundLog, type RoundRecord } from './round-log.js';
import { firstNonFinite, type RoundMetrics, type SecAggMetrics, type SecAggStage } from './round.js';

/** What a round runs over: the ports of DESIGN.md §3, plus the structured diagnostic log. */
export interface RoundPorts {
  readonly cohort: Cohort;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: RoundLog;
  readonly logger: Logger;
}

/** The coordinator's state between rounds: what a round reads, and what it returns changed. */
export interface CoordinatorState {
  readonly runId: string;
  /** The last finished round, committed or aborted (0 before the first). */
  readonly round: number;
  /** The round whose commit produced `weights` (0: the initial model). */
  readonly lastCommittedRound: number;
  readonly weights: Float32Array;
  readonly strategyState: StrategyState;
  /** With DP: the accountant and the current clip norm. */
  readonly privacy?: PrivacyState;
  /** Median norm of the last plain round's updates, for `maxUpdateNorm: 'auto'` (not checkpointed). */
  readonly previousMedianNorm?: number;
}

/** What stays fixed for a whole run. */
export interface RunSetup {
  readonly options: ResolvedOptions;
  readonly numParams: number;
  /** Fresh per process: SecAgg keys of a round re-run after a crash can never repeat. */
  readonly sessionId: string;
  readonly privacy?: PrivacyPolicy;
  readonly secaggCrypto: { readonly prg: MaskPrg; readonly agreement: KeyAgreement; readonly signing: Signing };
  /** Where a SecAgg round's masks are regenerated when the work is large (the coordinator's worker threads); absent: in this thread. */
  readonly unmaskRunner?: UnmaskRunner;
}

/** The id of the global model committed in `round` of run `runId`. */
export function modelVersion(runId: string, round: number): string {
  return `${runId}:${round}`;
}

/**
 * q, the probability that a given client takes part in a round with `eligible` clients available:
 * the expected cohort over them. The accountant's bound assumes Poisson sampling at this rate;
 * with fixed-size cohorts the reported ε is the usual approximation (docs/privacy.md).
 */
export function sampleRate(options: ResolvedOptions, eligible: number): number {
  const { clientsPerRound, fraction } = options;
  return Math.min(1, clientsPerRound !== undefined ? clientsPerRound / Math.max(1, eligible) : (fraction ?? 1));
}

/**
 * One round, top to bottom: select → configure → collect stage by stage (plain or secure) →
 * aggregate → evaluate → charge → tell the cohort → evaluate on clients (when due) → append.
 * Returns the state after the round and its record; the record is already appended to the log. A
 * round that cannot finish aborts: its record says why, and the returned state keeps the model, the
 * strategy state and the privacy spent unchanged.
 */
export async function runRound(ports: RoundPorts, run: RunSetup, state: CoordinatorState, signal: AbortSignal): Promise<{ state: CoordinatorState; record: RoundRecord }> {
  const { options, privacy } = run;
  const started = ports.clock.now();
  const round = state.round + 1;
  const version = modelVersion(state.runId, state.lastCommittedRound);

  // Select.
  let rate = 1;
  const members = ports.cohort.select(round, (eligible) => {
    rate = sampleRate(options, eligible.length);
    return sampleCohort(eligible, options, rate, ports.random);
  });

  // Configure. `charge`: what the accountant is charged if the round's sum is released.
  const charge: RoundRecord['charge'] = privacy ? { sampleRate: rate, noiseMultiplier: options.dp!.noiseMultiplier, clipNorm: state.privacy!.clipNorm } : undefined;
  const strategy = privacy ? privacy.strategy(options.strategy, state.privacy!) : options.strategy;
  const base = strategy.configureTrain(round, options.train);
  const train: RoundTrain = {
    round,
    modelVersion: version,
    weights: state.weights,
    config: privacy ? privacy.trainConfig(base, state.privacy!) : base,
    deadlineMs: options.roundTimeoutMs,
    privacy: roundPrivacy(options, privacy, state.privacy),
    // Distributed DP: the sum the coordinator unmasks is the release (central DP: the noised model, which leaves only after the commit).
    ...(privacy?.mode === 'distributed' && charge ? { release: { runId: state.runId, round, charge } } : {}),
  };

  // Collect.
  let collected: Collected;
  try {
    collected = options.secagg === undefined ? await collectPlain(ports, run, state, train, members, strategy, signal) : await collectSecAgg(ports, run, state, train, members, strategy, signal);
  } finally {
    ports.cohort.release(round);
  }

  // Aggregate and evaluate.
  const next = signal.aborted
    ? { failure: 'coordinator stopped' }
    : 'aggregate' in collected
      ? await nextModel(ports, options, strategy, state, collected.aggregate, round)
      : { failure: collected.abortReason };

  // Charge: a sum computed under DP has been released, whatever happens next (a stop() or a
  // failing step after it cannot take it back), so it is charged, committed or not.
  let after: CoordinatorState = { ...state, round, ...(collected.normBound?.medianUpdateNorm !== undefined ? { previousMedianNorm: collected.normBound.medianUpdateNorm } : {}) };
  let privacyMetrics: Partial<PrivacyMetrics> = privacy ? privacy.spent(state.privacy!) : {};
  const charged = privacy && ('aggregate' in collected || collected.released) ? privacy.charge(state.privacy!, rate, collected.unclipped) : undefined;
  if (charged) {
    after = { ...after, privacy: charged.state };
    privacyMetrics = charged.metrics;
  }
  if ('step' in next) after = { ...after, weights: next.step.weights, strategyState: next.step.state, lastCommittedRound: round };
  else ports.logger.warn({ round, reason: next.failure }, 'round aborted');

  // Commit, then tell the cohort: nobody hears of a round that a crash could still undo.
  const status = 'step' in next ? 'committed' : 'aborted';
  const reason = 'failure' in next ? next.failure : undefined;
  const newVersion = modelVersion(after.runId, after.lastCommittedRound);
  const metricsWith = (bytesDown: number, federated?: { bytesUp: number; metrics?: FederatedEvaluationMetrics }): RoundMetrics => ({
    round,
    status,
    ...(reason !== undefined ? { reason } : {}),
    selected: members.length,
    participants: collected.participants,
    dropouts: collected.dropouts,
    modelVersion: newVersion,
    ...('evaluation' in next ? next.evaluation : {}),
    ...(federated?.metrics ? { federatedEvaluation: federated.metrics } : {}),
    ...(collected.trainLoss !== undefined ? { trainLoss: collected.trainLoss } : {}),
    bytesUp: collected.bytesUp + (federated?.bytesUp ?? 0),
    bytesDown,
    durationMs: ports.clock.now() - started,
    ...(collected.secagg ? { secagg: collected.secagg } : {}),
    ...(collected.normBound ?? {}),
    ...privacyMetrics,
  });
  const committed = await ports.log.commit(roundRecord(metricsWith(collected.bytesDown), after, options.strategy.name, charged ? charge : undefined));
  const result: CoordinatorMessage = { type: 'result', round, status, modelVersion: newVersion, ...(reason !== undefined ? { reason } : {}) };
  let bytesDown = collected.bytesDown;
  for (const member of members) bytesDown += ports.cohort.send(member, encodeFrame(result));

  // Federated evaluation of the committed model: it only adds metrics, never changes the round.
  const evaluation = options.federatedEvaluation;
  const federated =
    status === 'committed' && evaluation !== undefined && round % evaluation.every === 0
      ? await evaluateOnClients(ports, evaluation, { round, modelVersion: newVersion, weights: after.weights }, (count) => strategy.clientWeight(count), signal)
      : undefined;
  bytesDown += federated?.bytesDown ?? 0;
  const record: RoundRecord = { ...committed, metrics: metricsWith(bytesDown, federated) };
  await ports.log.publish(record);
  return { state: after, record };
}

/**
 * A round that aborted outside `runRound` (a scale-out leader or gateway that gave it up, or a
 * restart that finds a release its process never committed): the model and strategy state
 * unchanged; the privacy state too, unless `charge` says its sum was released at that rate and
 * noise, when the accountant is charged for it (`PrivacyPolicy.chargeRelease`). Logs the abort;
 * the caller appends the record.
 */
export function abortedRound(
  ports: Pick<RoundPorts, 'logger'>,
  run: Pick<RunSetup, 'options' | 'privacy'>,
  state: CoordinatorState,
  round: number,
  reason: string,
  extra: Partial<RoundMetrics> = {},
  charge?: NonNullable<RoundRecord['charge']>,
): { state: CoordinatorState; record: RoundRecord } {
  const policy = run.privacy;
  const charged = policy && state.privacy && charge ? policy.chargeRelease(state.privacy, charge) : undefined;
  const after: CoordinatorState = { ...state, round, ...(charged ? { privacy: charged.state } : {}) };
  const spent = charged ? charged.metrics : policy && state.privacy ? policy.spent(state.privacy) : {};
  const metrics: RoundMetrics = {
    round,
    status: 'aborted',
    reason,
    selected: 0,
    participants: 0,
    dropouts: 0,
    bytesUp: 0,
    bytesDown: 0,
    durationMs: 0,
    ...extra,
    modelVersion: modelVersion(state.runId, state.lastCommittedRound),
    ...spent,
  };
  ports.logger.warn({ round, reason }, 'round aborted');
  return { state: after, record: roundRecord(metrics, after, run.options.strategy.name, charged ? charge : undefined) };
}

/**
 * What a scale-out gateway is asked to run for one round: the leader's configure step, made there
 * (its model, train config and privacy state). The gateway selects its devices itself, once per
 * round, and runs one `runGroup` per group it cuts them into.
 */
export interface GroupTask {
  readonly round: number;
  /** The leader's state the round starts from: its run, model and privacy state (not its strategy state). */
  readonly state: CoordinatorState;
  readonly config: TrainConfig;
  readonly privacy: RoundPrivacy;
  /** Run no group smaller than this (SecAgg's protection of a group sum rests on its size). */
  readonly minGroupSize: number;
}

/** A group's part of a round: its members (told the round's result later) and what it collected. */
export interface GroupRun {
  readonly members: readonly string[];
  /** The group's sum (never one member's update) and its metrics, or why the group failed. */
  readonly collected: Collected;
}

/**
 * One group of a scale-out gateway's part of round `task.round`: the same configure and collect
 * steps as `runRound` over `members`, which the gateway selected (secure aggregation over the group
 * when it is on). The aggregate, the result and the commit are the leader's. Several groups of one
 * round may run at once over disjoint members: each has its own SecAgg server and its own gathers.
 * The members stay held until `ports.cohort.release(task.round)`, after they are told the result.
 */
export async function runGroup(ports: RoundPorts, run: RunSetup, task: GroupTask, members: readonly string[], signal: AbortSignal): Promise<GroupRun> {
  const { options, privacy } = run;
  const { round, state } = task;
  if (members.length < task.minGroupSize) return { members, collected: { participants: 0, dropouts: members.length, bytesUp: 0, bytesDown: 0, abortReason: `a group of ${members.length} clients is smaller than ${task.minGroupSize} (the smallest group)` } };
  const strategy = privacy ? privacy.strategy(options.strategy, state.privacy!) : options.strategy;
  const train: RoundTrain = { round, modelVersion: modelVersion(state.runId, state.lastCommittedRound), weights: state.weights, config: task.config, deadlineMs: options.roundTimeoutMs, privacy: task.privacy };
  // `minClients` is the whole round's (the leader checks it over all groups); a group needs its own size.
  const group: RunSetup = { ...run, options: { ...options, minClients: task.minGroupSize } };
  const collected = options.secagg === undefined ? await collectPlain(ports, group, state, train, members, strategy, signal) : await collectSecAgg(ports, group, state, train, members, strategy, signal);
  return { members, collected };
}

// ---- select ----

function sampleCohort(eligible: readonly string[], options: ResolvedOptions, rate: number, random: Random): readonly string[] {
  if (options.sampling === 'poisson') return eligible.filter(() => random.next() < rate);
  const { clientsPerRound, fraction } = options;
  const wanted = clientsPerRound ?? (fraction !== undefined ? Math.ceil(fraction * eligible.length) : eligible.length);
  return shuffled(eligible, random).slice(0, Math.min(wanted, eligible.length));
}

// ---- configure ----

interface RoundTrain {
  readonly round: number;
  readonly modelVersion: string;
  readonly weights: Float32Array;
  readonly config: TrainConfig;
  readonly deadlineMs: number;
  /** The round's privacy settings, stated to members that announced 'round-privacy'. */
  readonly privacy: RoundPrivacy;
  /** Made durable before the unmasking is asked for: the sum it yields is released (see `Release`). */
  readonly release?: Release;
}

/**
 * Sends `train` to every member, with the weights only to those not holding that version yet, and
 * the round's privacy only to those that announced 'round-privacy'. Plain rounds send one of four
 * frames, each encoded once (the weights dominate them); SecAgg rounds add each member's own
 * index, so each frame is encoded for its member.
 */
function sendTrain(cohort: Cohort, train: RoundTrain, members: readonly string[], secaggFor?: (member: string) => SecAggRoundConfig): number {
  const message = { type: 'train', round: train.round, modelVersion: train.modelVersion, config: train.config, deadlineMs: train.deadlineMs } as const;
  const frames = new Map<string, Uint8Array>();
  let bytes = 0;
  for (const member of members) {
    const needsWeights = !cohort.holds(member, train.modelVersion);
    const statesPrivacy = cohort.supports(member, ROUND_PRIVACY_CAPABILITY);
    const variant = { ...message, ...(needsWeights ? { weights: train.weights } : {}), ...(statesPrivacy ? { privacy: train.privacy } : {}) };
    const key = `${needsWeights}/${statesPrivacy}`;
    const frame = secaggFor ? encodeFrame({ ...variant, secagg: secaggFor(member) }) : (frames.get(key) ?? frames.set(key, encodeFrame(variant)).get(key)!);
    bytes += cohort.send(member, frame, train.modelVersion);
  }
  return bytes;
}

// ---- collect ----

/** The collect phase's result: an aggregate to step with, or the reason the round must abort. */
export type Collected = {
  readonly participants: number;
  readonly dropouts: number;
  readonly trainLoss?: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly secagg?: SecAggMetrics;
  /** Plain rounds: the norm bound, how many updates it scaled down, and the median norm as sent. */
  readonly normBound?: { readonly maxUpdateNorm: number; readonly clippedUpdates: number; readonly medianUpdateNorm?: number };
  /** Adaptive clipping: how many of the `reports` updates were within the clip norm (`noised` when the clients noised the count). */
  readonly unclipped?: { readonly count: number; readonly reports: number; readonly noised: boolean };
  /** The round aborts, but only after the sum was unmasked: under DP it has been released, and is charged. */
  readonly released?: true;
} & ({ readonly aggregate: Aggregate } | { readonly abortReason: string });

/**
 * A plain round: every member trains and sends its delta, which is norm-bounded (the DP clip, or
 * `maxUpdateNorm`) and folded into a running weighted sum as it arrives, so memory stays O(d).
 * A strategy with a robust aggregation rule also keeps each bounded update (memory cohort × d)
 * and its aggregate comes from that rule instead of the sum.
 */
async function collectPlain(ports: RoundPorts, run: RunSetup, state: CoordinatorState, train: RoundTrain, members: readonly string[], strategy: Strategy, signal: AbortSignal): Promise<Collected> {
  const { minClients } = run.options;
  // One client moves the mean by at most bound · weight / totalWeight, however large its numbers.
  const bound = train.config.clipNorm ?? maxUpdateNormFor(run.options.maxUpdateNorm, state.weights, state.previousMedianNorm);
  const sum = new WeightedSum(run.numParams);
  const kept: WeightedUpdate[] | undefined = strategy.robustAggregate ? [] : undefined;
  const norms: number[] = [];
  const losses: number[] = [];
  let clippedUpdates = 0;
  let unclipped = 0;
  // A float sum depends on the order of its terms, and updates arrive in whatever order the clients
  // finish (threads, networks). Folding them in the cohort's selection order makes the aggregate a
  // function of the cohort alone: a seeded simulation gets the same model with 1 worker thread or 8.
  const folding = inSelectionOrder<WeightedUpdate>(members, (update) => {
    sum.add(update.delta, update.weight);
    kept?.push(update);
  });

  const bytesDown = sendTrain(ports.cohort, train, members);
  const updates = await ports.cohort.gather({
    kind: 'update',
    members,
    deadline: ports.clock.now() + train.deadlineMs,
    quorum: minClients,
    signal,
    accept: (member, update) => {
      if (update.modelVersion !== train.modelVersion) {
        throw new Refusal('ROUND_MISMATCH', `update for round ${train.round} was computed on ${update.modelVersion}, not ${train.modelVersion}`);
      }
      const { clipped, wasClipped, norm } = enforceClip(update.delta, bound);
      if (train.config.reportInitialLoss === true && update.initialLoss === undefined) {
        throw new Refusal('INVALID_MESSAGE', `update for round ${train.round} lacks initialLoss, which the round's train config asked for`);
      }
      const weight = strategy.clientWeight(update.numExamples);
      // A copy: the decoded delta may be a view into the frame it arrived in, and it may wait its turn.
      folding.arrive(member, { delta: clipped.slice(), weight, ...(update.initialLoss !== undefined ? { initialLoss: update.initialLoss } : {}) });
      norms.push(norm);
      if (wasClipped) clippedUpdates++;
      if (update.unclipped === true) unclipped++;
      losses.push(update.metrics.loss);
    },
  });
  folding.flush(); // whoever has not answered by now is out of the round

  const answered = updates.answered.length;
  const common = {
    participants: answered,
    dropouts: members.length - answered,
    ...(losses.length > 0 ? { trainLoss: mean(losses) } : {}),
    bytesUp: updates.bytes,
    bytesDown,
    ...(train.config.clipNorm !== undefined ? { unclipped: { count: unclipped, reports: answered, noised: false } } : {}),
    normBound: { maxUpdateNorm: bound, clippedUpdates, ...(norms.length > 0 ? { medianUpdateNorm: median(norms) } : {}) },
  };
  if (answered < minClients) {
    return { ...common, abortReason: `only ${answered} of ${members.length} selected clients sent a valid update; minClients is ${minClients}` };
  }
  // Weights are self-reported example counts: if all are 0 there is no mean to take.
  if (!(sum.totalWeight > 0)) {
    return { ...common, abortReason: `the ${answered} updates carry a total weight of ${sum.totalWeight} (every client reported numExamples 0); there is no mean to take` };
  }
  if (!strategy.robustAggregate) return { ...common, aggregate: sum.result() };
  try {
    return { ...common, aggregate: strategy.robustAggregate(kept!) };
  } catch (error) {
    if (error instanceof RangeError) return { ...common, abortReason: `strategy ${strategy.name} cannot aggregate: ${error.message}` };
    throw error;
  }
}

/**
 * A round under secure aggregation (DESIGN.md §5): four stages over the pure `SecAggServer`, each
 * gathered with its own deadline. The coordinator never sees an individual update: only masked
 * vectors, and at the end the sum of the survivors' inputs.
 */
async function collectSecAgg(ports: RoundPorts, run: RunSetup, state: CoordinatorState, train: RoundTrain, members: readonly string[], strategy: Strategy, signal: AbortSignal): Promise<Collected> {
  const { options, privacy, numParams } = run;
  const secagg = privacy ? { ...options.secagg!, clipRange: privacy.valueBound(state.privacy!) } : options.secagg!;
  const extraValues = privacy?.sendsMaskedBit ? 1 : 0;
  // The strategy decides the weights (example counts, or 1 under DP); SecAgg needs a finite cap.
  const maxWeight = Math.max(1, Math.min(strategy.clientWeight(Number.MAX_SAFE_INTEGER), secagg.maxWeight));
  const stageTimeoutMs = secagg.stageTimeoutMs;
  const indexOf = new Map(members.map((member, i) => [member, i + 1]));
  const memberAt = new Map(members.map((member, i) => [i + 1, member]));
  const stageMs: Record<SecAggStage, number> = { advertise: 0, share: 0, masked: 0, confirm: 0, unmask: 0 };
  const stageDropouts: Record<SecAggStage, number> = { advertise: 0, share: 0, masked: 0, confirm: 0, unmask: 0 };
  // The coordinator's CPU per stage (SecAggMetrics.stageCpuMs): abutting windows of process CPU
  // time. A stage's window opens with the sends that start it, so a slow close or send shows in the
  // stage it delays; unmask's stays open through finish(), the unmasking.
  const stageCpuMs: Record<SecAggStage, number> = { advertise: 0, share: 0, masked: 0, confirm: 0, unmask: 0 };
  const stageAfter = { advertise: 'share', share: 'masked', masked: 'confirm', confirm: 'unmask', unmask: 'unmask' } as const satisfies Record<SecAggStage, SecAggStage>;
  let cpuWindow: { readonly stage: SecAggStage; readonly since: NodeJS.CpuUsage } | undefined;
  /** Charges the CPU used since the open window began to its stage, and opens one for `next` (none: the last is closed). */
  const moveCpuWindow = (next: SecAggStage | undefined) => {
    const now = process.cpuUsage();
    if (cpuWindow !== undefined) stageCpuMs[cpuWindow.stage] += (now.user - cpuWindow.since.user + now.system - cpuWindow.since.system) / 1000;
    cpuWindow = next === undefined ? undefined : { stage: next, since: now };
  };
  const losses: number[] = [];
  let bytesUp = 0;
  let bytesDown = 0;
  let stageName: SecAggStage = 'advertise';
  let params: SecAggParams | undefined;
  const send = (index: number, message: CoordinatorMessage) => (bytesDown += ports.cohort.send(memberAt.get(index)!, encodeFrame(message)));
  const outcome = (result: { aggregate: Aggregate; unclipped?: Collected['unclipped'] } | { abortReason: string; released?: true }, participants = 0): Collected => {
    moveCpuWindow(undefined); // whatever ends the round (finish, or an abort) ends the stage it is in
    return {
      participants,
      dropouts: members.length - participants,
      ...(losses.length > 0 ? { trainLoss: mean(losses) } : {}),
      bytesUp,
      bytesDown,
      ...(params ? { secagg: { mode: params.mode, threshold: params.threshold, degree: params.degree, scale: params.scale, stageMs: { ...stageMs }, stageCpuMs: { ...stageCpuMs }, dropouts: { ...stageDropouts } } } : {}),
      ...result,
    };
  };

  /** Gathers one stage from `from` until `deadline`; aborts the round when fewer than `quorum` answer. */
  async function stage<K extends AnswerKind>(name: SecAggStage, kind: K, from: readonly string[], deadline: number, quorum: number, accept: (index: number, answer: AnswerOf<K>) => void): Promise<readonly string[]> {
    stageName = name;
    const opened = ports.clock.now();
    const gathered = await ports.cohort.gather({ kind, members: from, deadline, quorum, signal, accept: (member, answer) => accept(indexOf.get(member)!, answer) });
    stageMs[name] = ports.clock.now() - opened;
    moveCpuWindow(stageAfter[name]);
    stageDropouts[name] = from.length - gathered.answered.length;
    bytesUp += gathered.bytes;
    if (signal.aborted) throw new SecAggAbort('the coordinator is stopping');
    if (gathered.answered.length < quorum) throw new SecAggAbort(`${gathered.answered.length} of ${from.length} clients answered, fewer than the ${quorum} needed`);
    return gathered.answered;
  }

  try {
    params = deriveSecAggParams({
      mode: secagg.mode,
      cohortSize: members.length,
      numParams: numParams + extraValues,
      maxDropout: secagg.maxDropout,
      ...(secagg.threshold !== undefined ? { threshold: secagg.threshold } : {}),
      ...(secagg.degree !== undefined ? { degree: secagg.degree } : {}),
      bound: secagg.clipRange * maxWeight,
      maxWeight,
    });
  } catch (error) {
    return outcome({ abortReason: `secure aggregation cannot run for a cohort of ${members.length}: ${(error as Error).message}` });
  }
  const roundParams = params;
  const quorum = Math.max(roundParams.threshold, options.minClients);
  const server = new SecAggServer({
    round: train.round,
    sessionId: run.sessionId,
    params: roundParams,
    indices: [...memberAt.keys()],
    prg: run.secaggCrypto.prg,
    agreement: run.secaggCrypto.agreement,
    signing: run.secaggCrypto.signing,
    identityOf: (index) => ports.cohort.identityOf(memberAt.get(index)!),
    shuffle: (items) => shuffled(items, ports.random),
  });
  try {
    // Stage 0: the train message carries each client's index and the round's SecAgg parameters.
    const { mode, threshold, degree, bound, scale } = roundParams;
    moveCpuWindow('advertise');
    bytesDown += sendTrain(ports.cohort, train, members, (member) => ({ mode, index: indexOf.get(member)!, threshold, degree, bound, scale, maxWeight: roundParams.maxWeight, sessionId: run.sessionId, ...(secagg.shareMetrics ? { shareMetrics: true } : {}) }));
    // The masked input is due deadlineMs after train, as for a plain update (clients count from its arrival).
    const maskedDue = ports.clock.now() + train.deadlineMs;
    const stageDue = () => ports.clock.now() + stageTimeoutMs;
    const advertised = await stage('advertise', 'advertise', members, stageDue(), quorum, (index, { encryptionKey, maskKey, signingKey, signature }) => server.receiveAdvertise(index, { encryptionKey, maskKey, signingKey, signature }));
    for (const [index, neighbours] of server.closeAdvertise()) send(index, { type: 'keys', round: train.round, neighbours });
    const shared = await stage('share', 'shares', advertised, stageDue(), quorum, (index, shares) => server.receiveShares(index, shares.ciphertexts));
    for (const [index, ciphertexts] of server.closeShares()) send(index, { type: 'inbox', round: train.round, ciphertexts });
    const masked = await stage('masked', 'masked', shared, maskedDue, quorum, (index, input) => {
      if (input.modelVersion !== train.modelVersion) throw new Refusal('ROUND_MISMATCH', `masked input for round ${train.round} was computed on ${input.modelVersion}`);
      server.receiveMasked(index, input.masked);
      // Metrics only when the round asked for them: an older client's unasked metrics are ignored.
      if (input.metrics && secagg.shareMetrics) losses.push(input.metrics.loss);
    });
    // The consistency check: every survivor signs the one survivor set U3, and sees its neighbours' signatures of it.
    const { survivors } = server.closeMasked();
    for (const index of survivors) send(index, { type: 'survivors', round: train.round, survivors });
    await stage('confirm', 'confirm', masked, stageDue(), roundParams.threshold, (index, confirmation) => server.receiveConfirm(index, confirmation.signature));
    const forwarded = server.closeConfirm();
    if (train.release) await ports.log.release(train.release); // charged on restart if we die before the commit
    for (const [index, signatures] of forwarded) send(index, { type: 'unmask', round: train.round, signatures });
    const asked = [...forwarded.keys()].map((index) => memberAt.get(index)!);
    await stage('unmask', 'reveal', asked, stageDue(), roundParams.threshold, (index, reveal) => server.receiveReveal(index, { selfMaskShares: reveal.selfMaskShares, maskKeyShares: reveal.maskKeyShares }));

    const result = await server.finish(run.unmaskRunner);
    if (result.count < options.minClients) {
      return outcome({ abortReason: `only ${result.count} clients survived secure aggregation; minClients is ${options.minClients}`, released: true }, result.count);
    }
    // The weight word is masked like the rest, so a client can forge it; an honest sum lies in
    // 1..count·maxWeight (0 only if nobody had examples). Outside it the mean would be garbage.
    const maxTotalWeight = result.count * roundParams.maxWeight;
    if (!(result.totalWeight > 0 && result.totalWeight <= maxTotalWeight)) {
      return outcome(
        { abortReason: `the decoded total weight ${result.totalWeight} of ${result.count} clients is outside 1..${maxTotalWeight} (count × maxWeight ${roundParams.maxWeight}): a masked weight was forged, or no client had examples`, released: true },
        result.count,
      );
    }
    const aggregate = { weightedSum: result.sum.slice(0, numParams), totalWeight: result.totalWeight, count: result.count };
    const unclipped = extraValues > 0 ? { unclipped: { count: result.sum[numParams]!, reports: result.count, noised: privacy?.mode === 'distributed' } } : {};
    return outcome({ aggregate, ...unclipped }, result.count);
  } catch (error) {
    if (error instanceof SecAggAbort) return outcome({ abortReason: `secure aggregation aborted in the ${stageName} stage: ${error.reason}` });
    throw error;
  }
}

// ---- aggregate and evaluate ----

/**
 * The strategy's step from `aggregate` and the central evaluation of its result, or why the round
 * must abort instead: an aggregate or new weights that are not finite, a step that throws, or an
 * evaluation that throws or rejects. Changes nothing. A failure costs one round, not the run, and
 * is never silent: its message is the round's reason and its stack goes to the log.
 */
export async function nextModel(ports: Pick<RoundPorts, 'logger'>, options: ResolvedOptions, strategy: Strategy, state: CoordinatorState, aggregate: Aggregate, round: number): Promise<{ step: StepResult; evaluation?: EvaluationResult } | { failure: string }> {
  const failure = (what: string, error: unknown) => {
    ports.logger.error({ round, reason: what, err: error instanceof Error ? (error.stack ?? error.message) : String(error) }, 'the new model could not be made; the round aborts');
    return { failure: `${what}: ${error instanceof Error ? error.message : String(error)}` };
  };
  const badSum = firstNonFinite(aggregate.weightedSum);
  if (badSum >= 0 || !Number.isFinite(aggregate.totalWeight)) {
    return { failure: `the aggregate is not finite (${badSum >= 0 ? `weighted sum[${badSum}] = ${aggregate.weightedSum[badSum]}` : `total weight ${aggregate.totalWeight}`})` };
  }
  let step: StepResult;
  try {
    step = strategy.step(state.weights, aggregate, state.strategyState, round);
  } catch (error) {
    return failure(`strategy ${strategy.name} failed to step`, error);
  }
  const bad = firstNonFinite(step.weights);
  if (bad >= 0) return { failure: `the new global weights are not finite (weight ${bad} would be ${step.weights[bad]}); the model is kept` };
  if (options.evaluate === undefined) return { step };
  try {
    return { step, evaluation: await options.evaluate(step.weights, round) };
  } catch (error) {
    return failure('evaluate failed', error);
  }
}

/** The mean, summed in ascending order so that it does not depend on the order the values arrived in. */
function mean(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b).reduce((total, value) => total + value, 0) / values.length;
}

/**
 * Hands each member's value to `fold` in the order of `order`, whatever order they arrive in: a
 * value waits until every member before it has arrived, or until `flush` (when the members still
 * missing are known to be out). Memory: nothing held while arrivals follow the order.
 */
function inSelectionOrder<T>(order: readonly string[], fold: (value: T) => void): { arrive(member: string, value: T): void; flush(): void } {
  const waiting = new Map<string, T>();
  let next = 0;
  return {
    arrive(member, value) {
      waiting.set(member, value);
      for (; next < order.length && waiting.has(order[next]!); next++) {
        fold(waiting.get(order[next]!)!);
        waiting.delete(order[next]!);
      }
    },
    flush() {
      for (; next < order.length; next++) if (waiting.has(order[next]!)) fold(waiting.get(order[next]!)!);
      waiting.clear();
    },
  };
}

/** The median of `values` (the mean of the middle two for an even count); `values` is not changed. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
