import { decodeFrame, encodeFrame } from '@shoal/protocol';
import {
  abortedRound,
  crashAtLeaderStepIfAsked,
  modelVersion,
  nextModel,
  roundPrivacy,
  roundRecord,
  sampleRate,
  type Clock,
  type CoordinatorState,
  type PrivacyMetrics,
  type RoundDriver,
  type RoundMetrics,
  type RoundPorts,
  type RoundRecord,
  type RunSetup,
} from '@shoal/coordinator';
import { waitFor } from './wait.js';
import { FencedError, type ControlPlane, type GatewayStatus } from './plane.js';
import { quotasFor, retryWindowFor, typicalRoundMs, type GroupReportMeta, type RoundTask } from './task.js';

/** The leader's lease: the epoch it holds now (renewals keep it; a re-acquisition after a Redis restart raises it). */
export interface HeldLease {
  readonly nodeId: string;
  epoch(): number;
  /** Renews the lease now, or takes it again if it lapsed unclaimed; throws FencedError once another leader holds it. */
  ensure(): Promise<void>;
}

export interface LeaderDriverOptions {
  readonly plane: ControlPlane;
  readonly lease: HeldLease;
  readonly clock: Clock;
  /** Devices admitted per device wanted (~1.3 absorbs dropouts; 1 under DP, so the accountant's q is the cohort's). */
  readonly overSelection: number;
  /** The smallest group a gateway may run (SecAgg protects a group sum by the group's size). */
  readonly minGroupSize: number;
  /** How long after a round begins the leader waits for its groups' reports. */
  readonly reportTimeoutMs: number;
  /** Start a round only once the live gateways hold this many eligible devices (the run's `minAvailable`). */
  readonly minAvailable: number;
}

/** A Redis command failed (Redis restarting or unreachable): the round in flight is abandoned. */
class RedisUnavailable extends Error {
  constructor(what: string, cause: unknown) {
    super(`Redis failed while ${what}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'RedisUnavailable';
  }
}

/** Runs one Redis step; its failure becomes RedisUnavailable (a fence stays a FencedError). */
async function redisStep<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof FencedError) throw error;
    throw new RedisUnavailable(what, error);
  }
}

/**
 * The rounds of a leader: each runs on the gateways' groups. `ready` waits until the live gateways
 * hold `minAvailable` eligible devices; `run` runs one round (`runLeaderRound`).
 */
export function leaderDriver(options: LeaderDriverOptions): RoundDriver {
  // The durations of the last committed rounds: how long a paced device should stay away.
  const committedMs: number[] = [];
  return {
    async ready(signal) {
      return waitFor(options.clock, signal, async () => {
        const gateways = await options.plane.liveGateways().catch(() => []);
        const eligible = totalEligible(gateways);
        // A round left open by a leader that died holds the gateways' devices until it ends: take
        // it over now (`run` abandons it) instead of waiting for devices it keeps busy.
        const open = await options.plane.roundStatus().then((status) => status?.phase === 'selecting' || status?.phase === 'aggregating', () => false);
        return open || eligible >= Math.max(1, options.minAvailable) ? eligible : undefined;
      });
    },
    async run(ports, setup, state, signal) {
      const outcome = await runLeaderRound(ports, setup, state, options, signal, typicalRoundMs(committedMs));
      if (outcome.record.status === 'committed') {
        committedMs.push(outcome.record.metrics.durationMs);
        if (committedMs.length > PACE_HISTORY) committedMs.shift();
      }
      return outcome;
    },
  };
}

/** Committed rounds whose durations time the pace window (their median). */
const PACE_HISTORY = 5;

/**
 * How long a gateway with a quota may go without a heartbeat before the leader stops waiting for
 * its groups. Its heartbeat key expires after 1.5 s, but a gateway whose groups' SecAgg work holds
 * its event loop (hundreds of signatures to check in one burst, on a loaded machine) misses beats
 * and still reports; a dead one stays silent.
 */
export const GATEWAY_GONE_MS = 10_000;

/**
 * The gateways every group of which has reported: each report names its gateway and how many
 * groups that gateway formed this round (1 when it does not say).
 */
export function gatewaysDone(reports: Readonly<Record<string, string>>): Set<string> {
  const seen = new Map<string, { reported: number; groups: number }>();
  for (const text of Object.values(reports)) {
    const meta = JSON.parse(text) as GroupReportMeta;
    const entry = seen.get(meta.gateway) ?? { reported: 0, groups: meta.groups ?? 1 };
    entry.reported++;
    seen.set(meta.gateway, entry);
  }
  return new Set([...seen].filter(([, entry]) => entry.reported >= entry.groups).map(([gateway]) => gateway));
}

function totalEligible(gateways: readonly GatewayStatus[]): number {
  return gateways.reduce((total, gateway) => total + gateway.eligible, 0);
}

/**
 * One round at the leader, top to bottom: take over what Redis holds past our log → quotas → begin
 * (the gateways select, train and aggregate their groups) → wait for the reports → aggregating →
 * add the group sums → step and evaluate → charge → end the round in Redis (the fenced commit) →
 * append to the round log (checkpoint, ledger). An abandoned round changes nothing but the round
 * number. A Redis failure abandons the round in flight; a fence (a newer leader) ends this one.
 * `roundMs`: how long a round typically takes here (undefined before one committed), for pacing.
 */
export async function runLeaderRound(ports: RoundPorts, setup: RunSetup, state: CoordinatorState, options: LeaderDriverOptions, signal: AbortSignal, roundMs?: number): Promise<{ state: CoordinatorState; record: RoundRecord }> {
  const { plane, lease, clock } = options;
  const { options: run, privacy, numParams } = setup;
  const started = clock.now();
  const round = state.round + 1;
  const version = modelVersion(state.runId, state.lastCommittedRound);
  /** The round given up; `releasedAt`: its sum (or a group's) was released at this sampling rate before, so it is charged. */
  const abandon = (reason: string, extra: Partial<RoundMetrics> = {}, releasedAt?: number) =>
    abortedRound(ports, setup, state, round, reason, { ...extra, durationMs: clock.now() - started }, releasedAt !== undefined && state.privacy ? { sampleRate: releasedAt, noiseMultiplier: run.dp!.noiseMultiplier, clipNorm: state.privacy.clipNorm } : undefined);

  try {
    await redisStep('confirming the lease', () => lease.ensure());
    // Take over: a round the previous leader began, or ended without our log hearing of it.
    const found = await redisStep('reading the round', () => plane.roundStatus());
    if (found !== undefined && found.round >= round) {
      if (found.round > round) {
        throw new Error(`Redis records round ${found.round} of task ${plane.task}, but this leader's checkpoints end at round ${state.round}: give every leader of a task the same checkpointDir`);
      }
      if (found.phase === 'committed' || found.phase === 'abandoned') return await adopt(ports, state, round, plane);
      // Under distributed DP a reported group sum is already a release (its gateway unmasked it, noised): charged.
      const released = privacy?.mode === 'distributed' && (await redisStep('reading the reports', () => plane.reportedGroups(round).then(sumsReported))) ? (JSON.parse(found.task) as RoundTask).sampleRate : undefined;
      return await end(ports, options, abandon('the leader that began it was replaced; its groups are discarded', {}, released));
    }

