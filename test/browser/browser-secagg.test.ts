/**
 * Secure aggregation with browser clients in real Chromium (playwright-core, /usr/bin/chromium),
 * through the example page in examples/browser-client and its test hooks (`&record=1`,
 * `&closeAt=masked`, see testHookSteps in worker.js):
 * - pages (one in a Web Worker) and Node clients mask their updates so that the coordinator's new
 *   global model is exactly the plain FedAvg of what each of them computed, within the fixed-point
 *   bound: a page's masks and encoding agree bit for bit with Node's;
 * - a page closed after the inbox arrived, before it sent its masked input, is a masked-stage
 *   dropout and the round still commits without it.
 *
 * Run with `npm run test:browser`.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ShoalClient, type LocalUpdate } from '@shoal/client';
import { builtinInitialModel, startCoordinator, type CoordinatorHandle, type CoordinatorOptions, type TrainingSummary } from '@shoal/coordinator';
import { createSeededRandom, decodeFrame } from '@shoal/protocol';
import { loadDataset, partitionIid, subset, type Dataset } from '@shoal/sim';
import { fedAvg } from '@shoal/strategy';
import { secAggMeanBound } from '@shoal/testkit';
import { startExampleServer, type ExampleServer } from '../../examples/browser-client/server.js';

/** Debian's Chromium; as in browser.test.ts, CI (SHOAL_REQUIRE_BROWSER) fails without it, a developer machine skips. */
const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env['SHOAL_REQUIRE_BROWSER']) {
  throw new Error(`Chromium is required (SHOAL_REQUIRE_BROWSER is set) but ${CHROMIUM} is missing: apt-get install -y chromium`);
}

const TOKEN = 'browser-secagg-token';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];
const MAX_WEIGHT = 1_000;
const CLIP_RANGE = 2;

/** What the page's record hook reports for each update it sends into secure aggregation. */
interface RecordedUpdate {
  readonly round: number;
  readonly delta: number[];
  readonly numExamples: number;
}

let browser: Browser | undefined;
let bundleDir: string | undefined;
let train: Dataset;
let partitions: Dataset[];
/** What the current test started; afterEach stops it. */
let coordinator: CoordinatorHandle | undefined;
let server: ExampleServer | undefined;
const pages: Page[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!haveChromium) return;
  train = loadDataset('digits', { seed: 0 }).train;
  partitions = partitionIid(train.length, 5, createSeededRandom(1)).map((indices) => subset(train, indices));
  // Its own bundle folder, so a concurrent build cannot swap the file under us.
  bundleDir = await mkdtemp(join(tmpdir(), 'shoal-browser-secagg-test-'));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

afterEach(async () => {
  for (const page of pages.splice(0)) await page.close();
  await coordinator?.close();
  await server?.close();
  coordinator = undefined;
  server = undefined;
});

afterAll(async () => {
  await browser?.close();
  if (bundleDir !== undefined) await rm(bundleDir, { recursive: true, force: true });
});

/** Starts a coordinator for digits/logreg with SecAgg+ (no DP) and the example server in front of it. */
async function start(options: Pick<CoordinatorOptions, 'clientsPerRound' | 'minClients' | 'secagg'>) {
  const initial = builtinInitialModel('logreg', train.featureShape, train.numClasses, 0);
  coordinator = await startCoordinator({
    model: initial,
    tokens: [TOKEN],
    rounds: 1,
    minAvailable: options.clientsPerRound,
    roundTimeoutMs: 40_000,
    heartbeatIntervalMs: 60_000,
    train: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
    strategy: fedAvg(),
    ...options,
  });
  const handle = coordinator;
  server = await startExampleServer({ coordinatorUrl: coordinator.url, token: TOKEN, partitions, status: () => ({ rounds: handle.history }), bundleDir: bundleDir! });
  return { initial, coordinator };
}

/** Opens the example page with `query` and clicks "Join training". */
async function openPage(query: string): Promise<Page> {
  const page = await browser!.newPage();
  pages.push(page);
  page.on('pageerror', (error) => pageErrors.push(`${query}: ${error.message}`));
  await page.goto(`${server!.url}?${query}`);
  await page.click('#consent-yes', { timeout: 20_000 });
  return page;
}

/** Node clients on partitions `indices`, each recording its update as it enters secure aggregation. */
function startNodeClients(indices: readonly number[], signal: AbortSignal, updates: Map<string, LocalUpdate>): Promise<void>[] {
  return indices.map((i) => {
    const data = partitions[i]!;
    return new ShoalClient({
      url: coordinator!.url,
      token: TOKEN,
      data: { x: data.x, y: data.y, featureShape: data.featureShape },
      updateSteps: [(update) => (updates.set(`node-${i}`, update), update)],
    }).run({ signal });
  });
}

async function finished(what: string): Promise<TrainingSummary> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 45_000)));
  return Promise.race([coordinator!.finished, timeout]).finally(() => clearTimeout(timer));
}

