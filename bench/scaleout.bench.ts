// Scale-out (issue #14, "Benchmarks"): a real redis-server, `shoal leader`, 3 `shoal gateway`
// child processes and swarm processes of real WebSocket devices (bench/scaleout-swarm.ts), on this
// machine. Every gateway admits the devices the leader's quota lets it, cuts them into SecAgg+
// groups of at least secagg.groupSize and runs the groups concurrently; the leader adds every
// group's sum and commits. Selected devices run real SecAgg (node:crypto) on the logreg model of 4
// inputs and 3 classes (d = 15); the others only check in.
//
// Full run: 5,000, 20,000, then 5,000 connected devices again (the same task, fresh processes
// each, 4 swarm processes at every size; the large run is compared with the mean of the two small
// runs around it, so drift in this shared machine's load cancels), cohorts of 1,000 devices per
// round (clientsPerRound; the leader's over-selection 1.3 admits ~1,300, ~433 per gateway) in
// groups of 200 (secagg.groupSize: 2 groups of ~217 per gateway, ~6 per round), 4 rounds each.
// Quick run (SHOAL_BENCH_QUICK=1 or --quick): 150 / 300 / 150 devices in 2 swarms, cohorts of 60
// (~78 admitted) in groups of 10 (~6 groups of ~13), 2 rounds each.
//
// Figures, per size: check-ins per second (devices welcomed / wall time of the paced check-in);
// seconds per SecAgg stage p50/p99 over every gateway's round (the gateways' round lines,
// secagg.stageMs: a stage's time at a gateway is its slowest group's, as they run at once) and the
// leader's round p50/p99 (durationMs); SecAgg groups per round (the leader's `groups`); rounds per minute; gateway
// memory per connection (VmRSS after check-in − VmRSS before, /proc/<pid>/status, / connections);
// leader CPU per round (utime + stime of /proc/<pid>/stat, sampled every 50 ms, over each round's
// span from its start to its line, median over the rounds) and its growth from the small to the
// large size (target ≈ 1: ≤ 1.5×); Redis commands per round (INFO total_commands_processed over
// the rounds / rounds; beside it the rate of the processes' polling and heartbeats before any
// device came); bytes per group result (the sum's d × 8 bytes plus the JSON metadata the gateway
// reports beside it, rebuilt from the gateway's round totals: a group's counts have no more digits).
// Correctness (exit 1 when any fails): every device welcomed; every round commits; per round and
// gateway, participants equal the devices whose masked input the swarms sent, selected the
// devices that got `train`, and its groups are floor(selected / groupSize); the leader added as
// many group sums as the gateways ran groups; the leader's checkpoint equals initial + the FedAvg of those devices'
// deltas, round by round, within the SecAgg fixed-point bound; every process exits 0.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { builtinInitialModel, readLatestCheckpoint, type RoundMetrics, type SecAggStage } from '@shoal/coordinator';
import type { GroupReportMeta } from '@shoal/scaleout';
import { clockTicksPerSecond, counterAt, cpuSeconds, nearestRankPercentile, residentBytes, secAggMeanBound, startRedisServer, startServe, type CounterSample, type RedisServer, type ServeProcess } from '@shoal/testkit';
import { QUICK, check, exitOnFailedChecks, sized } from './lib.js';
import { MAX_DEVICE_WEIGHT, deviceDelta, deviceWeight, startSwarm, type Swarm, type SwarmMessage } from './scaleout-swarm.js';

/**
 * The small size, the large one, devices wanted per round (the cohort: clientsPerRound; the
 * leader's over-selection admits 1.3 times it), the SecAgg group size (secagg.groupSize), rounds
 * per run, swarm processes (the same number at both sizes, so the machine runs the same
 * processes), and a deadline for a whole run.
 */
