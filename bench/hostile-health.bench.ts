// /healthz latency while token holders flood a real `shoal serve` with hostile frames (issue #13,
// item 5). The hostile-input tests used to assert "99 % of probes within 100 ms, none over 500 ms"
// and failed on a loaded machine; they now check what /healthz answers, and the latency is this
// bench's figure, measured against the same coordinator idle in the same run.
//
// Windows alternate: a flood window (the frames of test/integration/fixtures/hostile-frames.ts,
// ten connections in flight, each closed by the coordinator), then an idle window of the same
// length. In each, a separate process (@shoal/testkit's monitorHealth) polls GET /healthz every
// 25 ms, so the latency is the coordinator's and not this busy process's event loop.
// Figures: p99 and slowest /healthz answer flooded against idle (ratio, median over the windows),
// and the flooded p99 and slowest in ms on this machine against the bound the tests used to assert
// (p99 < 100 ms, slowest < 500 ms: printed ok or MISS, never a failure).
// Correctness (exit 1 when any fails): every probe answered 200; every hostile connection closed
// with a code refusing its frame; the coordinator still running at the end.
// Quick run (SHOAL_BENCH_QUICK=1 or --quick): one window of 300 frames.
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { monitorHealth, startHeldServe, type HealthReport } from '@shoal/testkit';
import { FRAME_REFUSAL_CODES, frameCase, sendFrame } from '../test/integration/fixtures/hostile-frames.js';
import { QUICK, check, exitOnFailedChecks, report, sized } from './lib.js';

const TOKEN = 'hostile-health-token';
const WINDOWS = sized(3, 1);
const FRAMES_PER_WINDOW = sized(5_000, 300);
const CONCURRENCY = 10;
/** The bound the hostile-input tests asserted until #13 (ms, on whatever machine ran them). */
const OLD_TEST_BOUND = { p99Ms: 100, slowestMs: 500 };

/** Plays `cases` ten at a time; resolves with every close code. */
async function flood(url: string, cases: readonly Parameters<typeof sendFrame>[2][]): Promise<number[]> {
  const codes: number[] = [];
  for (let start = 0; start < cases.length; start += CONCURRENCY) {
    const sent = await Promise.all(cases.slice(start, start + CONCURRENCY).map((testCase) => sendFrame(url, TOKEN, testCase)));
    codes.push(...(await Promise.all(sent.map((s) => s.closed))).map((close) => close.code));
  }
  return codes;
}

/** Runs `work` while a probe process polls /healthz; the probe process is stopped however `work` ends. */
async function whileProbing<T>(host: string, port: number, work: () => Promise<T>): Promise<{ result: T; health: HealthReport }> {
  const monitor = monitorHealth(host, port);
  let result: T;
  try {
    result = await work();
  } catch (error) {
    await monitor.stop().catch(() => {});
    throw error;
  }
  return { result, health: await monitor.stop() };
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(1)} ms`;

async function main(): Promise<void> {
  // helloTimeoutMs past sendFrame's watchdog, as in the test: every close is the coordinator's answer to a frame.
  const held = await startHeldServe(TOKEN, { limits: { maxPendingHello: 1_000, helloTimeoutMs: 120_000 } });
  try {
    const { hostname, port } = new URL(held.url);
    const cases = fc.sample(frameCase, { numRuns: WINDOWS * FRAMES_PER_WINDOW, seed: 42 });
    const flooded: HealthReport[] = [];
    const idle: HealthReport[] = [];
    const codes: number[] = [];
    for (let window = 0; window < WINDOWS; window++) {
      const started = performance.now();
      const floodWindow = await whileProbing(hostname, Number(port), () => flood(held.url, cases.slice(window * FRAMES_PER_WINDOW, (window + 1) * FRAMES_PER_WINDOW)));
      const floodMs = performance.now() - started;
      codes.push(...floodWindow.result);
      flooded.push(floodWindow.health);
      idle.push((await whileProbing(hostname, Number(port), () => sleep(floodMs))).health);
    }

    const refusedOthers = codes.filter((code) => !FRAME_REFUSAL_CODES.has(code));
    check(codes.length === cases.length, `${codes.length} of ${cases.length} hostile connections closed`);
    check(refusedOthers.length === 0, `${refusedOthers.length} hostile connections closed without a code refusing their frame (first: ${refusedOthers.slice(0, 5).join(', ')})`);
    for (const [what, reports] of [['flooded', flooded], ['idle', idle]] as const) {
      for (const [i, r] of reports.entries()) {
        check(r.probes > 0 && r.failures === 0, `${what} window ${i + 1}: ${r.failures} of ${r.probes} /healthz probes failed or answered other than 200`);
      }
    }
    check(held.serve.child.exitCode === null && held.serve.child.signalCode === null, `shoal serve exited during the flood; stderr:\n${held.serve.stderr()}`);

    for (let i = 0; i < WINDOWS; i++) {
      const f = flooded[i]!;
      const d = idle[i]!;
      console.log(`hostile-health: window ${i + 1}: flooded p99 ${ms(f.p99LatencyMs)}, slowest ${ms(f.maxLatencyMs)} over ${f.probes} probes; idle p99 ${ms(d.p99LatencyMs)}, slowest ${ms(d.maxLatencyMs)} over ${d.probes} probes`);
    }
    const p99Ratio = median(flooded.map((f, i) => f.p99LatencyMs / idle[i]!.p99LatencyMs));
    const slowestRatio = median(flooded.map((f, i) => f.maxLatencyMs / idle[i]!.maxLatencyMs));
    report('hostile-health: /healthz p99, flooded vs idle', p99Ratio, `median over ${WINDOWS} window(s) of ${FRAMES_PER_WINDOW} hostile frames`);
    report('hostile-health: slowest /healthz answer, flooded vs idle', slowestRatio, `median over ${WINDOWS} window(s)`);
    const floodedP99 = median(flooded.map((f) => f.p99LatencyMs));
    const floodedSlowest = Math.max(...flooded.map((f) => f.maxLatencyMs));
    const verdict = (value: number, bound: number) => (QUICK ? '(quick mode: not a measurement)' : value < bound ? 'ok' : 'MISS');
    console.log(`hostile-health: flooded /healthz p99 ${ms(floodedP99)} on this machine (the tests' old bound < ${OLD_TEST_BOUND.p99Ms} ms) ${verdict(floodedP99, OLD_TEST_BOUND.p99Ms)}`);
    console.log(`hostile-health: slowest flooded /healthz answer ${ms(floodedSlowest)} on this machine (the tests' old bound < ${OLD_TEST_BOUND.slowestMs} ms) ${verdict(floodedSlowest, OLD_TEST_BOUND.slowestMs)}`);
    console.log(`hostile-health: load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}, ${new Date().toISOString()}`);
  } finally {
    await held.stop();
  }
  exitOnFailedChecks();
}

await main();
