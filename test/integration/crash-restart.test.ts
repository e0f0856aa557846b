// Crash recovery of a real `shoal serve` process: two scripted WebSocket peers train it, the test
// SIGKILLs it while round 3 is in flight, restarts it on the same checkpoint folder, and checks
// that training resumes at round 3 from exactly the round-2 weights and runs to the end.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { builtinInitialModel, readLatestCheckpoint, writeCheckpoint } from '@shoal/coordinator';
import {
  PROTOCOL_VERSION,
  closeCodeOf,
  decodeCoordinatorMessage,
  encodeFrame,
  numParams as numParamsOf,
  type TrainMessage,
  type UpdateMessage,
} from '@shoal/protocol';
import { startServe as startServeProcess, type ServeProcess } from '@shoal/testkit';

const TOKEN = 'crash-restart-token';
const ROUNDS = 5;
const SEED = 3;
/** logreg on 4 features and 3 classes: a 4×3 kernel and 3 biases. */
const NUM_PARAMS = 15;

// ---- the coordinator as a child process ----

const servers: ServeProcess[] = [];

function startServe(configPath: string): ServeProcess {
  const server = startServeProcess(configPath);
  servers.push(server);
  return server;
}

function isRound(round: number) {
  return (line: Record<string, unknown>) => line['round'] === round && 'status' in line;
}

// ---- scripted peers ----

/** A raw protocol peer: says hello, records every `train`, and answers those `answer` allows. */
class ScriptedPeer {
  readonly trains: TrainMessage[] = [];
  readonly updatesSent: number[] = [];
  readonly closed: Promise<number>;
  private readonly socket: WebSocket;
  private numParams: number | undefined;
  private readonly trainWaiters: { round: number; resolve: (train: TrainMessage) => void }[] = [];
  private readonly sendWaiters: { round: number; resolve: () => void }[] = [];

  constructor(
    url: string,
    readonly index: number,
    readonly numExamples: number,
    private readonly answer: (round: number) => boolean,
  ) {
    this.socket = new WebSocket(url, { headers: { Authorization: `Bearer ${TOKEN}` } });
    this.socket.on('error', () => {}); // a SIGKILLed coordinator resets the connection; 'close' follows
    this.closed = new Promise((resolve) => this.socket.once('close', (code) => resolve(code)));
    this.socket.on('open', () => {
      this.socket.send(encodeFrame({ type: 'hello', protocolVersion: PROTOCOL_VERSION, numExamples, capabilities: [] }));
    });
    this.socket.on('message', (data: Buffer) => this.onFrame(new Uint8Array(data)));
  }

  /** Resolves with the `train` of `round` once it arrives. */
  train(round: number): Promise<TrainMessage> {
    const seen = this.trains.find((t) => t.round === round);
    return seen ? Promise.resolve(seen) : new Promise((resolve) => this.trainWaiters.push({ round, resolve }));
  }

  /** Resolves once the update for `round` has been handed to the OS. */
  sent(round: number): Promise<void> {
    return this.updatesSent.includes(round) ? Promise.resolve() : new Promise((resolve) => this.sendWaiters.push({ round, resolve }));
  }

  terminate(): void {
    this.socket.terminate();
  }

  private onFrame(frame: Uint8Array): void {
    const decoded = decodeCoordinatorMessage(frame, this.numParams === undefined ? {} : { numParams: this.numParams });
    if (!decoded.ok) throw new Error(`peer ${this.index}: invalid frame from the coordinator: ${decoded.reason}`);
    const message = decoded.message;
    if (message.type === 'welcome') this.numParams = numParamsOf(message.model.manifest);
    if (message.type !== 'train') return;
    this.trains.push(message);
    for (const waiter of this.trainWaiters.filter((w) => w.round === message.round)) waiter.resolve(message);
    if (!this.answer(message.round)) return;
    const update: UpdateMessage = {
      type: 'update',
      round: message.round,
      modelVersion: message.modelVersion,
      numExamples: this.numExamples,
      delta: deltaOf(message.round, this.index),
      metrics: { loss: 1 / message.round, accuracy: 0.5, trainMs: 1 },
    };
    this.socket.send(encodeFrame(update), () => {
      this.updatesSent.push(message.round);
      for (const waiter of this.sendWaiters.filter((w) => w.round === message.round)) waiter.resolve();
    });
  }
}

/** The delta peer `index` sends in `round`: distinct per round, peer and coordinate, never zero. */
function deltaOf(round: number, index: number): Float32Array {
  return Float32Array.from({ length: NUM_PARAMS }, (_, i) => ((round + 1) * (index + 2) * ((i % 5) - 2.5)) / 64 + i / 1000);
}