const PLAN = sized(
  { small: 5_000, large: 20_000, cohort: 1_000, groupSize: 200, rounds: 4, swarms: 4, deadlineMs: 1_200_000 },
  { small: 150, large: 300, cohort: 60, groupSize: 10, rounds: 2, swarms: 2, deadlineMs: 120_000 },
);
/** Small, large, small: the large run's baseline is the mean of the small runs around it, so drift in the machine's load cancels (linear drift exactly). */
const SIZES = [PLAN.small, PLAN.large, PLAN.small];
const { cohort: COHORT, groupSize: GROUP_SIZE, rounds: ROUNDS } = PLAN;
/** The leader's over-selection without DP (packages/scaleout/src/roles.ts). */
const OVER_SELECTION = 1.3;
const GATEWAYS = 3;
const TOKEN = 'scaleout-bench-token';
const SEED = 7;
const MODEL = builtinInitialModel('logreg', [4], 3, SEED);
const D = MODEL.weights.length;
const CLIP_RANGE = 0.1;
const STAGES: readonly SecAggStage[] = ['advertise', 'share', 'masked', 'confirm', 'unmask'];
const GROWTH_TARGET = 1.5;
const CPU_SAMPLE_MS = 50;

interface SizeResult {
  readonly devices: number;
  readonly checkInsPerSecond: number;
  readonly stageSeconds: Readonly<Record<SecAggStage, readonly number[]>>;
  readonly roundSeconds: readonly number[];
  readonly roundsPerMinute: number;
  readonly bytesPerConnection: number;
  readonly leaderCpuPerRound: number;
  /** Leader CPU seconds per second of round (median): mostly its polling of Redis while groups run. */
  readonly leaderCpuShare: number;
  readonly redisCommandsPerRound: number;
  readonly redisIdlePerSecond: number;
  readonly groupResultBytes: readonly number[];
  /** The smallest and largest group over every round (a gateway's are floor or ceil of its admitted / its groups). */
  readonly groupSizes: readonly number[];
  /** SecAgg groups per round whose sums the leader added. */
  readonly groupsPerRound: readonly number[];
  readonly swarms: number;
  readonly connectSeconds: number;
  readonly load: string;
}

function configFor(devices: number, checkpointDir: string): Record<string, unknown> {
  return {
    name: 'scaleout-bench',
    seed: SEED,
    rounds: ROUNDS,
    model: { builtin: 'logreg', inputShape: [4], numClasses: 3 },
    clientsPerRound: COHORT,
    minClients: Math.floor(COHORT / 2),
    minAvailable: devices, // the first round starts once every device checked in
    roundTimeoutMs: 300_000,
    secagg: { mode: 'secagg+', stageTimeoutMs: 300_000, clipRange: CLIP_RANGE, maxWeight: MAX_DEVICE_WEIGHT, groupSize: GROUP_SIZE },
    // Swarm processes busy with SecAgg answer pings late; liveness is load-connections' subject.
    server: { tokens: [TOKEN], heartbeatIntervalMs: 60_000, checkpointDir },
  };
}

/** Redis's INFO total_commands_processed (redis-cli, so the bench needs no Redis client of its own). */
function redisCommands(redis: RedisServer): number {
  const result = spawnSync('redis-cli', ['-p', String(redis.port), 'INFO', 'stats'], { encoding: 'utf8' });
  const match = /^total_commands_processed:(\d+)/m.exec(result.stdout);
  if (result.status !== 0 || match === null) throw new Error(`redis-cli INFO stats failed (exit ${result.status}): ${result.stderr}`);
  return Number(match[1]);
}

function roundLines(process: ServeProcess): RoundMetrics[] {
  return process.lines.filter((line) => typeof line['round'] === 'number' && typeof line['status'] === 'string') as unknown as RoundMetrics[];
}

function withDeadline<T>(promise: Promise<T>, what: string, until: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`scaleout: ${what} did not happen within the run's deadline`)), Math.max(0, until - performance.now()));
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

