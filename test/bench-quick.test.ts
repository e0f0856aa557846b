// Benchmarks that cannot lie (issue #13, item 3): every bench/*.bench.ts runs once in quick mode
// (tiny sizes, all of its correctness checks), each in its own process, and a non-zero exit fails
// the test, so no benchmark rots. Then the check helpers themselves: a failed check sets exit code 1,
// and the SecAgg benches' exact-sum check catches a sum that is off by one word.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SecAggClient, SecAggServer, WordSum, deriveSecAggParams, encodeUpdate, roundConfig } from '@shoal/secagg';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '@shoal/secagg/node';
import { createSeededRandom } from '@shoal/protocol';
import { check, checkSame, firstDifference } from '../bench/lib.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BENCH_DIR = join(ROOT, 'bench');
const CHROMIUM = '/usr/bin/chromium';
/** Benches that drive Chromium: run where it exists, as the browser tests do (required when SHOAL_REQUIRE_BROWSER=1). */
const NEEDS_BROWSER = new Set(['browser-training.bench.ts', 'secagg-client-browser.bench.ts']);
const browserAvailable = existsSync(CHROMIUM) || process.env['SHOAL_REQUIRE_BROWSER'] === '1';
/** A quick bench takes seconds; this bounds a hung one (the child is killed) well inside the suite's budget. */
const BENCH_TIMEOUT_MS = 150_000;

interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
}

/** Runs `args` under Node with the source condition and tsx, as bench/run.ts does, and collects its output. */
function runNode(args: readonly string[], env: NodeJS.ProcessEnv): Promise<Finished> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--conditions=shoal-source', '--import', 'tsx', ...args],
      { cwd: ROOT, env, timeout: BENCH_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 64 * 2 ** 20 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ code, signal: error?.signal ?? null, output: `${stdout}\n${stderr}` });
      },
    );
  });
}

const benches = readdirSync(BENCH_DIR).filter((file) => file.endsWith('.bench.ts')).sort();

describe('every benchmark, once in quick mode (SHOAL_BENCH_QUICK=1)', () => {
  it('finds the benchmarks', () => {
    // A wrong folder or filter would make the pass below vacuous.
    expect(benches).toEqual(expect.arrayContaining(['aggregation.bench.ts', 'secagg-server.bench.ts', 'wire.bench.ts']));
  });

  for (const file of benches) {
    it.skipIf(NEEDS_BROWSER.has(file) && !browserAvailable)(
      `${file} exits 0 with every correctness check passing`,
      async () => {
        const { code, signal, output } = await runNode([join(BENCH_DIR, file)], { ...process.env, SHOAL_BENCH_QUICK: '1' });
        expect(output).not.toContain('CHECK FAILED');
        expect({ code, signal }, output.slice(-4_000)).toEqual({ code: 0, signal: null });
      },
      BENCH_TIMEOUT_MS + 10_000,
    );
  }
});

describe('bench/lib.ts correctness checks', () => {
  /** Runs `fn` and returns the exit code it left, restoring the test process's own. */
  function exitCodeAfter(fn: () => void): number | string | undefined {
    const before = process.exitCode;
    try {
      fn();
      return process.exitCode;
    } finally {
      process.exitCode = before;
    }
  }

  it('a passing check returns true and leaves the exit code alone', () => {
    let returned = false;
    expect(exitCodeAfter(() => (returned = check(true, 'holds')))).toBe(process.exitCode);
    expect(returned).toBe(true);
  });

  it('a failing check returns false and sets exit code 1', () => {
    let returned = true;
    expect(exitCodeAfter(() => (returned = check(false, 'a deliberately false condition')))).toBe(1);
    expect(returned).toBe(false);
  });

  it('a bench process whose check fails exits 1 although it runs to its end', async () => {
    const script = "import { check } from './bench/lib.ts'; check(false, 'deliberately wrong'); console.log('ran to the end');";
    const failed = await runNode(['--input-type=module', '-e', script], process.env);
    expect(failed.code).toBe(1);
    expect(failed.output).toContain('CHECK FAILED: deliberately wrong');
    expect(failed.output).toContain('ran to the end');
    const passed = await runNode(['--input-type=module', '-e', script.replace('check(false', 'check(true')], process.env);
    expect(passed.code).toBe(0);
  });

  it('firstDifference finds the first changed index, or −1 for equal vectors', () => {
    fc.assert(
      fc.property(fc.uint32Array({ minLength: 1, maxLength: 200 }), fc.nat(), fc.integer({ min: 1, max: 2 ** 32 - 1 }), (words, at, delta) => {
        const index = at % words.length;
        const changed = words.slice();
        changed[index] = (changed[index]! + delta) >>> 0;
        expect(firstDifference(words, words.slice())).toBe(-1);
        expect(firstDifference(words, changed)).toBe(index);
        expect(firstDifference(words, words.subarray(0, index))).toBe(index);
      }),
    );
  });
});