    // Quotas: over-select across the gateways that can form a group.
    const gateways = await redisStep('reading the gateways', () => plane.liveGateways());
    const eligible = totalEligible(gateways);
    const wanted = Math.ceil(cohortSize(run, eligible) * options.overSelection);
    const quotas = quotasFor(gateways, wanted, options.minGroupSize);
    const admitted = Object.values(quotas).reduce((total, quota) => total + quota, 0);
    // The accountant's q: a device's chance to be selected, at its gateway (quota / eligible there)
    // and at least the configured rate; the largest over the gateways, since rounding can favour one.
    const rate = Math.min(1, Math.max(sampleRate(run, eligible), ...gateways.map((gateway) => (quotas[gateway.id] ?? 0) / Math.max(1, gateway.eligible))));
    if (admitted < run.minClients) return await end(ports, options, abandon(`the live gateways can admit ${admitted} devices in groups of at least ${options.minGroupSize}; minClients is ${run.minClients}`));

    // Configure and begin.
    const strategy = privacy ? privacy.strategy(run.strategy, state.privacy!) : run.strategy;
    const base = strategy.configureTrain(round, run.train);
    // Pace steering: the devices the quotas leave out come back spread over the next rounds, never
    // past the task's last (they would find the gateways finished and gone).
    const retryWindowMs = retryWindowFor(eligible, admitted, roundMs, run.rounds - round);
    const task: RoundTask = {
      runId: state.runId,
      lastCommittedRound: state.lastCommittedRound,
      config: privacy ? privacy.trainConfig(base, state.privacy!) : base,
      privacy: roundPrivacy(run, privacy, state.privacy),
      ...(state.privacy ? { privacyState: state.privacy } : {}),
      quotas,
      minGroupSize: options.minGroupSize,
      ...(retryWindowMs ? { retryWindowMs } : {}),
      ...(privacy ? { sampleRate: rate } : {}),
    };
    await redisStep('storing the model', () => plane.putModel(version, state.weights));
    const epoch = lease.epoch();
    if (!(await redisStep('beginning the round', () => plane.begin(epoch, round, JSON.stringify(task))))) {
      throw new Error(`round ${round} of task ${plane.task} is already in Redis: another leader of this task runs without the lease`);
    }

