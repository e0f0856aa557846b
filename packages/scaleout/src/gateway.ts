import { encodeFrame, shuffled } from '@shoal/protocol';
import {
  abortedRound,
  modelVersion,
  roundRecord,
  runGroup,
  type Clock,
  type Collected,
  type Coordinator,
  type CoordinatorState,
  type GroupTask,
  type RoundDriver,
  type RoundMetrics,
  type RoundPorts,
  type RoundRecord,
  type RunSetup,
  type SecAggMetrics,
  type SecAggStage,
} from '@shoal/coordinator';
import { splitIntoGroups } from './groups.js';
import { paceNotAdmitted } from './pace.js';
import type { ControlPlane, RoundStatus } from './plane.js';
import type { GroupReportMeta, RoundTask } from './task.js';
import { waitFor } from './wait.js';

export interface GatewayDriverOptions {
  readonly plane: ControlPlane;
  readonly gatewayId: string;
  readonly clock: Clock;
  /** How long a gateway waits for its round's end after reporting before it tells its members the round is lost. */
  readonly endTimeoutMs: number;
}

/**
 * The rounds of a gateway: each is its part of one of the leader's rounds. It waits for a round
 * that gives it a quota, selects up to it once, cuts the admitted devices into groups of
 * `secagg.groupSize` (one group when it is unset), runs the groups concurrently (train, secure
 * aggregation: `runGroup`), reports each group's sum as it is done, waits for the leader to end the
 * round, and tells the members how it ended. Group sums are the only thing of a round that leaves
 * this process; no member's update does.
 */
export function gatewayDriver(coordinator: Coordinator, options: GatewayDriverOptions): RoundDriver {
  const { plane, gatewayId, clock } = options;
  // Found by `ready`, run by `run`: the loop calls them in turn, once each per round.
  let next: RoundStatus | undefined;
  return {
    async ready(signal) {
      const done = coordinator.history.at(-1)?.round ?? 0;
      next = await waitFor(clock, signal, async () => {
        const status = await readStatus(plane);
        if (status === undefined) return undefined;
        if (status.finished) return status;
        const task = JSON.parse(status.task) as RoundTask;
        return status.phase === 'selecting' && status.round > done && (task.quotas[gatewayId] ?? 0) > 0 ? status : undefined;
      });
      if (next === undefined || next.finished) return undefined;
      return coordinator.deviceCounts().eligible;
    },
    async run(ports, setup, state, signal) {
      const status = next!;
      next = undefined;
      return runGatewayRound(ports, setup, state, status, options, signal);
    },
  };
}

