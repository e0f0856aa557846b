import { hostname } from 'node:os';
import { MIN_SECAGG_COHORT } from '@shoal/secagg';
import { resolveOptions, startCoordinator, systemClock, type Coordinator, type CoordinatorHandle, type CoordinatorOptions, type ResolvedOptions, type TlsCredentials } from '@shoal/coordinator';
import { gatewayDriver } from './gateway.js';
import { leaderDriver, type HeldLease } from './leader.js';
import { ControlPlane, FencedError } from './plane.js';

type Listen = { host?: string; port?: number; tls?: TlsCredentials };

/** Where a gateway or a leader finds its task's control plane. */
export interface ScaleOutSettings {
  /** `redis://host:port`. */
  readonly redisUrl: string;
  /** The task's name: its keys in Redis are `fl:{task}:…` (the config's `name`). */
  readonly task: string;
  /** This process's name among the task's gateways or leaders (default: host name and pid). */
  readonly id?: string;
}

/** A gateway's heartbeat period; its heartbeat expires after three of them. */
export const GATEWAY_HEARTBEAT_MS = 500;

/** The default leader lease: a dead leader is replaced within this long. */
export const DEFAULT_LEASE_MS = 5_000;

/** How long after a round begins its groups may still report: the round's deadline plus the four key stages'. */
function reportTimeoutMs(options: ResolvedOptions): number {
  return options.roundTimeoutMs + 4 * (options.secagg?.stageTimeoutMs ?? 0);
}

function defaultId(): string {
  return `${hostname()}-${process.pid}`;
}

/**
 * Starts a gateway: the device-facing WebSocket server of a single coordinator (same protocol, same
 * tokens), whose rounds are its groups of the leader's rounds (`gatewayDriver`). It keeps no
 * checkpoints, no ledger and no privacy budget: those are the leader's.
 */
export async function startGateway(options: CoordinatorOptions, listen: Listen, settings: ScaleOutSettings): Promise<CoordinatorHandle & { readonly id: string }> {
  const id = settings.id ?? defaultId();
  const resolved = resolveOptions(options);
  const plane = new ControlPlane(settings.redisUrl, settings.task);
  await plane.connect();
  let coordinator: Coordinator | undefined;
  const { checkpointDir: _checkpoints, ledger: _ledger, ...rest } = options;
  const gatewayOptions: CoordinatorOptions = { ...rest, ...(options.dp ? { dp: { ...options.dp, targetEpsilon: undefined } } : {}) };
  // A gateway waits for its round's end as long as the leader may wait for reports, and one stage more.
  const endTimeoutMs = reportTimeoutMs(resolved) + (resolved.secagg?.stageTimeoutMs ?? 0);
  let handle: CoordinatorHandle;
  try {
    handle = await startCoordinator(gatewayOptions, listen, {
      driver: (own) => {
        coordinator = own;
        return gatewayDriver(own, { plane, gatewayId: id, clock: systemClock, endTimeoutMs });
      },
    });
  } catch (error) {
    plane.close();
    throw error;
  }
  const beat = () => void plane.heartbeat({ id, ...coordinator!.deviceCounts() }, 3 * GATEWAY_HEARTBEAT_MS).catch(() => {}); // Redis away: the leader sees no heartbeat, as it should
  beat();
  const heartbeat = setInterval(beat, GATEWAY_HEARTBEAT_MS);
  const stopped = handle.finished.finally(() => {
    clearInterval(heartbeat);
    plane.close();
  });
  return {
    ...handle,
    id,
    async close() {
      await handle.close();
      await stopped.catch(() => {});
    },
  };
}

/** A running leader: the coordinator handle, plus how it ended (`deposed`: a newer leader took the task). */
export interface LeaderHandle extends CoordinatorHandle {
  readonly id: string;
  /** The fencing epoch it holds. */
  epoch(): number;
  /** True once this leader lost its lease to another: it stopped committing. */
  deposed(): boolean;
}