    // Collect: every quota'd gateway reports all its groups, or is gone (no heartbeat for
    // GATEWAY_GONE_MS), or the time is up, or Redis lost the round (it restarted empty). A read
    // that fails tells nothing: poll again.
    const lastSeen = new Map(Object.keys(quotas).map((id) => [id, clock.now()]));
    await waitFor(
      clock,
      signal,
      async () => {
        const status = await plane.roundStatus().catch(() => undefined);
        if (status?.round !== round) return true;
        const reports = await plane.reportedGroups(round).catch(() => undefined);
        const live = await plane.liveGateways().catch(() => undefined);
        if (reports === undefined || live === undefined) return undefined;
        for (const gateway of live) if (lastSeen.has(gateway.id)) lastSeen.set(gateway.id, clock.now());
        const done = gatewaysDone(reports);
        return [...lastSeen].every(([id, seen]) => done.has(id) || clock.now() - seen >= GATEWAY_GONE_MS) ? true : undefined;
      },
      options.reportTimeoutMs,
    );
    if (signal.aborted) return await end(ports, options, abandon('coordinator stopped'));
    if (!(await redisStep('closing the round', () => plane.advance(lease.epoch(), round, 'selecting', 'aggregating')))) {
      return await end(ports, options, abandon('Redis no longer holds the round (it restarted): its groups are lost'));
    }
    crashAtLeaderStepIfAsked('mid-aggregate', round);

    // Aggregate: the group sums, added here (never in Lua), group by group: a failed or lost group
    // drops out alone, its gateway's other groups still count.
    const reports = await redisStep('reading the reports', () => plane.reportedGroups(round));
    const weightedSum = new Float64Array(numParams);
    let totalWeight = 0;
    let count = 0;
    let groups = 0;
    let selected = 0;
    let bytesUp = 0;
    let bytesDown = 0;
    let unclipped: { count: number; reports: number; noised: boolean } | undefined;
    const losses: { loss: number; count: number }[] = [];
    const failures: string[] = [];
    for (const [group, text] of Object.entries(reports)) {
      const meta = JSON.parse(text) as GroupReportMeta;
      selected += meta.selected;
      bytesUp += meta.bytesUp;
      bytesDown += meta.bytesDown;
      if (meta.failure !== undefined) {
        failures.push(`${group}: ${meta.failure}`);
        continue;
      }
      const sum = await redisStep('reading a group sum', () => plane.groupSum(round, group));
      if (sum === undefined || sum.length !== numParams) continue; // expired or malformed: that group is lost
      for (let i = 0; i < numParams; i++) weightedSum[i]! += sum[i]!;
      totalWeight += meta.totalWeight;
      count += meta.count;
      groups++;
      if (meta.trainLoss !== undefined) losses.push({ loss: meta.trainLoss, count: meta.count });
      if (meta.unclipped) unclipped = { count: (unclipped?.count ?? 0) + meta.unclipped.count, reports: (unclipped?.reports ?? 0) + meta.unclipped.reports, noised: meta.unclipped.noised };
    }
    const common: Partial<RoundMetrics> = { selected, participants: count, dropouts: selected - count, bytesUp, bytesDown, groups, ...(losses.length > 0 ? { trainLoss: weightedMean(losses) } : {}) };
    // Released, so charged even if the round now aborts: under distributed DP every group sum the
    // gateways unmasked; with any DP, the sum of all groups once the leader steps with it (as runRound).
    const releasedGroups = privacy?.mode === 'distributed' && groups > 0 ? rate : undefined;
    if (count < run.minClients) return await end(ports, options, abandon(`${count} devices in ${Object.keys(reports).length} group reports; minClients is ${run.minClients}${failures.length > 0 ? ` (failed groups: ${failures.join('; ')})` : ''}`, common, releasedGroups));
    const next = await nextModel(ports, run, strategy, state, { weightedSum, totalWeight, count }, round);
    if ('failure' in next) return await end(ports, options, abandon(next.failure, common, privacy ? rate : undefined));