/** One size: its own redis-server, leader, gateways and swarms, all killed by pid at the end. */
async function runSize(devices: number, ticks: number): Promise<SizeResult> {
  const until = performance.now() + PLAN.deadlineMs;
  const workDir = await mkdtemp(join(tmpdir(), 'shoal-scaleout-bench-'));
  const checkpointDir = join(workDir, 'checkpoints');
  const configPath = join(workDir, 'task.json');
  await writeFile(configPath, JSON.stringify(configFor(devices, checkpointDir)));
  let redis: RedisServer | undefined;
  const processes: ServeProcess[] = [];
  const swarms: Swarm[] = [];
  let sampler: NodeJS.Timeout | undefined;
  try {
    redis = await startRedisServer();
    const role = (command: 'leader' | 'gateway', id: string) => {
      const child = startServe(configPath, ['--redis', redis!.url, '--id', id, '--log-level', 'warn'], { command });
      processes.push(child);
      return child;
    };
    const leader = role('leader', 'leader');
    const gateways = Array.from({ length: GATEWAYS }, (_, g) => role('gateway', `gw-${g}`));
    const urls = await withDeadline(Promise.all(gateways.map((gateway) => gateway.url)), 'the gateways listening', until);
    await withDeadline(leader.url, 'the leader listening', until);
    const gatewayPids = gateways.map((gateway) => gateway.child.pid!);
    const leaderPid = leader.child.pid!;

    // Idle: start-up settled, no device yet. Redis sees only the processes' polling and heartbeats.
    await sleep(1_000);
    const idleStart = { at: performance.now(), commands: redisCommands(redis) };
    await sleep(2_000);
    const idleCommandsPerMs = (redisCommands(redis) - idleStart.commands) / (performance.now() - idleStart.at);
    const idleRss = gatewayPids.map(residentBytes);

    // Redis's command count at each of the leader's round lines; the leader's CPU every 50 ms.
    const atRoundLine = new Map<number, { at: number; commands: number }>();
    leader.onLine((line) => {
      if (typeof line['round'] === 'number' && typeof line['status'] === 'string') atRoundLine.set(line['round'], { at: performance.now(), commands: redisCommands(redis!) });
    });
    const leaderCpu: CounterSample[] = [];
    const sampleLeaderCpu = () => {
      try {
        leaderCpu.push({ atMs: performance.now(), value: cpuSeconds(leaderPid, ticks) });
      } catch {
        clearInterval(sampler); // the leader has exited
      }
    };
    sampler = setInterval(sampleLeaderCpu, CPU_SAMPLE_MS);

    // Check-in: every swarm at once, each paced.
    const swarmCount = PLAN.swarms;
    for (let s = 0; s < swarmCount; s++) {
      const first = Math.floor((s * devices) / swarmCount);
      swarms.push(startSwarm({ urls, token: TOKEN, first, count: Math.floor(((s + 1) * devices) / swarmCount) - first, swarm: s, numParams: D }));
    }
    const connectStart = performance.now();
    const ready = await withDeadline(Promise.all(swarms.map((swarm) => swarm.connect())), 'the check-in', until);
    const connectSeconds = (performance.now() - connectStart) / 1000;
    const welcomed = ready.reduce((total, r) => total + r.welcomed, 0);
    check(welcomed === devices, `${welcomed} of ${devices} devices were welcomed; first failure: ${ready.find((r) => r.firstFailure)?.firstFailure ?? 'none'}`);
    const connected = { at: performance.now(), commands: redisCommands(redis) };
    const connectedRss = gatewayPids.map(residentBytes);

    // The rounds: the leader runs them all, marks the task finished, and every gateway ends.
    const leaderExit = await withDeadline(leader.exit, `the leader's ${ROUNDS} rounds`, until);
    const gatewayExits = await withDeadline(Promise.all(gateways.map((gateway) => gateway.exit)), 'the gateways ending', until);
    check(leaderExit.code === 0, `shoal leader exited ${leaderExit.code ?? leaderExit.signal}: ${leader.stderr().slice(-2_000)}`);
    gatewayExits.forEach((exit, g) => check(exit.code === 0, `shoal gateway gw-${g} exited ${exit.code ?? exit.signal}: ${gateways[g]!.stderr().slice(-2_000)}`));
    const reports = await withDeadline(Promise.all(swarms.map((swarm) => swarm.report())), 'the swarm reports', until);
    const swarmExits = await withDeadline(Promise.all(swarms.map((swarm) => swarm.stop())), 'the swarms exiting', until);
    swarmExits.forEach((code, s) => check(code === 0, `swarm ${s} exited ${code}`));
    const errors = reports.reduce((total, report) => total + report.errorCount, 0);
    check(errors === 0, `${errors} device errors in the swarms: ${reports.flatMap((report) => report.errors).slice(0, 5).join('; ')}`);

    const leaderRounds = roundLines(leader);
    const gatewayRounds = gateways.map(roundLines);
    const rounds = roundsSeen(reports);
    const groupResultBytes = checkRounds(leaderRounds, gatewayRounds, rounds);
    await checkModel(checkpointDir, gatewayRounds, rounds);

    // Figures. Leader CPU per round: over each round's own span (its line's time − its durationMs).
    const cpuPerRound = leaderRounds.map((round) => {
      const end = lineAt(atRoundLine, round.round).at;
      return counterAt(leaderCpu, end) - counterAt(leaderCpu, end - round.durationMs);
    });
    const last = lineAt(atRoundLine, ROUNDS);
    const firstRoundStart = lineAt(atRoundLine, 1).at - (leaderRounds[0]?.durationMs ?? Number.NaN);
    return {
      devices,
      swarms: swarmCount,
      checkInsPerSecond: welcomed / connectSeconds,
      connectSeconds,
      stageSeconds: Object.fromEntries(STAGES.map((stage) => [stage, gatewayRounds.flat().map((round) => (round.secagg?.stageMs[stage] ?? Number.NaN) / 1000)])) as Record<SecAggStage, number[]>,
      roundSeconds: leaderRounds.map((round) => round.durationMs / 1000),
      roundsPerMinute: (ROUNDS * 60_000) / (last.at - firstRoundStart),
      bytesPerConnection: connectedRss.reduce((total, rss, g) => total + (rss - idleRss[g]!), 0) / devices,
      leaderCpuPerRound: median(cpuPerRound),
      leaderCpuShare: median(cpuPerRound.map((cpu, i) => cpu / (leaderRounds[i]!.durationMs / 1000))),
      redisCommandsPerRound: (last.commands - connected.commands) / ROUNDS,
      redisIdlePerSecond: idleCommandsPerMs * 1000,
      groupResultBytes,
      groupSizes: gatewayRounds.flat().flatMap((round) => (round.groups ? [Math.floor(round.selected / round.groups), Math.ceil(round.selected / round.groups)] : [])),
      groupsPerRound: leaderRounds.map((round) => round.groups ?? 0),
      load: load(),
    };
  } finally {
    clearInterval(sampler);
    for (const swarm of swarms) await swarm.kill();
    for (const child of processes) await child.kill();
    await redis?.kill();
    await rm(workDir, { recursive: true, force: true });
  }
}