/**
 * The global weights after each round, computed here rather than by the strategy: FedAvg with
 * server learning rate 1 weights each delta by its example count, averages in Float64 and rounds
 * to Float32 once per round. With two clients the sum order does not matter, so this is bitwise.
 */
function expectedWeights(initial: Float32Array, rounds: number, peers: readonly { index: number; numExamples: number }[]): Float32Array[] {
  const history = [initial];
  const total = peers.reduce((sum, p) => sum + p.numExamples, 0);
  for (let round = 1; round <= rounds; round++) {
    const previous = history[round - 1]!;
    const deltas = peers.map((p) => deltaOf(round, p.index));
    history.push(
      Float32Array.from(previous, (w, i) => w + peers.reduce((sum, p, k) => sum + p.numExamples * deltas[k]![i]!, 0) / total),
    );
  }
  return history;
}

function bitsOf(array: Float32Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---- the test ----

let workDir: string;
const peers: ScriptedPeer[] = [];

beforeEach(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'shoal-crash-'));
});

afterEach(async () => {
  for (const peer of peers.splice(0)) peer.terminate();
  for (const server of servers.splice(0)) await server.kill();
  await rm(workDir, { recursive: true, force: true });
});

/** Writes a `shoal serve` config for the 5-round logreg run into the work folder; returns its path. */
async function writeServeConfig(name: string, checkpointDir: string): Promise<string> {
  const path = join(workDir, name);
  await writeFile(
    path,
    JSON.stringify({
      seed: SEED,
      rounds: ROUNDS,
      minClients: 2,
      clientsPerRound: 2,
      roundTimeoutMs: 30_000,
      model: { builtin: 'logreg', inputShape: [4], numClasses: 3 },
      strategy: { name: 'fedavg' },
      server: { tokens: [TOKEN], checkpointDir },
    }),
  );
  return path;
}

