import { encodeFrame } from '@shoal/protocol';
import { modelVersion, roundRecord, runGroup, type Clock, type Coordinator, type CoordinatorState, type RoundDriver, type RoundMetrics, type RoundPorts, type RoundRecord, type RunSetup } from '@shoal/coordinator';
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
 * The rounds of a gateway: each is its group of one of the leader's rounds. It waits for a round
 * that gives it a quota, runs the group (select, train, secure aggregation: `runGroup`), reports the
 * group's sum, waits for the leader to end the round, and tells the members how it ended. The sum
 * is the only thing of the group that leaves this process; no member's update does.
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

/** One round at a gateway, top to bottom: model → group → report → wait for the end → tell the members → log. */
async function runGatewayRound(ports: RoundPorts, setup: RunSetup, state: CoordinatorState, status: RoundStatus, options: GatewayDriverOptions, signal: AbortSignal): Promise<{ state: CoordinatorState; record: RoundRecord }> {
  const { plane, gatewayId, clock } = options;
  const started = clock.now();
  const task = JSON.parse(status.task) as RoundTask;
  const round = status.round;
  const trained = modelVersion(task.runId, task.lastCommittedRound);
  const weights = modelVersion(state.runId, state.lastCommittedRound) === trained ? state.weights : await plane.model(trained).catch(() => undefined);
  if (weights === undefined) {
    // Redis lost it (a restart): this round cannot run here; the leader abandons it without us.
    const metrics: RoundMetrics = { round, status: 'aborted', reason: `model ${trained} is not in Redis`, selected: 0, participants: 0, dropouts: 0, modelVersion: modelVersion(state.runId, state.lastCommittedRound), bytesUp: 0, bytesDown: 0, durationMs: 0 };
    const record = roundRecord(metrics, state, setup.options.strategy.name);
    await ports.log.append(record);
    return { state: { ...state, round }, record };
  }
  const leaderState: CoordinatorState = {
    ...state,
    runId: task.runId,
    round: round - 1,
    lastCommittedRound: task.lastCommittedRound,
    weights,
    ...(task.privacyState ? { privacy: task.privacyState } : {}),
  };

  // The group.
  const group = await runGroup(ports, setup, { round, state: leaderState, config: task.config, privacy: task.privacy, quota: task.quotas[gatewayId]!, minGroupSize: task.minGroupSize }, signal);
  const { collected } = group;
  const meta: GroupReportMeta = {
    gateway: gatewayId,
    selected: group.members.length,
    count: 'aggregate' in collected ? collected.aggregate.count : 0,
    totalWeight: 'aggregate' in collected ? collected.aggregate.totalWeight : 0,
    dropouts: collected.dropouts,
    bytesUp: collected.bytesUp,
    bytesDown: collected.bytesDown,
    ...(collected.trainLoss !== undefined ? { trainLoss: collected.trainLoss } : {}),
    ...(collected.unclipped ? { unclipped: collected.unclipped } : {}),
    ...('abortReason' in collected ? { failure: collected.abortReason } : {}),
  };
  const reported = await plane.report(round, status.epoch, gatewayId, JSON.stringify(meta), 'aggregate' in collected ? collected.aggregate.weightedSum : undefined).catch(() => 'unreachable' as const);

  // The end: the leader commits or abandons; a round that never ends here (the leader or Redis
  // died) is lost for these members, and the next round starts from whatever the leader commits.
  const ended = reported === 'ok' ? await waitFor(clock, signal, () => endOf(plane, round), options.endTimeoutMs) : undefined;
  const committed = ended === 'committed';
  const version = modelVersion(task.runId, committed ? round : task.lastCommittedRound);
  const reason = committed ? undefined : reported !== 'ok' ? REPORT_FAILURES[reported] : ended === 'abandoned' ? 'the leader abandoned the round' : 'the round did not end in time here';
  const result = encodeFrame({ type: 'result', round, status: committed ? 'committed' : 'aborted', modelVersion: version, ...(reason !== undefined ? { reason } : {}) });
  let bytesDown = collected.bytesDown;
  for (const member of group.members) bytesDown += ports.cohort.send(member, result);
  ports.cohort.release(round);

  // The state names the model it holds: the new one only once its weights are here.
  const fetched = committed ? await plane.model(version).catch(() => undefined) : undefined;
  const newWeights = fetched ?? weights;
  // The gateway never charges privacy (the leader does): its own privacy state stays as it began.
  const after: CoordinatorState = { ...state, runId: task.runId, round, lastCommittedRound: fetched ? round : task.lastCommittedRound, weights: newWeights };
  const metrics: RoundMetrics = {
    round,
    status: committed ? 'committed' : 'aborted',
    ...(reason !== undefined ? { reason } : {}),
    selected: group.members.length,
    participants: meta.count,
    dropouts: collected.dropouts,
    modelVersion: version,
    ...(collected.trainLoss !== undefined ? { trainLoss: collected.trainLoss } : {}),
    bytesUp: collected.bytesUp,
    bytesDown,
    durationMs: clock.now() - started,
    ...(collected.secagg ? { secagg: collected.secagg } : {}),
  };
  const record = roundRecord(metrics, after, setup.options.strategy.name);
  await ports.log.append(record);
  return { state: after, record };
}

const REPORT_FAILURES = {
  late: "the group's report came after the round closed",
  duplicate: "the group's report was already in",
  unreachable: 'Redis could not be reached to report the group',
} as const;

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
