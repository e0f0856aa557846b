/**
 * Differential privacy end to end, with the real coordinator and real clients on MNIST (small
 * runs: 10–12 clients of 32 examples). What is proven:
 * - the ε in every round's metrics is exactly what the RDP accountant gives for the rounds that
 *   committed, in central and in distributed (SecAgg+) mode, and it carries over a restart;
 * - the noise the model receives has the size the docs promise (z·C/m per coordinate centrally,
 *   z·C·√(n/t)/m when n clients each add their share for t survivors);
 * - with z = 0 and nothing clipped, DP-FedAvg is bit for bit plain FedAvg (same seed);
 * - adaptive clipping moves C by at most the factor its learning rate allows, in the right direction;
 * - `dp.targetEpsilon` stops training before the round that would exceed it (`shoal simulate`
 *   reports it);
 * - the coordinator enforces the clip norm on a raw client that ignores it.
 * Local training is seeded, so two runs with the same seed differ only by the DP noise.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RdpAccountant, l2Norm, splitNoiseMultiplier } from '@shoal/dp';
import { builtinInitialModel, readLatestCheckpoint, startCoordinator, type CoordinatorHandle, type InitialModel, type RoundMetrics } from '@shoal/coordinator';
import { parseConfig, runSimulation, type SimulationSummary } from '@shoal/sim';
import { fedAvg } from '@shoal/strategy';
import { startScriptedPeer, type ScriptedPeer } from '@shoal/testkit';

const REPO_ROOT = join(import.meta.dirname, '..', '..');
const DELTA = 1e-5;

const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-dp-'));
  tempDirs.push(dir);
  return dir;
}

/**
 * A small MNIST federation: 10 clients of 32 examples (equal, and a power of two: see the z = 0
 * test), the `mlp` model (101,770 parameters), one local epoch of two batches.
 */
function mnistConfig(overrides: Record<string, unknown>): Record<string, unknown> {
  return {
    name: 'dp-test',
    seed: 1,
    rounds: 3,
    model: 'mlp',
    clientsPerRound: 4,
    minClients: 2,
    train: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd' },
    simulation: { dataset: 'mnist', numClients: 10, examplesPerClient: 32, testExamples: 500 },
    ...overrides,
  };
}

interface Run {
  readonly summary: SimulationSummary;
  readonly outDir: string;
  /** metrics.jsonl, parsed. */
  readonly lines: RoundMetrics[];
}

async function simulate(raw: Record<string, unknown>, options: { onRound?: (metrics: RoundMetrics) => void; signal?: AbortSignal } = {}): Promise<Run> {
  const outDir = await tempDir();
  const summary = await runSimulation(parseConfig(raw), { outDir, ...options });
  const lines = (await readFile(join(outDir, 'metrics.jsonl'), 'utf8')).trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as RoundMetrics);
  return { summary, outDir, lines };
}

/** ε after 1, 2, …, `steps` compositions of the subsampled Gaussian (q, z), from @shoal/dp's accountant. */
function accountantEpsilons(q: number, z: number, steps: number): number[] {
  const accountant = new RdpAccountant();
  return Array.from({ length: steps }, () => {
    accountant.compose(q, z);
    return accountant.epsilon(DELTA).epsilon;
  });
}

function expectRelativelyClose(actual: number | undefined, expected: number, relative = 1e-9): void {
  expect(actual).toBeDefined();
  expect(Math.abs(actual! - expected)).toBeLessThanOrEqual(relative * Math.abs(expected));
}

/**
 * Every round reports the ε of the rounds committed so far (an aborted round releases nothing, so
 * it costs nothing), equal to the accountant's; returns the committed rounds.
 */
function expectAccounted(rounds: readonly RoundMetrics[], q: number, z: number): RoundMetrics[] {
  const expected = accountantEpsilons(q, z, rounds.length);
  let committed = 0;
  for (const round of rounds) {
    if (round.status === 'committed') committed++;
    expect(round.delta).toBe(DELTA);
    if (committed === 0) expect(round.epsilon).toBe(0);
    else expectRelativelyClose(round.epsilon, expected[committed - 1]!);
  }
  return rounds.filter((r) => r.status === 'committed');
}