describe('shoal serve crash and restart', () => {
  it('resumes at round 3 from the bitwise round-2 weights after SIGKILL, finishes, and a restart after the end runs nothing', async () => {
    const checkpointDir = join(workDir, 'checkpoints');
    const configPath = await writeServeConfig('serve.json', checkpointDir);
    const cohort = [
      { index: 0, numExamples: 10 },
      { index: 1, numExamples: 30 },
    ];
    const initial = builtinInitialModel('logreg', [4], 3, SEED).weights;
    expect(initial.length).toBe(NUM_PARAMS);
    const expected = expectedWeights(initial, ROUNDS, cohort);

    // ---- first life: rounds 1 and 2 commit; in round 3 only peer 0 answers, then SIGKILL ----
    const first = startServe(configPath);
    const firstUrl = await first.url;
    expect(firstUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(Number(new URL(firstUrl).port)).toBeGreaterThan(0); // --port 0 printed the real port
    const [a, b] = [
      new ScriptedPeer(firstUrl, 0, 10, (round) => round <= 3),
      new ScriptedPeer(firstUrl, 1, 30, (round) => round <= 2),
    ];
    peers.push(a, b);
    await withTimeout(Promise.all([first.line(isRound(2)), a.train(3), b.train(3), a.sent(3)]), 20_000, 'round 2 to commit and round 3 to start');
    // The round-3 update of peer 0 is on the wire; peer 1 holds its answer: round 3 is in flight.
    first.child.kill('SIGKILL');
    expect((await first.exit).signal).toBe('SIGKILL');
    await Promise.all([a.closed, b.closed]);

    expect(first.lines.filter((l) => 'status' in l).map((l) => [l['round'], l['status']])).toEqual([
      [1, 'committed'],
      [2, 'committed'],
    ]);
    // Each train carried the global model of the round before, bitwise.
    expect(a.trains.map((t) => t.round)).toEqual([1, 2, 3]);
    for (const train of [...a.trains, ...b.trains]) expect(bitsOf(train.weights!)).toEqual(bitsOf(expected[train.round - 1]!));

    const atCrash = await readLatestCheckpoint(checkpointDir);
    expect(atCrash?.round).toBe(2);
    expect(bitsOf(atCrash!.weights)).toEqual(bitsOf(expected[2]!));
    const runId = atCrash!.runId;
    expect(atCrash!.modelVersion).toBe(`${runId}:2`);

    // ---- second life: same folder; fresh connections, every round answered ----
    const second = startServe(configPath);
    const secondUrl = await second.url;
    const [c, d] = [new ScriptedPeer(secondUrl, 0, 10, () => true), new ScriptedPeer(secondUrl, 1, 30, () => true)];
    peers.push(c, d);
    const [resumed] = await withTimeout(Promise.all([c.train(3), d.train(3)]), 20_000, 'the first train after restart');
    expect(c.trains[0]!.round).toBe(3); // the first train after the restart, not round 1
    expect(d.trains[0]!.round).toBe(3);
    expect(resumed.modelVersion).toBe(`${runId}:2`);
    expect(bitsOf(resumed.weights!)).toEqual(bitsOf(atCrash!.weights));
    expect(bitsOf(resumed.weights!)).toEqual(bitsOf(expected[2]!));

    const { code } = await withTimeout(second.exit, 20_000, 'the restarted coordinator to finish');
    expect(code, second.stderr()).toBe(0);
    expect(second.lines.filter((l) => 'status' in l).map((l) => [l['round'], l['status'], l['participants']])).toEqual([
      [3, 'committed', 2],
      [4, 'committed', 2],
      [5, 'committed', 2],
    ]);
    expect(second.lines.at(-1)).toEqual({ event: 'finished', stoppedBy: 'completed', modelVersion: `${runId}:5` });
    expect(c.trains.map((t) => t.round)).toEqual([3, 4, 5]);
    for (const train of [...c.trains, ...d.trains]) expect(bitsOf(train.weights!)).toEqual(bitsOf(expected[train.round - 1]!));
    expect(await c.closed).toBe(closeCodeOf('TRAINING_COMPLETE'));

    const final = await readLatestCheckpoint(checkpointDir);
    expect(final?.round).toBe(5);
    expect(bitsOf(final!.weights)).toEqual(bitsOf(expected[5]!));
    const filesAfterTraining = (await readdir(checkpointDir)).sort();
    // The newest three checkpoints, beside the run's privacy ledger and model card.
    expect(filesAfterTraining).toEqual(['ledger.jsonl', 'model-card.json', 'model-card.md', 'round-000003.ckpt', 'round-000004.ckpt', 'round-000005.ckpt']);
    const finalBytes = await readFile(join(checkpointDir, 'round-000005.ckpt'));

    // ---- third life, after the last round: no round starts and the process exits on its own ----
    const third = startServe(configPath);
    await third.url;
    const afterEnd = await withTimeout(third.exit, 15_000, 'a coordinator restarted after the final round to exit');
    expect(afterEnd.code, third.stderr()).toBe(0);
    expect(third.lines.filter((l) => 'status' in l)).toEqual([]);
    expect(third.lines.at(-1)).toEqual({ event: 'finished', stoppedBy: 'completed', modelVersion: `${runId}:5` });
    expect((await readdir(checkpointDir)).sort()).toEqual(filesAfterTraining);
    expect(await readFile(join(checkpointDir, 'round-000005.ckpt'))).toEqual(finalBytes);
  });

  it('refuses to start, with exit code 2 and a message naming the file, on a corrupt or mismatched checkpoint', async () => {
    const corruptDir = join(workDir, 'corrupt');
    const mismatchedDir = join(workDir, 'mismatched');
    const checkpoint = { formatVersion: 1, runId: 'feedbeef0000', round: 1, modelVersion: 'feedbeef0000:1', strategyName: 'fedavg', strategyState: {} } as const;
    await writeCheckpoint(corruptDir, { ...checkpoint, weights: new Float32Array(NUM_PARAMS) });
    await writeFile(join(corruptDir, 'round-000002.ckpt'), new Uint8Array(0)); // newest, and empty
    await writeCheckpoint(mismatchedDir, { ...checkpoint, weights: new Float32Array(NUM_PARAMS - 3) }); // a 4→2 logreg's

    const corrupt = startServe(await writeServeConfig('corrupt.json', corruptDir));
    const mismatched = startServe(await writeServeConfig('mismatched.json', mismatchedDir));
    const [corruptExit, mismatchedExit] = await withTimeout(Promise.all([corrupt.exit, mismatched.exit]), 20_000, 'both coordinators to refuse');
    expect(corruptExit.code, corrupt.stderr()).toBe(2);
    expect(corrupt.stderr()).toContain(`shoal: checkpoint ${join(corruptDir, 'round-000002.ckpt')} is not readable`);
    expect(mismatchedExit.code, mismatched.stderr()).toBe(2);
    // A checkpoint of another model is a config mistake (INVALID_CONFIG); a corrupt file is not.
    expect(mismatched.stderr()).toContain(`shoal: config: checkpoint of round 1 in ${mismatchedDir} has 12 weights; the configured model has 15`);
    // Neither started listening, and neither touched the folder it refused.
    expect([...corrupt.lines, ...mismatched.lines]).toEqual([]);
    expect((await readdir(corruptDir)).sort()).toEqual(['round-000001.ckpt', 'round-000002.ckpt']);
  });
});