export interface LeaderSettings extends ScaleOutSettings {
  readonly leaseMs?: number;
  /** Devices admitted per device wanted (default 1.3; 1 under DP, so the accountant's q is the cohort's). */
  readonly overSelection?: number;
  /** Called while this process waits for the lease another leader holds. */
  readonly onStandby?: () => void;
}

/**
 * Starts a leader: waits for the task's lease (standing by while another leader holds it), then
 * runs the rounds over the gateways (`leaderDriver`) with a coordinator that takes no devices but
 * keeps the checkpoints, the ledger and the privacy budget, and serves /healthz, /metrics and the
 * dashboard. The lease is renewed every third of its time; once another leader holds it, this one
 * stops (the fence already refuses its writes).
 */
export async function startLeader(options: CoordinatorOptions, listen: Listen, settings: LeaderSettings, signal?: AbortSignal): Promise<LeaderHandle> {
  const id = settings.id ?? defaultId();
  const leaseMs = settings.leaseMs ?? DEFAULT_LEASE_MS;
  const resolved = resolveOptions(options);
  const plane = new ControlPlane(settings.redisUrl, settings.task);
  await plane.connect();
  let epoch: number | undefined;
  try {
    let announced = false;
    while ((epoch = await plane.acquireLease(id, leaseMs).catch(() => undefined)) === undefined) {
      if (signal?.aborted) throw new Error('stopped while standing by for the lease');
      if (!announced) settings.onStandby?.();
      announced = true;
      await new Promise((resolve) => setTimeout(resolve, leaseMs / 4));
    }
  } catch (error) {
    plane.close();
    throw error;
  }
  let current = epoch;
  let lost = false;
  // One renewal at a time: the timer's and a round's `ensure` must not both try to retake it.
  let renewing: Promise<boolean> | undefined;
  const holdLease = (): Promise<boolean> =>
    (renewing ??= (async () => {
      try {
        if (await plane.renewLease(id, current, leaseMs)) return true;
        // Gone: it lapsed unclaimed (Redis restarted empty, or we stalled), or another leader took it.
        const again = await plane.acquireLease(id, leaseMs, current + 1);
        if (again === undefined) return false;
        current = again;
        return true;
      } finally {
        renewing = undefined;
      }
    })());
  const lease: HeldLease = {
    nodeId: id,
    epoch: () => current,
    async ensure() {
      if (await holdLease()) return;
      lost = true;
      throw new FencedError(current, 'starting a round');
    },
  };
  const handle = await startCoordinator(
    options,
    listen,
    {
      driver: () =>
        leaderDriver({
          plane,
          lease,
          clock: systemClock,
          overSelection: settings.overSelection ?? (options.dp ? 1 : 1.3),
          // SecAgg protects a group sum by the group's size; without it a gateway sees each update anyway.
          minGroupSize: options.secagg ? (options.secagg.groupSize ?? MIN_SECAGG_COHORT) : 1,
          reportTimeoutMs: reportTimeoutMs(resolved),
          minAvailable: resolved.minAvailable,
        }),
      refusesDevices: 'this is a scale-out leader: devices connect to a gateway',
    },
  ).catch((error: unknown) => {
    plane.close();
    throw error;
  });
  const keepLease = () =>
    holdLease().then(
      (held) => {
        if (held || lost) return;
        lost = true;
        void handle.close();
      },
      () => {}, // Redis unreachable: try again next time; the fence protects every write meanwhile
    );
  const renewal = setInterval(() => void keepLease(), leaseMs / 3);
  const ended = handle.finished.then(
    async (summary) => {
      clearInterval(renewal);
      if (!lost && summary.stoppedBy !== 'stopped') await plane.finish(current, summary.rounds.at(-1)?.round ?? 0).catch(() => {});
      if (!lost) await plane.releaseLease(id, current).catch(() => {});
      plane.close();
    },
    () => {
      clearInterval(renewal);
      plane.close();
    },
  );
  return {
    ...handle,
    id,
    epoch: () => current,
    deposed: () => lost,
    async close() {
      await handle.close().catch(() => {});
      await ended;
    },
  };
}