function lineAt(lines: ReadonlyMap<number, { at: number; commands: number }>, round: number): { at: number; commands: number } {
  return lines.get(round) ?? { at: Number.NaN, commands: Number.NaN };
}

function median(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : nearestRankPercentile([...xs].sort((a, b) => a - b), 50);
}

/** What the swarms together saw of one round: devices that got `train` and were told it committed (per gateway), and those that sent masked input. */
interface RoundSeen {
  readonly trained: number[];
  readonly committed: number[];
  readonly masked: number[];
}

function roundsSeen(reports: readonly Extract<SwarmMessage, { type: 'report' }>[]): Map<number, RoundSeen> {
  const seen = new Map<number, RoundSeen>();
  for (const report of reports) {
    for (const round of report.rounds) {
      const entry = seen.get(round.round) ?? { trained: new Array<number>(GATEWAYS).fill(0), committed: new Array<number>(GATEWAYS).fill(0), masked: [] };
      round.trained.forEach((n, g) => (entry.trained[g]! += n));
      round.committed.forEach((n, g) => (entry.committed[g]! += n));
      entry.masked.push(...round.masked);
      seen.set(round.round, entry);
    }
  }
  return seen;
}

/**
 * Every round committed; the leader's and each gateway's selected and participant counts are the
 * devices that got `train` and that sent masked input. Returns the bytes of each group result
 * (the sum's d × 8 bytes, plus its metadata JSON as the gateway builds it from the same counts).
 */