    // Charge and commit.
    let after: CoordinatorState = { ...state, round, weights: next.step.weights, strategyState: next.step.state, lastCommittedRound: round };
    let privacyMetrics: Partial<PrivacyMetrics> = {};
    let charge: RoundRecord['charge'];
    if (privacy) {
      const charged = privacy.charge(state.privacy!, rate, unclipped);
      after = { ...after, privacy: charged.state };
      privacyMetrics = charged.metrics;
      charge = { sampleRate: rate, noiseMultiplier: run.dp!.noiseMultiplier, clipNorm: state.privacy!.clipNorm };
    }
    const newVersion = modelVersion(after.runId, round);
    const metrics: RoundMetrics = { round, status: 'committed', ...common, selected, participants: count, dropouts: selected - count, modelVersion: newVersion, ...('evaluation' in next ? next.evaluation : {}), bytesUp, bytesDown, durationMs: clock.now() - started, ...privacyMetrics };
    const record = roundRecord(metrics, after, run.strategy.name, charge);
    await end(ports, options, { state: after, record }, version, Object.keys(reports));
    return { state: after, record };
  } catch (error) {
    if (error instanceof RedisUnavailable) {
      const aborted = abandon(error.message); // logs the abort
      await ports.log.append(aborted.record);
      return aborted;
    }
    throw error;
  }
}

/** How many devices a round wants from `eligible`: `clientsPerRound`, or `fraction` of them, or all. */
function cohortSize(options: RunSetup['options'], eligible: number): number {
  const { clientsPerRound, fraction } = options;
  return Math.min(eligible, clientsPerRound ?? (fraction !== undefined ? Math.ceil(fraction * eligible) : eligible));
}

/** Whether any group of a round's reports carries a sum (a group that did not fail). */
function sumsReported(reports: Readonly<Record<string, string>>): boolean {
  return Object.values(reports).some((text) => (JSON.parse(text) as GroupReportMeta).failure === undefined);
}

/**
 * Ends the round in Redis (the fenced step: a newer leader makes it throw FencedError), then
 * appends it to the round log (checkpoint, ledger). Redis first, so that two leaders can never both
 * write a round; a crash between the two is repaired by the next leader (`adopt`).
 */
async function end(ports: RoundPorts, options: LeaderDriverOptions, outcome: { state: CoordinatorState; record: RoundRecord }, trainedVersion?: string, groups: readonly string[] = []): Promise<{ state: CoordinatorState; record: RoundRecord }> {
  const { plane, lease } = options;
  const { record } = outcome;
  const ending =
    record.status === 'committed'
      ? ({ status: 'committed', modelVersion: record.modelVersion, previousVersion: trainedVersion, weights: record.weights } as const)
      : ({ status: 'abandoned' } as const);
  let ended: boolean;
  try {
    ended = await plane.end(lease.epoch(), record.round, ending, encodeFrame(record));
  } catch (error) {
    if (error instanceof FencedError) throw error;
    // Whether the end reached Redis is unknown: crash rather than guess; the next leader adopts
    // the round if it ended, or abandons it if not.
    throw new Error(`round ${record.round}: Redis failed while ending it (${error instanceof Error ? error.message : String(error)}); restart the leader`, { cause: error });
  }
  // Not open (a round abandoned before it began, after a Redis restart): nothing to end there.
  if (!ended && record.status === 'committed') throw new Error(`round ${record.round} was not open in Redis when this leader committed it`);
  crashAtLeaderStepIfAsked('after-end', record.round);
  await ports.log.append(record);
  if (groups.length > 0) await plane.dropResults(record.round, groups).catch(() => {}); // they expire anyway
  return outcome;
}

/** Round `round` ended in Redis but not in this leader's log (its leader died between the two): log it as it ended. */
async function adopt(ports: RoundPorts, state: CoordinatorState, round: number, plane: ControlPlane): Promise<{ state: CoordinatorState; record: RoundRecord }> {
  const bytes = await redisStep('reading the last round', () => plane.lastEndedRecord());
  const record = bytes === undefined ? undefined : (decodeFrame(bytes) as RoundRecord);
  if (record?.round !== round) throw new Error(`Redis says round ${round} ended but holds the record of round ${record?.round ?? 'none'}`);
  await ports.log.append(record);
  const after: CoordinatorState = {
    ...state,
    runId: record.runId,
    round,
    weights: record.weights,
    strategyState: record.strategyState,
    ...(record.status === 'committed' ? { lastCommittedRound: round } : {}),
    ...(record.privacy ? { privacy: record.privacy } : {}),
  };
  return { state: after, record };
}

function weightedMean(values: readonly { loss: number; count: number }[]): number {
  const total = values.reduce((sum, value) => sum + value.count, 0);
  return values.reduce((sum, value) => sum + value.loss * value.count, 0) / Math.max(1, total);
}