/** Mean and standard deviation of a − b over all coordinates. */
function differenceStats(a: Float32Array, b: Float32Array): { mean: number; std: number } {
  let sum = 0;
  let sumOfSquares = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    sum += d;
    sumOfSquares += d * d;
  }
  const mean = sum / a.length;
  return { mean, std: Math.sqrt(sumOfSquares / a.length - mean * mean) };
}

describe('central DP on MNIST', () => {
  it('reports, every round, the ε the RDP accountant gives for q = clientsPerRound / numClients', async () => {
    const z = 1.1;
    const { summary, lines } = await simulate(
      mnistConfig({ sampling: 'poisson', clientsPerRound: 5, dp: { mode: 'central', noiseMultiplier: z, clipNorm: 1, delta: DELTA } }),
    );
    // All 10 clients are idle when each round starts, so q = 5/10.
    const committed = expectAccounted(summary.rounds, 5 / 10, z);
    expect(committed.length).toBeGreaterThanOrEqual(2);
    for (const round of committed) {
      expect(round).toMatchObject({ clipNorm: 1, noiseStd: z * 1, delta: DELTA });
      expect(round.epsilon).toBeGreaterThan(0);
    }
    expect(new Set(committed.map((r) => r.epsilon)).size).toBe(committed.length); // ε grows every committed round
    expect(lines.map((l) => l.epsilon)).toEqual(summary.rounds.map((r) => r.epsilon));
    expect(summary.stoppedBy).toBe('completed');
  });

  it('with z = 0 and nothing clipped, trains exactly the model plain FedAvg trains', async () => {
    // Fixed cohorts of 4 equal clients: FedAvg weighs each by its 32 examples, DP by 1 over the
    // expected 4. 32 and 4 are powers of two, so both means are the same doubles, bit for bit.
    const plain = await simulate(mnistConfig({}));
    const dp = await simulate(mnistConfig({ dp: { mode: 'central', noiseMultiplier: 0, clipNorm: 1e6, delta: DELTA } }));
    expect(dp.summary.rounds.map((r) => r.status)).toEqual(['committed', 'committed', 'committed']);
    expect(dp.summary.rounds.every((r) => r.noiseStd === 0 && r.epsilon === Infinity)).toBe(true);
    expect(dp.summary.finalWeights).toEqual(plain.summary.finalWeights);
    expect(dp.summary.finalAccuracy).toBe(plain.summary.finalAccuracy);
    expect(dp.summary.finalLoss).toBe(plain.summary.finalLoss);
    // And the model did train: it is not the initial one.
    expect(plain.summary.finalAccuracy).toBeGreaterThan(0.3);
  });

  it('adds noise of std z·C/m per coordinate to the mean update', async () => {
    // One round, same seed and cohort: the two models differ only by the noise on the mean. C = 100
    // is far above any update's norm, so nothing is clipped and DP's uniform weights equal FedAvg's.
    const z = 0.01;
    const clipNorm = 100;
    const m = 4;
    const plain = await simulate(mnistConfig({ rounds: 1 }));
    const noised = await simulate(mnistConfig({ rounds: 1, dp: { mode: 'central', noiseMultiplier: z, clipNorm, delta: DELTA } }));
    const { mean, std } = differenceStats(noised.summary.finalWeights, plain.summary.finalWeights);
    const expected = (z * clipNorm) / m; // 0.25
    // 101,770 coordinates: the sample std is within ~0.3% of the true one, the mean within ~0.003.
    expect(Math.abs(std - expected) / expected).toBeLessThan(0.02);
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(noised.summary.rounds[0]).toMatchObject({ status: 'committed', noiseStd: z * clipNorm });
  });

  it('stops before the round that would take ε past dp.targetEpsilon, and `shoal simulate` says so', async () => {
    const z = 1.1;
    const [, epsilon2, epsilon3] = accountantEpsilons(4 / 10, z, 3);
    const targetEpsilon = (epsilon2! + epsilon3!) / 2;
    const outDir = await tempDir();
    const configPath = join(outDir, 'budget.json');
    await writeFile(configPath, JSON.stringify(mnistConfig({ name: 'budget', rounds: 5, dp: { mode: 'central', noiseMultiplier: z, clipNorm: 1, delta: DELTA, targetEpsilon } })));
    const cli = await runCli(['simulate', configPath, '--quiet', '--out', outDir]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain('2/2 rounds committed');
    expect(cli.stdout).toMatch(/stopped early, privacy budget spent: another round would spend ε = [\d.]+ > targetEpsilon/);
    expect(cli.stdout).toContain(`privacy spent: ε = ${epsilon2!.toPrecision(6)} at δ = ${DELTA}`);
    const lines = (await readFile(join(outDir, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(2);
    expectRelativelyClose((JSON.parse(lines[1]!) as RoundMetrics).epsilon, epsilon2!);
    const written = JSON.parse(await readFile(join(outDir, 'summary.json'), 'utf8')) as Record<string, unknown>;
    expect(written).toMatchObject({ rounds: 2, stoppedBy: 'budget' });
    expect(written['stopReason']).toContain(`targetEpsilon ${targetEpsilon}`);
  });

  it('keeps charging the same accountant after a restart from the checkpoint', async () => {
    const z = 1.1;
    const checkpointDir = await tempDir();
    const config = mnistConfig({
      server: { checkpointDir },
      // Adaptive clipping too, so the restored clip norm shows. C starts far below every update's
      // norm, and σ_b = 0.6 (> z/2) is small against the cohort of 4, so C grows in both rounds
      // (with a large σ_b the two noisy steps could cancel exactly).
      dp: { mode: 'central', noiseMultiplier: z, clipNorm: 0.01, delta: DELTA, adaptiveClip: { countNoiseStd: 0.6 } },
    });
    // First process: stopped (as close() stops it) right after round 2 committed.
    const stop = new AbortController();
    const first = await simulate(config, { signal: stop.signal, onRound: (m) => m.round === 2 && stop.abort() });
    expect(first.summary.stoppedBy).toBe('stopped');
    expect(first.summary.rounds.map((r) => r.status)).toEqual(['committed', 'committed']);
    const saved = await readLatestCheckpoint(checkpointDir);
    expect(saved?.round).toBe(2);

    // Second process on the same folder: round 3 only, charged on top of rounds 1 and 2.
    const second = await simulate(config);
    expect(second.summary.rounds.map((r) => r.round)).toEqual([3]);
    const round3 = second.summary.rounds[0]!;
    expect(round3.status).toBe('committed');
    const expected = accountantEpsilons(4 / 10, z, 3);
    expectRelativelyClose(first.summary.rounds[1]!.epsilon, expected[1]!);
    expectRelativelyClose(round3.epsilon, expected[2]!);
    expect(round3.epsilon!).toBeGreaterThan(first.summary.rounds[1]!.epsilon!);
    // The clip norm round 3 used is the one adaptive clipping left in the checkpoint, not the configured 0.01.
    expect(round3.clipNorm).toBe(saved!.privacy!.clipNorm);
    expect(round3.clipNorm!).toBeGreaterThan(first.summary.rounds[1]!.clipNorm!);
    expect(first.summary.rounds[1]!.clipNorm!).toBeGreaterThan(0.01);
  });
});

describe('distributed DP under SecAgg+ on MNIST', () => {
  it('reports the accountant ε, and adaptive clipping moves C every round by at most e^{η/2}', async () => {
    const z = 0.3;
    const countNoiseStd = 0.3; // σ_b > z/2, so the noise multiplier can be split
    const { summary } = await simulate(
      mnistConfig({
        sampling: 'poisson',
        clientsPerRound: 6,
        minClients: 3,
        secagg: { mode: 'secagg+', maxDropout: 0.2 }, // the default 0.3 leaves no valid threshold for cohorts this small
        // C starts far below every update's norm: all clients report "clipped", so C must grow.
        dp: { mode: 'distributed', noiseMultiplier: z, clipNorm: 0.01, delta: DELTA, adaptiveClip: { countNoiseStd } },
        simulation: { dataset: 'mnist', numClients: 12, examplesPerClient: 32, testExamples: 500 },
      }),
    );
    const committed = expectAccounted(summary.rounds, 6 / 12, z);
    expect(committed.length).toBeGreaterThanOrEqual(2);
    const updateMultiplier = splitNoiseMultiplier(z, countNoiseStd);
    for (const round of committed) {
      expect(round.secagg?.mode).toBe('secagg+');
      expect(round.participants).toBe(round.selected);
      expectRelativelyClose(round.noiseStd, updateMultiplier * round.clipNorm!);
      // An untrusted coordinator gets no per-client training metrics, so the round has no trainLoss.
      expect(round.trainLoss).toBeUndefined();
    }
    // Geometric update with η = 0.2 and γ = 0.5: C·exp(−η(b̄ − γ)) with b̄ ≈ 0 here.
    const norms = committed.map((r) => r.clipNorm!);
    expect(norms[0]).toBe(0.01);
    for (let i = 1; i < norms.length; i++) {
      expect(norms[i]!).toBeGreaterThan(norms[i - 1]!);
      expect(norms[i]! / norms[i - 1]!).toBeLessThanOrEqual(Math.exp(0.2 * 0.5) * (1 + 1e-12));
    }
  });

  it('each client adds z·C/√t, so the mean of n noised updates carries z·C·√(n/t)/m', async () => {
    // Fixed cohorts of m = n = 4; noise sized for t = minClients = 2 survivors (the SecAgg threshold
    // is 3 here, so more survive): noise std on the mean z·C·√(4/2)/4. The baseline is SecAgg+
    // without DP on the same seed; C = 100 clips nothing.
    const z = 0.01;
    const clipNorm = 100;
    const base = { rounds: 1, minClients: 2, secagg: { mode: 'secagg+', maxDropout: 0.2 } };
    const plain = await simulate(mnistConfig(base));
    const noised = await simulate(mnistConfig({ ...base, dp: { mode: 'distributed', noiseMultiplier: z, clipNorm, delta: DELTA } }));
    expect(noised.summary.rounds[0]).toMatchObject({ status: 'committed', participants: 4 });
    const { mean, std } = differenceStats(noised.summary.finalWeights, plain.summary.finalWeights);
    const expected = (z * clipNorm * Math.sqrt(4 / 2)) / 4;
    expect(Math.abs(std - expected) / expected).toBeLessThan(0.02);
    expect(Math.abs(mean)).toBeLessThan(0.01);
  });
});

describe('the coordinator enforces the clip norm', () => {
  const TOKEN = 'dp-clip-token';
  /** logreg on 2 features, 2 classes: 6 parameters with round-number initial values. */
  const MODEL: InitialModel = { descriptor: builtinInitialModel('logreg', [2], 2).descriptor, weights: Float32Array.from([0.5, -1, 2, 0.25, 0, 1]) };
  let coordinator: CoordinatorHandle | undefined;
  const peers: ScriptedPeer[] = [];

  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.peer.terminate();
    await coordinator?.close();
    coordinator = undefined;
  });

  it('moves the global model by at most C / expectedClients when one raw client sends a huge update', async () => {
    const clipNorm = 1;
    const expectedClients = 2;
    coordinator = await startCoordinator({
      model: MODEL,
      tokens: [TOKEN],
      rounds: 1,
      clientsPerRound: expectedClients,
      minClients: 2,
      train: { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
      dp: { mode: 'central', noiseMultiplier: 0, clipNorm },
    });
    const huge = Float32Array.from([3e6, -4e6, 1e6, 2e6, -1e6, 5e6]);
    const honest = new Float32Array(6); // a zero update: the displacement is the rogue's alone
    for (const delta of [huge, honest]) {
      peers.push(await startScriptedPeer(coordinator.url, { token: TOKEN, numExamples: 10, delta: () => delta }));
    }
    const summary = await coordinator.finished;
    expect(summary.rounds[0]).toMatchObject({ status: 'committed', participants: 2, clipNorm, noiseStd: 0 });
    for (const peer of peers) expect(peer.trains[0]?.config.clipNorm).toBe(clipNorm); // it was told, and ignored it

    const displacement = Float32Array.from(summary.weights, (w, i) => w - MODEL.weights[i]!);
    // ≤ C/m up to the float32 rounding of the weights (about 1e-7 per coordinate).
    expect(l2Norm(displacement)).toBeLessThanOrEqual(clipNorm / expectedClients + 1e-6);
    expect(l2Norm(displacement)).toBeGreaterThan(clipNorm / expectedClients - 1e-6);
    // It points where the rogue pushed: clipping scales, it does not turn.
    const cosine = displacement.reduce((t, d, i) => t + d * huge[i]!, 0) / (l2Norm(displacement) * l2Norm(huge));
    expect(cosine).toBeGreaterThan(1 - 1e-6);
  });
});

/** Runs `shoal` as users do, from the repo root. */
function runCli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'packages/cli/bin/shoal.js'), ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