function checkRounds(leaderRounds: readonly RoundMetrics[], gatewayRounds: readonly RoundMetrics[][], rounds: ReadonlyMap<number, RoundSeen>): number[] {
  check(leaderRounds.length === ROUNDS, `the leader printed ${leaderRounds.length} round lines, not ${ROUNDS}`);
  const groupBytes: number[] = [];
  for (const metrics of leaderRounds) {
    const { round } = metrics;
    check(metrics.status === 'committed', `round ${round} did not commit: ${metrics.reason ?? metrics.status}`);
    const seen = rounds.get(round) ?? { trained: [], committed: [], masked: [] };
    const trained = seen.trained.reduce((a, b) => a + b, 0);
    check(metrics.selected === trained, `round ${round}: the leader counts ${metrics.selected} selected; ${trained} devices got train`);
    check(metrics.participants === seen.masked.length, `round ${round}: the leader counts ${metrics.participants} participants; the devices sent ${seen.masked.length} masked inputs`);
    check(metrics.participants === metrics.selected - metrics.dropouts, `round ${round}: participants ${metrics.participants} ≠ selected ${metrics.selected} − dropouts ${metrics.dropouts}`);
    const gatewayGroups = gatewayRounds.reduce((total, lines) => total + (lines.find((line) => line.round === round)?.groups ?? 0), 0);
    check(metrics.groups === gatewayGroups, `round ${round}: the leader added ${metrics.groups ?? 'no'} group sums; the gateways ran ${gatewayGroups} groups`);
    for (let g = 0; g < GATEWAYS; g++) {
      const group = gatewayRounds[g]!.find((line) => line.round === round);
      const masked = seen.masked.filter((index) => index % GATEWAYS === g);
      if (!check(group !== undefined, `gateway gw-${g} printed no line for round ${round}`)) continue;
      check(group!.status === 'committed' && group!.selected === seen.trained[g] && group!.participants === masked.length, `round ${round} at gw-${g}: ${group!.status}, ${group!.selected} selected and ${group!.participants} participants; ${seen.trained[g]} devices got train and ${masked.length} sent masked input`);
      check(seen.committed[g] === seen.trained[g], `round ${round} at gw-${g}: ${seen.committed[g]} of its ${seen.trained[g]} members were told the round committed`);
      check(group!.groups === Math.floor(group!.selected / GROUP_SIZE), `round ${round} at gw-${g}: ${group!.groups ?? 'no'} groups of ${group!.selected} admitted devices; groups of at least ${GROUP_SIZE} make ${Math.floor(group!.selected / GROUP_SIZE)}`);
      const meta: GroupReportMeta = {
        gateway: `gw-${g}`,
        groups: group!.groups ?? 1,
        selected: group!.selected,
        count: group!.participants,
        totalWeight: masked.reduce((total, index) => total + deviceWeight(index), 0),
        dropouts: group!.dropouts,
        bytesUp: group!.bytesUp,
        bytesDown: group!.bytesDown,
        ...(group!.trainLoss !== undefined ? { trainLoss: group!.trainLoss } : {}),
      };
      groupBytes.push(D * Float64Array.BYTES_PER_ELEMENT + Buffer.byteLength(JSON.stringify(meta)));
    }
  }
  return groupBytes;
}

