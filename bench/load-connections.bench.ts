// Load (issue #13, item 1): many idle WebSocket clients held on one real `shoal serve` child
// process for a bounded time, with heartbeats on. The clients are light raw protocol peers
// (hello, then answer pings: @shoal/testkit's LightPeer) spread over several peer processes (this
// file with `--peers`), each connecting from its own loopback source address (127.1.0.P) so no
// address runs short of ephemeral ports and no process holds more than its share of descriptors.
//
// Full run: 10,000 clients in 4 processes, held 5 minutes at heartbeatIntervalMs 5 s.
// Quick run (SHOAL_BENCH_QUICK=1 or --quick, for npm test's bench pass): 500 clients in 2
// processes, held 10 s at heartbeatIntervalMs 2 s (five heartbeats, the timeout two of them).
//
// Figures (all of the coordinator process, read from /proc/<pid>):
// - memory per connection: (VmRSS at the end of the hold − VmRSS idle before any client) / N, the
//   idle baseline measured in the same run; the peak VmRSS sampled every second of the hold, target
//   < 1 GiB at 10,000 connections (judged in the full run only);
// - heartbeat round trip p50/p99 over every heartbeat of every client during the hold (how a
//   LightPeer measures it: packages/testkit/src/light-peer.ts);
// - CPU: utime + stime over the hold window, as a share of one core.
// Correctness (exit 1 when any fails): every client welcomed; none closed during the hold (by
// HEARTBEAT_TIMEOUT or anything else); every client saw at least holdMs / interval − 1 heartbeats;
// /healthz answers 200 at the end of the hold.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { closeCodeOf } from '@shoal/protocol';
import { LightPeer, clockTicksPerSecond, cpuSeconds, healthz, nearestRankPercentile, residentBytes, startServe } from '@shoal/testkit';
import { QUICK, check, exitOnFailedChecks } from './lib.js';

const PLAN = QUICK
  ? { clients: 500, processes: 2, holdMs: 10_000, heartbeatIntervalMs: 2_000 }
  : { clients: 10_000, processes: 4, holdMs: 300_000, heartbeatIntervalMs: 5_000 };
const TOKEN = 'load-connections-token';
const RSS_TARGET_BYTES = 2 ** 30;
/** Connection attempts in flight per peer process: well under the coordinator's maxPendingHello (1,000) for all processes together. */
const CONNECT_CONCURRENCY = 100;
/** One process holds at most this many sockets from one source address (the ephemeral range here is ~28,000 ports). */
const MAX_PER_ADDRESS = 20_000;

/** Parent → peer process. */
type Command = { readonly type: 'hold' } | { readonly type: 'report' } | { readonly type: 'stop' };

/** Peer process → parent. */
type PeerMessage =
  | { readonly type: 'ready'; readonly welcomed: number; readonly failed: number; readonly firstFailure?: string }
  | {
      readonly type: 'report';
      readonly welcomed: number;
      /** Close codes (and how many) of connections that closed after welcome, hold or not. */
      readonly closes: Readonly<Record<string, number>>;
      readonly closedDuringHold: number;
      readonly fewestPingsInHold: number;
      readonly framesAfterWelcome: number;
      readonly roundTripsMs: Float64Array;
    };

// ---- peer process ----

async function runPeers(url: string, count: number, localAddress: string): Promise<void> {
  const peers: LightPeer[] = [];
  let failed = 0;
  let firstFailure: string | undefined;
  let next = 0;
  const connectSome = async () => {
    while (next < count) {
      next++;
      try {
        peers.push(await LightPeer.open(url, { token: TOKEN, localAddress }));
      } catch (error) {
        failed++;
        firstFailure ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, count) }, connectSome));
  send({ type: 'ready', welcomed: peers.length, failed, ...(firstFailure !== undefined ? { firstFailure } : {}) });

  let holdStartedAt = Number.POSITIVE_INFINITY;
  process.on('message', (command: Command) => {
    if (command.type === 'hold') {
      holdStartedAt = performance.now();
      for (const peer of peers) {
        peer.pingsSeen = 0;
        peer.measuring = true;
      }
    } else if (command.type === 'report') {
      const closes: Record<string, number> = {};
      for (const peer of peers) if (peer.closed) closes[peer.closed.code] = (closes[peer.closed.code] ?? 0) + 1;
      send({
        type: 'report',
        welcomed: peers.length,
        closes,
        closedDuringHold: peers.filter((peer) => peer.closed !== undefined && peer.closed.atMs >= holdStartedAt).length,
        fewestPingsInHold: Math.min(...peers.map((peer) => peer.pingsSeen)),
        framesAfterWelcome: peers.reduce((total, peer) => total + peer.framesAfterWelcome, 0),
        roundTripsMs: Float64Array.from(peers.flatMap((peer) => peer.roundTripsMs)),
      });
    } else {
      for (const peer of peers) peer.terminate();
      process.disconnect(); // the IPC channel was the last thing keeping this process alive
    }
  });
}

