import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ShoalError, decodeFrame } from '@shoal/protocol';
import { fedAdam, fedYogi, WeightedSum, type Strategy } from '@shoal/strategy';
import { readLatestCheckpoint, writeCheckpoint, type Checkpoint } from '../src/checkpoint.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shoal-ckpt-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A checkpoint whose weights are awkward Float32 bit patterns, so a lossy round-trip would show. */
function checkpointOf(round: number, numParams = 17): Checkpoint {
  const weights = new Float32Array(numParams);
  for (let i = 0; i < numParams; i++) weights[i] = Math.fround(Math.sin(round * 31 + i) * 10 ** ((i % 7) - 3));
  weights[0] = -0;
  weights[1] = 1.401298464324817e-45; // smallest subnormal
  weights[2] = 3.4028234663852886e38; // largest finite
  return {
    formatVersion: 1,
    runId: 'a1b2c3d4e5f6',
    round,
    modelVersion: `a1b2c3d4e5f6:${round}`,
    weights,
    strategyName: 'fedavgm',
    strategyState: { velocity: Float64Array.from({ length: numParams }, (_, i) => Math.PI * (i - round) / 7), steps: round, note: 'fedavgm' },
  };
}

function bitsOf(array: Float32Array | Float64Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

async function ckptFiles(): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith('.ckpt')).sort();
}

async function expectCorrupt(promise: Promise<unknown>, file: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ShoalError);
  expect((error as ShoalError).code).toBe('CHECKPOINT_CORRUPT');
  expect((error as ShoalError).message).toContain(join(dir, file));
}