/** One round at a gateway, top to bottom: model → select → groups, each reported → wait for the end → tell the members → log. */
async function runGatewayRound(ports: RoundPorts, setup: RunSetup, state: CoordinatorState, status: RoundStatus, options: GatewayDriverOptions, signal: AbortSignal): Promise<{ state: CoordinatorState; record: RoundRecord }> {
  const { plane, gatewayId, clock } = options;
  const started = clock.now();
  const task = JSON.parse(status.task) as RoundTask;
  const round = status.round;
  const trained = modelVersion(task.runId, task.lastCommittedRound);
  const weights = modelVersion(state.runId, state.lastCommittedRound) === trained ? state.weights : await plane.model(trained).catch(() => undefined);
  if (weights === undefined) {
    // Redis lost it (a restart): this round cannot run here; the leader abandons it without us.
    const aborted = abortedRound(ports, { options: setup.options }, state, round, `model ${trained} is not in Redis`);
    await ports.log.append(aborted.record);
    return aborted;
  }
  const leaderState: CoordinatorState = {
    ...state,
    runId: task.runId,
    round: round - 1,
    lastCommittedRound: task.lastCommittedRound,
    weights,
    ...(task.privacyState ? { privacy: task.privacyState } : {}),
  };

  // Select once, up to the quota: `admitted` of the `eligible` devices here, then cut into groups.
  const quota = task.quotas[gatewayId]!;
  let eligible: readonly string[] = [];
  const admitted = ports.cohort.select(round, (idle) => {
    eligible = idle;
    return idle.length < task.minGroupSize ? [] : shuffled(idle, ports.random).slice(0, quota);
  });
  // Pace steering: the eligible devices not admitted (those that announced 'pace') come back later.
  const paceBytes = paceNotAdmitted(ports.cohort, round, eligible, admitted, task.retryWindowMs);
  const groups = splitIntoGroups(admitted, setup.options.secagg?.groupSize, ports.random);

  // The groups, concurrently, each its own secure aggregation, each reported under its own id as
  // soon as it is done: a group that fails is lost alone. No group at all: one failed report, so
  // the leader stops waiting for this gateway.
  const groupTask: GroupTask = { round, state: leaderState, config: task.config, privacy: task.privacy, minGroupSize: task.minGroupSize };
  const report = async (k: number, members: readonly string[], collected: Collected): Promise<ReportedGroup> => {
    const meta = reportMeta(gatewayId, Math.max(1, groups.length), members, collected);
    const sum = 'aggregate' in collected ? collected.aggregate.weightedSum : undefined;
    const reported = await plane.report(round, status.epoch, `${gatewayId}/${k}`, JSON.stringify(meta), sum).catch(() => 'unreachable' as const);
    return { members, collected, meta, reported };
  };
  const reports = await allSettledOrThrow(
    groups.length > 0
      ? groups.map(async (members, k) => report(k, members, (await runGroup(ports, setup, groupTask, members, signal)).collected))
      : [report(0, admitted, noGroup(eligible.length, admitted.length, task.minGroupSize, setup.options.secagg?.groupSize))],
  );

  // The end: the leader commits or abandons; a round that never ends here (the leader or Redis
  // died) is lost for these members, and the next round starts from whatever the leader commits.
  const ended = reports.some((group) => group.reported === 'ok') ? await waitFor(clock, signal, () => endOf(plane, round), options.endTimeoutMs) : undefined;
  const committed = ended === 'committed';
  const version = modelVersion(task.runId, committed ? round : task.lastCommittedRound);
  let bytesDown = paceBytes;
  for (const group of reports) {
    // A group whose report was refused hears that it is out, even when the round commits without it.
    const reason = notCommittedReason(group.reported, ended);
    const result = encodeFrame({ type: 'result', round, status: reason === undefined ? 'committed' : 'aborted', modelVersion: modelVersion(task.runId, reason === undefined ? round : task.lastCommittedRound), ...(reason !== undefined ? { reason } : {}) });
    bytesDown += group.collected.bytesDown;
    for (const member of group.members) bytesDown += ports.cohort.send(member, result);
  }
  ports.cohort.release(round);

  // The state names the model it holds: the new one only once its weights are here.
  const fetched = committed ? await plane.model(version).catch(() => undefined) : undefined;
  const newWeights = fetched ?? weights;
  // The gateway never charges privacy (the leader does): its own privacy state stays as it began.
  const after: CoordinatorState = { ...state, runId: task.runId, round, lastCommittedRound: fetched ? round : task.lastCommittedRound, weights: newWeights };
  const reason = committed ? undefined : notCommittedReason((reports.find((group) => group.reported === 'ok') ?? reports[0]!).reported, ended);
  const secagg = mergeSecAgg(reports.flatMap((group) => (group.collected.secagg ? [group.collected.secagg] : [])));
  const trainLoss = weightedLoss(reports.map((group) => group.meta));
  const metrics: RoundMetrics = {
    round,
    status: committed ? 'committed' : 'aborted',
    ...(reason !== undefined ? { reason } : {}),
    selected: admitted.length,
    participants: reports.reduce((total, group) => total + group.meta.count, 0),
    dropouts: reports.reduce((total, group) => total + group.collected.dropouts, 0),
    modelVersion: version,
    ...(trainLoss !== undefined ? { trainLoss } : {}),
    bytesUp: reports.reduce((total, group) => total + group.collected.bytesUp, 0),
    bytesDown,
    durationMs: clock.now() - started,
    ...(secagg ? { secagg } : {}),
    groups: groups.length,
  };
  const record = roundRecord(metrics, after, setup.options.strategy.name);
  await ports.log.append(record);
  return { state: after, record };
}

/** One group of this gateway's round: its members, what it collected, and how its report went. */
interface ReportedGroup {
  readonly members: readonly string[];
  readonly collected: Collected;
  readonly meta: GroupReportMeta;
  readonly reported: 'ok' | keyof typeof REPORT_FAILURES;
}

/** What the leader reads of a group: counts and metrics, never an update. */
function reportMeta(gatewayId: string, groups: number, members: readonly string[], collected: Collected): GroupReportMeta {
  return {
    gateway: gatewayId,
    groups,
    selected: members.length,
    count: 'aggregate' in collected ? collected.aggregate.count : 0,
    totalWeight: 'aggregate' in collected ? collected.aggregate.totalWeight : 0,
    dropouts: collected.dropouts,
    bytesUp: collected.bytesUp,
    bytesDown: collected.bytesDown,
    ...(collected.trainLoss !== undefined ? { trainLoss: collected.trainLoss } : {}),
    ...(collected.unclipped ? { unclipped: collected.unclipped } : {}),
    ...('abortReason' in collected ? { failure: collected.abortReason } : {}),
  };
}