function send(message: PeerMessage): void {
  process.send!(message);
}

// ---- parent ----

interface PeerProcess {
  readonly child: ChildProcess;
  /** Resolves with the next message of `type` from this process; rejects if it exits first. */
  next<T extends PeerMessage['type']>(type: T): Promise<Extract<PeerMessage, { type: T }>>;
}

function startPeerProcess(url: string, count: number, localAddress: string): PeerProcess {
  const child = fork(fileURLToPath(import.meta.url), ['--peers', url, String(count), localAddress], {
    execArgv: ['--conditions=shoal-source', '--import', 'tsx'],
    serialization: 'advanced', // the round trips travel as a Float64Array
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit').then(([code, signal]) => {
    throw new Error(`peer process (${localAddress}) exited (code ${code}, signal ${signal}) before answering`);
  });
  exited.catch(() => {}); // only awaited through next()
  const next = <T extends PeerMessage['type']>(type: T) =>
    Promise.race([
      new Promise<Extract<PeerMessage, { type: T }>>((resolve) => {
        const onMessage = (message: PeerMessage) => {
          if (message.type !== type) return;
          child.off('message', onMessage);
          resolve(message as Extract<PeerMessage, { type: T }>);
        };
        child.on('message', onMessage);
      }),
      exited,
    ]);
  return { child, next };
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

async function main(): Promise<void> {
  const { clients, processes, holdMs, heartbeatIntervalMs } = PLAN;
  const workDir = await mkdtemp(join(tmpdir(), 'shoal-load-connections-'));
  const configPath = join(workDir, 'serve.json');
  // No round ever starts (minAvailable above the client count): the clients stay idle and only heartbeats flow.
  await writeFile(
    configPath,
    JSON.stringify({
      name: 'load-connections',
      rounds: 1,
      minClients: 2,
      clientsPerRound: 2,
      minAvailable: clients + 1,
      model: { builtin: 'logreg', inputShape: [4], numClasses: 3 },
      server: { tokens: [TOKEN], heartbeatIntervalMs, limits: { maxConnections: clients } },
    }),
  );
  const serve = startServe(configPath);
  const peerProcesses: PeerProcess[] = [];
  try {
    const url = await serve.url;
    const pid = serve.child.pid!;
    const ticks = clockTicksPerSecond();
    // Idle baseline: after start-up settles and one /healthz has warmed the HTTP path.
    await sleep(2_000);
    check((await healthz(url)) === 200, '/healthz did not answer 200 before any client connected');
    const idleRss = residentBytes(pid);

    const connectStart = performance.now();
    for (let p = 0; p < processes; p++) {
      const count = Math.floor(((p + 1) * clients) / processes) - Math.floor((p * clients) / processes);
      if (count > MAX_PER_ADDRESS) throw new Error(`load-connections: ${count} sockets from one source address is over ${MAX_PER_ADDRESS}; use more processes`);
      peerProcesses.push(startPeerProcess(url, count, `127.1.0.${p + 1}`));
    }
    const ready = await Promise.all(peerProcesses.map((peer) => peer.next('ready')));
    const connectSeconds = (performance.now() - connectStart) / 1000;
    const welcomed = ready.reduce((total, r) => total + r.welcomed, 0);
    check(welcomed === clients, `${welcomed} of ${clients} clients were welcomed; first failure: ${ready.find((r) => r.firstFailure)?.firstFailure ?? 'none'}`);

    const connectedRss = residentBytes(pid);
    const cpuStart = cpuSeconds(pid, ticks);
    const holdStart = performance.now();
    for (const peer of peerProcesses) peer.child.send({ type: 'hold' } satisfies Command);
    let peakRss = connectedRss;
    while (performance.now() - holdStart < holdMs) {
      await sleep(Math.min(1_000, holdMs - (performance.now() - holdStart)));
      peakRss = Math.max(peakRss, residentBytes(pid));
    }
    const holdSeconds = (performance.now() - holdStart) / 1000;
    const cpuUsed = cpuSeconds(pid, ticks) - cpuStart;
    const endRss = residentBytes(pid);
    peakRss = Math.max(peakRss, endRss);
    const health = await healthz(url).catch((error: Error) => `error: ${error.message}`);
    check(health === 200, `/healthz answered ${health} at the end of the hold, not 200`);

    const reports = await Promise.all(
      peerProcesses.map((peer) => {
        const report = peer.next('report');
        peer.child.send({ type: 'report' } satisfies Command);
        return report;
      }),
    );
    const closes: Record<string, number> = {};
    for (const report of reports) for (const [code, n] of Object.entries(report.closes)) closes[code] = (closes[code] ?? 0) + n;
    const closedDuringHold = reports.reduce((total, r) => total + r.closedDuringHold, 0);
    const heartbeatTimeouts = closes[closeCodeOf('HEARTBEAT_TIMEOUT')] ?? 0;
    const fewestPings = Math.min(...reports.map((r) => r.fewestPingsInHold));
    const expectedPings = Math.floor(holdMs / heartbeatIntervalMs) - 1;
    check(heartbeatTimeouts === 0, `${heartbeatTimeouts} clients were closed with HEARTBEAT_TIMEOUT (${closeCodeOf('HEARTBEAT_TIMEOUT')})`);
    check(closedDuringHold === 0 && Object.keys(closes).length === 0, `${closedDuringHold} clients closed during the hold; close codes after welcome: ${JSON.stringify(closes)}`);
    check(fewestPings >= expectedPings, `a client saw only ${fewestPings} heartbeats in ${holdSeconds.toFixed(0)} s at ${heartbeatIntervalMs} ms (expected >= ${expectedPings})`);
    const roundTrips = reports.flatMap((r) => [...r.roundTripsMs]).sort((a, b) => a - b);
    check(roundTrips.length > 0, 'no heartbeat round trip was measured');

    const perConnection = (endRss - idleRss) / clients;
    const p50 = roundTrips.length > 0 ? nearestRankPercentile(roundTrips, 50) : Number.NaN;
    const p99 = roundTrips.length > 0 ? nearestRankPercentile(roundTrips, 99) : Number.NaN;
    const rssVerdict = QUICK ? '(target < 1024 MiB at 10,000: judged in the full run)' : `(target < 1024 MiB) ${peakRss < RSS_TARGET_BYTES ? 'ok' : 'MISS'}`;
    console.log(`load-connections: ${clients} clients in ${processes} processes, connected in ${connectSeconds.toFixed(1)} s, held ${holdSeconds.toFixed(0)} s at heartbeatIntervalMs ${heartbeatIntervalMs}${QUICK ? ' (quick mode)' : ''}`);
    console.log(`load-connections: coordinator RSS idle ${mib(idleRss)}, connected ${mib(connectedRss)}, end of hold ${mib(endRss)}, peak ${mib(peakRss)} ${rssVerdict}`);
    console.log(`load-connections: memory per connection ${(perConnection / 1024).toFixed(1)} KiB ((end of hold − idle) / ${clients}); ${((connectedRss - idleRss) / clients / 1024).toFixed(1)} KiB just after connecting, before garbage collection settled`);
    console.log(`load-connections: heartbeat round trip p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms over ${roundTrips.length} heartbeats (fewest heartbeats one client saw: ${fewestPings})`);
    console.log(`load-connections: coordinator CPU ${cpuUsed.toFixed(2)} s over ${holdSeconds.toFixed(0)} s held = ${((100 * cpuUsed) / holdSeconds).toFixed(1)} % of one core`);
    console.log(`load-connections: load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}, ${new Date().toISOString()}`);
  } finally {
    for (const peer of peerProcesses) {
      if (peer.child.exitCode !== null || peer.child.signalCode !== null) continue;
      const exited = once(peer.child, 'exit');
      if (peer.child.connected) peer.child.send({ type: 'stop' } satisfies Command);
      else peer.child.kill('SIGKILL');
      await exited;
    }
    await serve.kill();
    await rm(workDir, { recursive: true, force: true });
  }
  exitOnFailedChecks();
}

const peersArg = process.argv.indexOf('--peers');
if (peersArg >= 0) {
  const [url, count, localAddress] = process.argv.slice(peersArg + 1);
  await runPeers(url!, Number(count), localAddress!);
} else {
  await main();
}