describe('writeCheckpoint / readLatestCheckpoint', () => {
  it('round-trips weights bit for bit and a strategy state holding a Float64Array', async () => {
    const written = checkpointOf(4);
    const path = await writeCheckpoint(dir, written);
    expect(path).toBe(join(dir, 'round-000004.ckpt'));

    const read = await readLatestCheckpoint(dir);
    expect(read).toBeDefined();
    expect(read!.formatVersion).toBe(1);
    expect(read!.runId).toBe(written.runId);
    expect(read!.round).toBe(4);
    expect(read!.modelVersion).toBe(written.modelVersion);
    expect(read!.weights).toBeInstanceOf(Float32Array);
    expect(bitsOf(read!.weights)).toEqual(bitsOf(written.weights));
    expect(Object.is(read!.weights[0], -0)).toBe(true);

    const velocity = read!.strategyState['velocity'];
    expect(velocity).toBeInstanceOf(Float64Array);
    expect(bitsOf(velocity as Float64Array)).toEqual(bitsOf(written.strategyState['velocity'] as Float64Array));
    expect(read!.strategyState['steps']).toBe(4);
    expect(read!.strategyState['note']).toBe('fedavgm');
  });

  for (const strategy of [fedAdam({ serverLearningRate: 0.1 }), fedYogi({ tau: 1e-2 })] as Strategy[]) {
    it(`a ${strategy.name} state (m and v) read back from a checkpoint continues exactly as an unbroken run`, async () => {
      const aggregateOf = (round: number) => {
        const sum = new WeightedSum(5);
        sum.add(Float32Array.from({ length: 5 }, (_, i) => Math.sin(round * 7 + i) / 3), 2);
        sum.add(Float32Array.from({ length: 5 }, (_, i) => Math.cos(round * 5 - i) / 7), 1);
        return sum.result();
      };
      let weights: Float32Array = Float32Array.of(0.5, -0.25, 1, 0, -2);
      let state = strategy.initialState(5);
      for (const round of [1, 2]) ({ weights, state } = strategy.step(weights, aggregateOf(round), state, round));
      await writeCheckpoint(dir, { ...checkpointOf(2, 5), weights, strategyName: strategy.name, strategyState: state });

      const read = (await readLatestCheckpoint(dir))!;
      for (const key of ['m', 'v']) {
        expect(read.strategyState[key]).toBeInstanceOf(Float64Array);
        expect(bitsOf(read.strategyState[key] as Float64Array)).toEqual(bitsOf(state[key] as Float64Array));
      }
      const unbroken = strategy.step(weights, aggregateOf(3), state, 3);
      const resumed = strategy.step(read.weights, aggregateOf(3), read.strategyState, 3);
      expect(bitsOf(resumed.weights)).toEqual(bitsOf(unbroken.weights));
      expect(bitsOf(resumed.state['v'] as Float64Array)).toEqual(bitsOf(unbroken.state['v'] as Float64Array));
    });
  }

  it('returns weights the caller owns: mutating them does not change a second read', async () => {
    await writeCheckpoint(dir, checkpointOf(1));
    const first = await readLatestCheckpoint(dir);
    first!.weights.fill(7);
    const second = await readLatestCheckpoint(dir);
    expect(bitsOf(second!.weights)).toEqual(bitsOf(checkpointOf(1).weights));
  });

  it('returns the newest of several, by round number rather than write order', async () => {
    for (const round of [2, 9, 5]) await writeCheckpoint(dir, checkpointOf(round));
    const read = await readLatestCheckpoint(dir);
    expect(read!.round).toBe(9);
    expect(bitsOf(read!.weights)).toEqual(bitsOf(checkpointOf(9).weights));
  });

  it('orders rounds numerically past the zero padding (round 1000000 is newer than 999999)', async () => {
    await writeCheckpoint(dir, checkpointOf(999_999, 3));
    await writeCheckpoint(dir, checkpointOf(1_000_000, 3));
    expect((await readLatestCheckpoint(dir))!.round).toBe(1_000_000);
  });

  it('keeps only the newest 3 checkpoints', async () => {
    for (let round = 1; round <= 6; round++) {
      await writeCheckpoint(dir, checkpointOf(round));
      expect((await ckptFiles()).length).toBe(Math.min(round, 3));
    }
    expect(await ckptFiles()).toEqual(['round-000004.ckpt', 'round-000005.ckpt', 'round-000006.ckpt']);
    expect((await readLatestCheckpoint(dir))!.round).toBe(6);
  });

  it('creates a missing checkpoint folder on write', async () => {
    const nested = join(dir, 'a', 'b');
    await writeCheckpoint(nested, checkpointOf(1));
    expect((await readLatestCheckpoint(nested))!.round).toBe(1);
  });

  it('returns undefined for a missing folder and for a folder without checkpoints', async () => {
    expect(await readLatestCheckpoint(join(dir, 'does-not-exist'))).toBeUndefined();
    expect(await readLatestCheckpoint(dir)).toBeUndefined();
    await writeFile(join(dir, 'notes.txt'), 'not a checkpoint');
    await writeFile(join(dir, 'round-12.ckpt'), 'too few digits: not one of ours');
    expect(await readLatestCheckpoint(dir)).toBeUndefined();
  });

  it('throws CHECKPOINT_CORRUPT naming the file when the newest checkpoint is not msgpack', async () => {
    await writeCheckpoint(dir, checkpointOf(1));
    await writeCheckpoint(dir, checkpointOf(2));
    const good = await readFile(join(dir, 'round-000002.ckpt'));
    await writeFile(join(dir, 'round-000002.ckpt'), good.subarray(0, good.byteLength >> 1)); // truncated
    await expectCorrupt(readLatestCheckpoint(dir), 'round-000002.ckpt');
    await writeFile(join(dir, 'round-000002.ckpt'), new Uint8Array(0)); // empty
    await expectCorrupt(readLatestCheckpoint(dir), 'round-000002.ckpt');
  });

  it('throws CHECKPOINT_CORRUPT for valid msgpack that is not a checkpoint (null, a number, wrong fields)', async () => {
    const file = 'round-000003.ckpt';
    const path = join(dir, file);
    await writeFile(path, Uint8Array.of(0xc0)); // msgpack nil
    await expectCorrupt(readLatestCheckpoint(dir), file);
    await writeFile(path, Uint8Array.of(0x2a)); // msgpack 42
    await expectCorrupt(readLatestCheckpoint(dir), file);

    // A well-formed checkpoint of another round, renamed: the file name and the content disagree.
    await writeCheckpoint(dir, checkpointOf(7));
    await writeFile(path, await readFile(join(dir, 'round-000007.ckpt')));
    await rm(join(dir, 'round-000007.ckpt'));
    await expectCorrupt(readLatestCheckpoint(dir), file);

    // Weights of the wrong type, and a null strategy state.
    await writeCheckpoint(dir, { ...checkpointOf(3), weights: [1, 2, 3] as unknown as Float32Array });
    await expectCorrupt(readLatestCheckpoint(dir), file);
    await writeCheckpoint(dir, { ...checkpointOf(3), strategyState: null as unknown as Checkpoint['strategyState'] });
    await expectCorrupt(readLatestCheckpoint(dir), file);
  });

  it('ignores a leftover temp file from a write that crashed before its rename', async () => {
    await writeCheckpoint(dir, checkpointOf(2));
    const finished = await readFile(join(dir, 'round-000002.ckpt'));
    // What a crash between open() and rename() leaves behind: a newer round, half written.
    await writeFile(join(dir, 'round-000003.ckpt.tmp-4242'), finished.subarray(0, 10));
    await writeFile(join(dir, 'round-000004.ckpt.tmp-4243'), new Uint8Array(0));

    const read = await readLatestCheckpoint(dir);
    expect(read!.round).toBe(2);
    expect(bitsOf(read!.weights)).toEqual(bitsOf(checkpointOf(2).weights));

    // Writing the crashed round again still works, becomes the newest, and sweeps the leftovers away.
    await writeCheckpoint(dir, checkpointOf(3));
    expect((await readLatestCheckpoint(dir))!.round).toBe(3);
    expect((await readdir(dir)).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('never leaves a final-named file that fails to decode, nor its temp file, after any write', async () => {
    for (let round = 1; round <= 12; round++) {
      await writeCheckpoint(dir, checkpointOf(round, 64 + round));
      const names = await readdir(dir);
      expect(names.filter((name) => name.includes('.tmp-'))).toEqual([]);
      for (const name of names) {
        const value = decodeFrame(await readFile(join(dir, name))) as Checkpoint;
        expect(`round-${String(value.round).padStart(6, '0')}.ckpt`).toBe(name);
        expect(value.weights.length).toBe(64 + value.round);
      }
      expect((await readLatestCheckpoint(dir))!.round).toBe(round);
    }
  });

  it('overwrites a checkpoint of the same round atomically (a re-run round replaces the old file)', async () => {
    await writeCheckpoint(dir, checkpointOf(3));
    const replaced = { ...checkpointOf(3), modelVersion: 'a1b2c3d4e5f6:2', weights: new Float32Array(17).fill(0.5) };
    await writeCheckpoint(dir, replaced);
    const read = await readLatestCheckpoint(dir);
    expect(read!.modelVersion).toBe('a1b2c3d4e5f6:2');
    expect(bitsOf(read!.weights)).toEqual(bitsOf(replaced.weights));
    expect(await ckptFiles()).toEqual(['round-000003.ckpt']);
  });
});

describe('crash safety with a real writer process', () => {
  const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
  const writerScript = fileURLToPath(new URL('./fixtures/checkpoint-writer.ts', import.meta.url));
  const numParams = 4_096;
  /** The writer would stop after this round; the crash point stops it at round 3's write first. */
  const LAST_ROUND = 5;

  /** The newest checkpoint, checked to be whole: every weight equals its round. */
  async function readWhole(at: string): Promise<number | undefined> {
    const checkpoint = await readLatestCheckpoint(at);
    if (checkpoint === undefined) return undefined;
    expect(checkpoint.weights.length).toBe(numParams);
    expect(checkpoint.weights.every((weight) => weight === checkpoint.round)).toBe(true);
    return checkpoint.round;
  }

  // Each crash point freezes one state a concurrent reader or a restart can find a write in (the
  // temporary file half written, complete but not renamed, renamed but the folder not synced), and
  // the writer SIGKILLs itself exactly there (SHOAL_CRASH_AT, src/atomic-file.ts): no timed kill.
  it.each([
    { step: 'mid-write', survivor: 2, tempBytes: 'half' },
    { step: 'before-rename', survivor: 2, tempBytes: 'all' },
    { step: 'after-rename', survivor: 3, tempBytes: 'none' },
  ] as const)('a writer SIGKILLed $step of round 3 leaves round $survivor whole, and the next write clears its temp file', async ({ step, survivor, tempBytes }) => {
    const at = join(dir, step);
    const child = spawn(process.execPath, ['--conditions=shoal-source', '--import', 'tsx', writerScript, at, String(numParams), String(LAST_ROUND)], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SHOAL_CRASH_AT: `${step}:round-000003.ckpt` },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    expect({ code, signal, stderr }).toEqual({ code: null, signal: 'SIGKILL', stderr: '' });
    expect(stdout).toBe('wrote 1\nwrote 2\n');

    expect(await readWhole(at)).toBe(survivor);
    const fullBytes = (await stat(join(at, 'round-000002.ckpt'))).size;
    const temps = (await readdir(at)).filter((name) => name.startsWith('round-000003.ckpt.tmp-'));
    if (tempBytes === 'none') expect(temps).toEqual([]);
    else {
      expect(temps).toEqual([`round-000003.ckpt.tmp-${child.pid}`]);
      expect((await stat(join(at, temps[0]!))).size).toBe(tempBytes === 'all' ? fullBytes : fullBytes >> 1);
    }

    // The restarted coordinator's next write succeeds and removes the crashed writer's leftovers.
    await writeCheckpoint(at, { formatVersion: 1, runId: 'crashtest', round: 4, modelVersion: 'crashtest:4', weights: new Float32Array(numParams).fill(4), strategyName: 'fedavg', strategyState: {} });
    expect(await readWhole(at)).toBe(4);
    expect((await readdir(at)).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });
});