describe.skipIf(!haveChromium)('browser clients under SecAgg+ in Chromium', () => {
  it('the global model equals the FedAvg of what the pages and the Node clients computed', async () => {
    const { initial } = await start({
      clientsPerRound: 4,
      minClients: 4,
      secagg: { mode: 'secagg+', maxDropout: 0.2, stageTimeoutMs: 20_000, clipRange: CLIP_RANGE, maxWeight: MAX_WEIGHT },
    });
    const mainThread = await openPage('client=0&record=1');
    const inWorker = await openPage('client=1&worker=1&record=1');
    const updates = new Map<string, { delta: ArrayLike<number>; numExamples: number }>();
    const stop = new AbortController();
    const nodeRuns = startNodeClients([2, 3], stop.signal, updates as Map<string, LocalUpdate>);
    let summary: TrainingSummary;
    try {
      summary = await finished('round 1');
    } finally {
      stop.abort();
      await Promise.allSettled(nodeRuns);
    }
    for (const [name, page] of [['main-thread page', mainThread], ['worker page', inWorker]] as const) {
      const recorded = await page.evaluate(() => (globalThis as unknown as { __shoalUpdates?: RecordedUpdate[] }).__shoalUpdates ?? []);
      expect(recorded.map((u) => u.round)).toEqual([1]);
      updates.set(name, recorded[0]!);
    }

    const [round] = summary.rounds;
    expect(round).toMatchObject({ status: 'committed', selected: 4, participants: 4, dropouts: 0 });
    expect(round!.secagg?.mode).toBe('secagg+');
    expect(updates.size).toBe(4);

    // Plain FedAvg of the four (weighted, clamped) updates in float64, as test/integration/secagg-e2e does.
    const d = initial.weights.length;
    const bound = CLIP_RANGE * MAX_WEIGHT;
    const weightedSum = new Float64Array(d);
    let totalWeight = 0;
    for (const update of updates.values()) {
      expect(update.delta).toHaveLength(d);
      const weight = Math.min(update.numExamples, MAX_WEIGHT);
      totalWeight += weight;
      for (let j = 0; j < d; j++) weightedSum[j]! += Math.max(-bound, Math.min(bound, weight * update.delta[j]!));
    }
    // Per coordinate: decoding error, half a float32 ulp and float64 rounding, derived in secAggMeanBound.
    const encoding = { count: round!.participants, scale: round!.secagg!.scale, bound, totalWeight };
    const expected = (j: number) => initial.weights[j]! + weightedSum[j]! / totalWeight;
    const offBound = [...summary.weights].map((got, j) => ({ j, error: Math.abs(got - expected(j)), allowed: secAggMeanBound(encoding, got) })).filter((c) => c.error > c.allowed);
    expect(offBound).toEqual([]);
    // The pages' updates really moved the model (a page that sent zeros would be off by far more).
    const pageShare = Array.from(updates.get('worker page')!.delta).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    expect(pageShare).toBeGreaterThan(100 * Math.max(...summary.weights.map((got) => secAggMeanBound(encoding, got))));
    expect(pageErrors).toEqual([]);
  });

  it('a page closed before sending its masked input is a masked-stage dropout; the round commits without it', async () => {
    await start({
      clientsPerRound: 5,
      minClients: 4,
      // Threshold 4 of a 5-client cohort (the lowest above (5 + 1)/2, with maxDropout 0.2 to allow
      // it): the round survives losing one client (minClients 4 too).
      secagg: { mode: 'secagg+', threshold: 4, maxDropout: 0.2, stageTimeoutMs: 20_000 },
    });
    const stop = new AbortController();
    const nodeRuns = startNodeClients([2, 3, 4], stop.signal, new Map());
    try {
      const closing = await browser!.newPage();
      pages.push(closing);
      closing.on('pageerror', (error) => pageErrors.push(`closing page: ${error.message}`));
      // The inbox (other clients' shares) is what the masked stage starts with: watch for it on the wire.
      let resolveInbox: () => void = () => {};
      const inboxArrived = new Promise<void>((resolve) => (resolveInbox = resolve));
      closing.on('websocket', (socket) =>
        socket.on('framereceived', ({ payload }) => {
          if (typeof payload === 'string') return;
          if ((decodeFrame(new Uint8Array(payload)) as { type?: string }).type === 'inbox') resolveInbox();
        }),
      );
      await closing.goto(`${server!.url}?client=0&closeAt=masked`);
      await closing.click('#consent-yes', { timeout: 20_000 });
      await openPage('client=1&worker=1');

      // The page has trained and holds its update (the hook never lets it through), and the masked stage has begun.
      await closing.waitForFunction(() => (globalThis as unknown as { __shoalStage?: string }).__shoalStage === 'masking', undefined, { timeout: 30_000 });
      await inboxArrived;
      await closing.close();

      const summary = await finished('the round without the closed page');
      const [round] = summary.rounds;
      expect(round).toMatchObject({ status: 'committed', selected: 5, participants: 4, dropouts: 1 });
      expect(round!.secagg).toMatchObject({ mode: 'secagg+', threshold: 4, dropouts: { advertise: 0, share: 0, masked: 1, unmask: 0 } });
      expect(pageErrors).toEqual([]);
    } finally {
      stop.abort();
      await Promise.allSettled(nodeRuns);
    }
  });
});