describe('the SecAgg benches’ exact-sum check', () => {
  const n = 6;
  const d = 300;
  const params = deriveSecAggParams({ mode: 'secagg+', cohortSize: n, numParams: d, bound: 10, maxWeight: 1000 });
  const context = { sessionId: 'bench-check', round: 1 };
  const indices = Array.from({ length: n }, (_, i) => i + 1);

  /** A real SecAgg+ round (as secagg-server.bench.ts runs it); `tamper` may alter a masked input on its way to the server. */
  async function round(tamper: (index: number, masked: Uint32Array) => Uint32Array) {
    const random = createSeededRandom(7);
    const randomBytes = (count: number) => Uint8Array.from({ length: count }, () => random.nextInt(256));
    const rounding = new Map<number, Uint8Array[]>(indices.map((i) => [i, []]));
    const clients = indices.map(
      (index) =>
        new SecAggClient({
          config: roundConfig(params, index, context.sessionId),
          round: context.round,
          numParams: d,
          randomBytes,
          roundingBytes: (count) => {
            const bytes = randomBytes(count);
            rounding.get(index)!.push(bytes);
            return bytes;
          },
          prg: nodeMaskPrg,
          agreement: nodeKeyAgreement,
          signing: nodeSigning,
        }),
    );
    const server = new SecAggServer({ ...context, params, indices, prg: nodeMaskPrg, agreement: nodeKeyAgreement, signing: nodeSigning, shuffle: (x) => [...x] });
    for (const client of clients) server.receiveAdvertise(client.index, client.advertise());
    const keys = server.closeAdvertise();
    for (const client of clients) server.receiveShares(client.index, client.share(keys.get(client.index)!).ciphertexts);
    const inboxes = server.closeShares();
    const expected = new WordSum(d + 1);
    for (const client of clients) {
      client.receiveInbox(inboxes.get(client.index)!);
      const input = Float32Array.from({ length: d }, (_, i) => Math.sin(client.index + i) * 3);
      const masked = await client.mask(input, 1);
      const replayed = [...rounding.get(client.index)!];
      expected.add(encodeUpdate(input, 1, params, () => replayed.shift()!));
      server.receiveMasked(client.index, tamper(client.index, masked));
    }
    const { survivors } = server.closeMasked();
    for (const client of clients) server.receiveConfirm(client.index, client.confirm(survivors));
    const forwarded = server.closeConfirm();
    for (const client of clients) server.receiveReveal(client.index, client.reveal(forwarded.get(client.index)!));
    return { actual: (await server.finish()).encodedSum, expected: expected.toUint32Array() };
  }

  it('passes on a real round and fails, with exit code 1, when one masked word is off by one', async () => {
    const honest = await round((_, masked) => masked);
    let same = false;
    const before = process.exitCode;
    try {
      same = checkSame(honest.actual, honest.expected, 'the honest round');
      expect(process.exitCode).toBe(before);
    } finally {
      process.exitCode = before;
    }
    expect(same).toBe(true);

    const tampered = await round((index, masked) => {
      if (index !== 3) return masked;
      const changed = masked.slice();
      changed[17] = (changed[17]! + 1) >>> 0;
      return changed;
    });
    try {
      same = checkSame(tampered.actual, tampered.expected, 'the tampered round');
      expect(process.exitCode).toBe(1);
    } finally {
      process.exitCode = before;
    }
    expect(same).toBe(false);
    expect(firstDifference(tampered.actual, tampered.expected)).toBe(17);
  });
});