/**
 * The leader's last checkpoint equals initial + Σ over rounds of the FedAvg of that round's masked
 * inputs (Σ w·δ / Σ w, with w·δ in float32 as the device masks it), each round within its SecAgg
 * bound (@shoal/testkit secAggMeanBound, at the smallest scale of its groups, evaluated at the
 * largest magnitude the model reaches on the way), and the update is far above that bound.
 */
async function checkModel(checkpointDir: string, gatewayRounds: readonly RoundMetrics[][], rounds: ReadonlyMap<number, RoundSeen>): Promise<void> {
  const checkpoint = await readLatestCheckpoint(checkpointDir);
  if (!check(checkpoint?.round === ROUNDS, `the leader's last checkpoint is of round ${checkpoint?.round ?? 'none'}, not ${ROUNDS}`)) return;
  const expected = Float64Array.from(MODEL.weights);
  const magnitude = expected.map(Math.abs);
  const perRound: { count: number; scale: number; totalWeight: number }[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const masked = rounds.get(round)?.masked ?? [];
    const sum = new Float64Array(D);
    let totalWeight = 0;
    for (const index of masked) {
      const weight = deviceWeight(index);
      const delta = deviceDelta(index, D);
      totalWeight += weight;
      for (let j = 0; j < D; j++) sum[j]! += Math.fround(weight * delta[j]!);
    }
    for (let j = 0; j < D; j++) {
      expected[j]! += sum[j]! / totalWeight;
      magnitude[j]! += Math.abs(sum[j]! / totalWeight);
    }
    const scale = Math.min(...gatewayRounds.map((lines) => lines.find((line) => line.round === round)?.secagg?.scale ?? Number.NaN));
    perRound.push({ count: masked.length, scale, totalWeight });
  }
  const bound = CLIP_RANGE * MAX_DEVICE_WEIGHT;
  let offBound = 0;
  let worst = 0;
  let largestTolerance = 0;
  let largestUpdate = 0;
  for (let j = 0; j < D; j++) {
    const tolerance = perRound.reduce((total, round) => total + secAggMeanBound({ ...round, bound }, magnitude[j]!), 0);
    const error = Math.abs(checkpoint!.weights[j]! - expected[j]!);
    if (!(error <= tolerance)) offBound++;
    worst = Math.max(worst, error / tolerance);
    largestTolerance = Math.max(largestTolerance, tolerance);
    largestUpdate = Math.max(largestUpdate, Math.abs(expected[j]! - MODEL.weights[j]!));
  }
  check(offBound === 0, `${offBound} of ${D} coordinates of the leader's model are outside the SecAgg bound of initial + FedAvg of the participants' deltas (worst ${worst.toFixed(2)}× the bound)`);
  check(largestUpdate > 100 * largestTolerance, `the rounds' update (largest coordinate ${largestUpdate.toExponential(2)}) is not well above the tolerance (${largestTolerance.toExponential(2)}): the check could not see a wrong sum`);
  console.log(`scaleout: model = initial + FedAvg of the participants, worst coordinate at ${worst.toFixed(3)}× its bound (largest bound ${largestTolerance.toExponential(2)}, largest update ${largestUpdate.toExponential(2)})`);
}

function percentiles(xs: readonly number[], digits = 2): string {
  const sorted = [...xs].sort((a, b) => a - b);
  if (sorted.length === 0 || sorted.some((x) => !Number.isFinite(x))) return 'n/a';
  return `p50 ${nearestRankPercentile(sorted, 50).toFixed(digits)} s, p99 ${nearestRankPercentile(sorted, 99).toFixed(digits)} s`;
}

