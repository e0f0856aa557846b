// 10,000 hostile frames from token holders against a real `shoal serve` process, one connection
// each (a bad frame closes its connection; the frames: ./fixtures/hostile-frames.ts). Every
// connection must be closed by the coordinator with a code that refuses the frame (never by a
// timeout, which would mean the frame was ignored), /healthz must answer 200 "ok" at probes sent
// in the middle of the flood, the process's RSS must stay within a stated bound, and two honest
// peers must see their rounds commit. Nothing here is timed: /healthz latency under this flood is
// bench/hostile-health.bench.ts's figure.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { startHeldServe, type HeldServe, type ServeProcess } from '@shoal/testkit';
import { HEALTHY, probeHealth } from './fixtures/health-probe.js';
import { FRAME_REFUSAL_CODES, frameCase, sendFrame } from './fixtures/hostile-frames.js';

const TOKEN = 'hostile-frames-token';
const FRAMES = 10_000;
const CONCURRENCY = 10;
/** One /healthz probe goes out with every this many batches, while the batch's frames are in flight. */
const PROBE_EVERY_BATCHES = 10;
/** The coordinator's RSS may grow at most this much over the whole run (the bomb alone once took 336 MiB). */
const RSS_BOUND_BYTES = 96 * 1024 * 1024;

let held: HeldServe;
let serve: ServeProcess;
let url: string;

beforeAll(async () => {
  // The hello deadline lies past sendFrame's watchdog, so the watchdog is the one clock here: a
  // frame the coordinator ignored leaves its connection open until the watchdog ends it (1006).
  held = await startHeldServe(TOKEN, { limits: { maxPendingHello: 1_000, helloTimeoutMs: 120_000 } });
  serve = held.serve;
  url = held.url;
});

afterAll(async () => {
  await held?.stop();
});

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

describe('shoal serve against 10,000 hostile frames', () => {
  it('closes every connection with a code refusing its frame, answers /healthz throughout, stays bounded in memory, and the honest rounds commit', async () => {
    const rssBefore = await rssBytes(serve.child.pid!);
    const cases = fc.sample(frameCase, { numRuns: FRAMES, seed: 42 });
    const closes: { code: number; reason: string }[] = [];
    const probes: { status: number; body: string }[] = [];
    let rssPeak = rssBefore;
    for (let start = 0, batch = 0; start < cases.length; start += CONCURRENCY, batch++) {
      const sent = await Promise.all(cases.slice(start, start + CONCURRENCY).map((testCase) => sendFrame(url, TOKEN, testCase)));
      // Probed after the batch's frames went out and before their closes are awaited.
      if (batch % PROBE_EVERY_BATCHES === 0) probes.push(await probeHealth(url));
      const batchCloses = await Promise.all(sent.map((s) => s.closed));
      const unexplained = batchCloses.filter((close) => !FRAME_REFUSAL_CODES.has(close.code));
      // Stops at the first batch with one: a coordinator that ignores a kind of frame would otherwise cost a watchdog per batch.
      expect(unexplained, `frames ${start}–${start + CONCURRENCY - 1}: closes without a code refusing the frame (1006: the frame was ignored until the watchdog)`).toEqual([]);
      closes.push(...batchCloses);
      if (start % 1_000 === 0) rssPeak = Math.max(rssPeak, await rssBytes(serve.child.pid!));
    }
    rssPeak = Math.max(rssPeak, await rssBytes(serve.child.pid!));

    expect(closes).toHaveLength(FRAMES);
    expect(probes).toEqual(Array(FRAMES / CONCURRENCY / PROBE_EVERY_BATCHES).fill(HEALTHY));
    expect(rssPeak - rssBefore).toBeLessThan(RSS_BOUND_BYTES);
    expect(serve.child.exitCode).toBeNull();

    held.release();
    await serve.line((line) => line['event'] === 'finished');
    const rounds = serve.lines.filter((line) => 'status' in line).map((line) => [line['round'], line['status'], line['participants']]);
    expect(rounds).toEqual([
      [1, 'committed', 2],
      [2, 'committed', 2],
    ]);
  }, 300_000);
});