/** Why this gateway formed no group this round. */
function noGroup(eligible: number, admitted: number, minGroupSize: number, groupSize: number | undefined): Collected {
  const reason =
    admitted === 0
      ? `${eligible} eligible clients here, fewer than ${minGroupSize} (the smallest group)`
      : `${admitted} clients admitted here, fewer than this gateway's secagg.groupSize ${groupSize}: give the leader and every gateway the same config (the leader's asks for groups of at least ${minGroupSize})`;
  return { participants: 0, dropouts: admitted, bytesUp: 0, bytesDown: 0, abortReason: reason };
}

/**
 * Waits for every group, even when one throws (a bug, not a failed group: those are results), so
 * no group is left running on a round that is over; then throws the first error, if any.
 */
async function allSettledOrThrow<T>(runs: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(runs);
  const failed = settled.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<T>).value);
}

/**
 * The gateway's SecAgg metrics over its groups, which ran at the same time: a stage took as long
 * as its slowest group (stageMs, stageCpuMs: the max), dropouts add up, and threshold, degree and
 * scale are the smallest group's (the smallest scale bounds the decoding error of every group).
 */
function mergeSecAgg(groups: readonly SecAggMetrics[]): SecAggMetrics | undefined {
  if (groups.length <= 1) return groups[0];
  const perStage = (pick: (group: SecAggMetrics) => Readonly<Record<SecAggStage, number>> | undefined, combine: (values: number[]) => number) =>
    Object.fromEntries(SECAGG_STAGES.map((stage) => [stage, combine(groups.map((group) => pick(group)?.[stage] ?? 0))])) as Record<SecAggStage, number>;
  const max = (values: number[]) => Math.max(...values);
  const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
  return {
    mode: groups[0]!.mode,
    threshold: Math.min(...groups.map((group) => group.threshold)),
    degree: Math.min(...groups.map((group) => group.degree)),
    scale: Math.min(...groups.map((group) => group.scale)),
    stageMs: perStage((group) => group.stageMs, max),
    ...(groups.every((group) => group.stageCpuMs !== undefined) ? { stageCpuMs: perStage((group) => group.stageCpuMs, max) } : {}),
    dropouts: perStage((group) => group.dropouts, sum),
  };
}

const SECAGG_STAGES: readonly SecAggStage[] = ['advertise', 'share', 'masked', 'confirm', 'unmask'];

/** The members' mean training loss over the groups that reported one, weighted by their counts. */
function weightedLoss(metas: readonly GroupReportMeta[]): number | undefined {
  const reporting = metas.filter((meta) => meta.trainLoss !== undefined && meta.count > 0);
  if (reporting.length === 0) return undefined;
  const count = reporting.reduce((total, meta) => total + meta.count, 0);
  return reporting.reduce((total, meta) => total + meta.trainLoss! * meta.count, 0) / count;
}

const REPORT_FAILURES = {
  late: "the group's report came after the round closed",
  duplicate: "the group's report was already in",
  unreachable: 'Redis could not be reached to report the group',
} as const;

/** Why the round did not commit for a group that reported with `reported`; undefined when it did. */
function notCommittedReason(reported: ReportedGroup['reported'], ended: 'committed' | 'abandoned' | undefined): string | undefined {
  if (reported !== 'ok') return REPORT_FAILURES[reported];
  if (ended === 'committed') return undefined;
  return ended === 'abandoned' ? 'the leader abandoned the round' : 'the round did not end in time here';
}

/** How round `round` ended: its end marker; undefined while it is open. */
async function endOf(plane: ControlPlane, round: number): Promise<'committed' | 'abandoned' | undefined> {
  try {
    const ended = await plane.roundEnd(round);
    if (ended !== undefined) return ended;
    // No marker, and the hash is gone or past the round: Redis restarted and lost it.
    const status = await plane.roundStatus();
    return status === undefined || status.round > round ? 'abandoned' : undefined;
  } catch {
    return undefined; // Redis unreachable: ask again
  }
}

/** The round hash, or undefined while Redis cannot be reached (a restart): the caller polls again. */
async function readStatus(plane: ControlPlane): Promise<RoundStatus | undefined> {
  try {
    return await plane.roundStatus();
  } catch {
    return undefined;
  }
}