function print(result: SizeResult): void {
  const tag = `scaleout ${result.devices.toLocaleString('en')} devices`;
  const groups = [...result.groupSizes].sort((a, b) => a - b);
  const perRound = [...new Set(result.groupsPerRound)].sort((a, b) => a - b).join(' or ');
  console.log(`${tag}: ${GATEWAYS} gateways, ${result.swarms} swarm processes, ${ROUNDS} rounds of ${COHORT} devices wanted (~${Math.round(COHORT * OVER_SELECTION)} admitted); ${perRound} SecAgg+ groups per round (secagg.groupSize ${GROUP_SIZE}; group sizes ${groups[0]}–${groups.at(-1)}), d = ${D}${QUICK ? ' (quick mode: not a measurement)' : ''}`);
  console.log(`${tag}: check-ins ${result.checkInsPerSecond.toFixed(0)} per second (${result.devices} welcomed in ${result.connectSeconds.toFixed(1)} s, paced 100 per 2 ms per swarm)`);
  console.log(`${tag}: gateway SecAgg stages over ${result.stageSeconds.advertise.length} gateway rounds (each its slowest group): ${STAGES.map((stage) => `${stage} ${percentiles(result.stageSeconds[stage])}`).join('; ')}`);
  console.log(`${tag}: leader round ${percentiles(result.roundSeconds)}; ${result.roundsPerMinute.toFixed(1)} rounds per minute`);
  console.log(`${tag}: gateway memory per connection ${(result.bytesPerConnection / 1024).toFixed(1)} KiB (VmRSS after check-in − before, summed over the gateways, / ${result.devices})`);
  console.log(`${tag}: leader CPU per round ${result.leaderCpuPerRound.toFixed(3)} s (utime + stime over the round's span, median of ${ROUNDS} rounds; ${(100 * result.leaderCpuShare).toFixed(1)} % of one core while a round runs)`);
  console.log(`${tag}: Redis ${result.redisCommandsPerRound.toFixed(0)} commands per round (INFO total_commands_processed; polling included: with no round running, the leader's and gateways' polling and heartbeats issue ${result.redisIdlePerSecond.toFixed(0)} per second)`);
  const bytes = [...result.groupResultBytes].sort((a, b) => a - b);
  console.log(`${tag}: group result ${D * 8} bytes of sum + metadata = ${bytes[0]}–${bytes.at(-1)} bytes per group`);
  console.log(`${tag}: load average ${result.load} (2 cores, shared), ${new Date().toISOString()}`);
}

async function main(): Promise<void> {
  const ticks = clockTicksPerSecond();
  const results: SizeResult[] = [];
  for (const devices of SIZES) {
    console.log(`scaleout: ${devices} devices starting, load average ${load()}`);
    const result = await runSize(devices, ticks);
    print(result);
    results.push(result);
  }
  // Growth: the large run against the mean of the small runs before and after it.
  const [before, large, after] = results as [SizeResult, SizeResult, SizeResult];
  const ratio = (f: (r: SizeResult) => number) => f(large) / ((f(before) + f(after)) / 2);
  const growth = ratio((r) => r.leaderCpuPerRound);
  const quick = QUICK ? ' (quick mode: not a measurement)' : '';
  const span = `${PLAN.small} → ${PLAN.large} devices (the large run / the mean of the small runs around it)`;
  console.log(`scaleout: leader CPU per round ${span}: ${growth.toFixed(2)}× (target ≈ 1, ≤ ${GROWTH_TARGET}×) ${growth <= GROWTH_TARGET ? 'ok' : 'MISS'}${quick}`);
  const ratios: [string, (r: SizeResult) => number][] = [
    ['leader CPU share while a round runs', (r) => r.leaderCpuShare],
    ['leader round p50', (r) => median(r.roundSeconds)],
    ['Redis commands per round', (r) => r.redisCommandsPerRound],
    ['rounds per minute', (r) => r.roundsPerMinute],
    ['gateway memory per connection', (r) => r.bytesPerConnection],
    ['check-ins per second', (r) => r.checkInsPerSecond],
  ];
  console.log(`scaleout: growth ${span}: ${ratios.map(([name, f]) => `${name} ${ratio(f).toFixed(2)}×`).join(', ')}${quick}`);
  exitOnFailedChecks();
}

await main();
