/**
 * The browser client in real Chromium (playwright-core, /usr/bin/chromium), through the example
 * page in examples/browser-client: one page trains on its main thread, one in a Web Worker, and two
 * Node clients join the same coordinator; SecAgg+ and distributed DP are on. Also: a page whose
 * user never consents opens no WebSocket.
 *
 * Run with `npm run test:browser` (not part of `npm test`).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ShoalClient } from '@shoal/client';
import { builtinInitialModel, silentLogger, startCoordinator, type CoordinatorHandle, type TrainingSummary } from '@shoal/coordinator';
import { createSeededRandom } from '@shoal/protocol';
import { centralEvaluator, loadDataset, partitionIid, subset } from '@shoal/sim';
import { fedAvg } from '@shoal/strategy';
import { startExampleServer, type ExampleServer } from '../../examples/browser-client/server.js';

/**
 * Debian's Chromium (`apt-get install -y chromium`). `.ci/run` installs it and sets
 * SHOAL_REQUIRE_BROWSER, so CI always runs these tests; a developer machine without it skips them
 * with a warning instead of failing `npm test`.
 */
const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env['SHOAL_REQUIRE_BROWSER']) {
  throw new Error(`Chromium is required (SHOAL_REQUIRE_BROWSER is set) but ${CHROMIUM} is missing: apt-get install -y chromium`);
}
if (!haveChromium) console.warn(`browser tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);

const REPO_ROOT = join(import.meta.dirname, '..', '..');
const TOKEN = 'browser-test-token';
const ROUNDS = 3;
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];

let coordinator: CoordinatorHandle | undefined;
let server: ExampleServer | undefined;
let browser: Browser | undefined;
let bundleDir: string | undefined;
let disposeEvaluator: (() => void) | undefined;
/** Clients the coordinator welcomed (one log line per hello). */
const joined: string[] = [];
const pageErrors: string[] = [];
let initialAccuracy = 0;

beforeAll(async () => {
  if (!haveChromium) return;
  const { train, test } = loadDataset('digits', { seed: 0 });
  const model = builtinInitialModel('logreg', train.featureShape, train.numClasses, 0);
  const evaluator = await centralEvaluator(model.descriptor, test);
  disposeEvaluator = () => evaluator.dispose();
  initialAccuracy = (await evaluator.evaluate(model.weights)).accuracy;
  coordinator = await startCoordinator({
    model,
    tokens: [TOKEN],
    rounds: ROUNDS,
    clientsPerRound: 4,
    minClients: 3,
    roundTimeoutMs: 30_000,
    heartbeatIntervalMs: 60_000,
    train: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
    strategy: fedAvg(),
    // The default maxDropout 0.3 leaves no valid threshold for a cohort of 4.
    secagg: { mode: 'secagg+', maxDropout: 0.2, stageTimeoutMs: 20_000 },
    dp: { mode: 'distributed', noiseMultiplier: 0.02, clipNorm: 5 },
    evaluate: (weights) => evaluator.evaluate(weights),
    logger: { ...silentLogger, info: (fields, message) => void (message === 'client joined' && joined.push(fields.clientId!)) },
  });
  const partitions = partitionIid(train.length, 5, createSeededRandom(1)).map((indices) => subset(train, indices));
  // Its own bundle folder, so a concurrent `npm run build` or bundle test cannot swap the file under us.
  bundleDir = await mkdtemp(join(tmpdir(), 'shoal-browser-test-'));
  const handle = coordinator;
  server = await startExampleServer({ coordinatorUrl: coordinator.url, token: TOKEN, partitions, status: () => ({ rounds: handle.history }), bundleDir });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  await coordinator?.close();
  await server?.close();
  disposeEvaluator?.();
  if (bundleDir !== undefined) await rm(bundleDir, { recursive: true, force: true });
});

/** Opens the example page as client `client`; records uncaught page errors and the WebSockets it opens. */
async function openPage(query: string): Promise<{ page: Page; webSockets: string[] }> {
  const page = await browser!.newPage({ viewport: { width: 900, height: 1000 } });
  const webSockets: string[] = [];
  page.on('websocket', (socket) => webSockets.push(socket.url()));
  page.on('pageerror', (error) => pageErrors.push(`${query}: ${error.message}`));
  await page.goto(`${server!.url}?${query}`);
  return { page, webSockets };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe.skipIf(!haveChromium)('browser client in Chromium', () => {
  it('a main-thread page, a Web Worker page and two Node clients complete 3 SecAgg+ rounds with distributed DP', async () => {
    const mainThread = await openPage('client=0');
    const inWorker = await openPage('client=1&worker=1');
    try {
      for (const { page } of [mainThread, inWorker]) await page.click('#consent-yes', { timeout: 20_000 });

      const { train } = loadDataset('digits', { seed: 0 });
      const partitions = partitionIid(train.length, 5, createSeededRandom(1));
      const stop = new AbortController();
      const nodeRuns = [2, 3].map((i) => {
        const data = subset(train, partitions[i]!);
        return new ShoalClient({ url: coordinator!.url, token: TOKEN, data: { x: data.x, y: data.y, featureShape: data.featureShape } }).run({ signal: stop.signal });
      });
      let summary: TrainingSummary;
      try {
        summary = await withTimeout(coordinator!.finished, 50_000, `${ROUNDS} rounds`);
      } finally {
        stop.abort();
        await Promise.allSettled(nodeRuns);
      }

      expect(summary.rounds).toHaveLength(ROUNDS);
      for (const round of summary.rounds) {
        expect(round).toMatchObject({ status: 'committed', selected: 4, participants: 4, dropouts: 0 });
        expect(round.secagg?.mode).toBe('secagg+');
        expect(round.noiseStd).toBeGreaterThan(0);
        expect(round.epsilon).toBeGreaterThan(0);
      }
      expect(joined).toHaveLength(4); // two pages and two Node clients, each joined once
      expect(summary.rounds.at(-1)!.accuracy!).toBeGreaterThan(initialAccuracy + 0.2);
      // The detection the consent test relies on does see a page's WebSocket.
      expect(mainThread.webSockets.length).toBeGreaterThanOrEqual(1);

      for (const { page } of [mainThread, inWorker]) {
        // The page shows the coordinator's history (polled every second) and the round plan.
        await page.waitForSelector(`#history tr[data-round="${ROUNDS}"]`, { timeout: 10_000 });
        await page.waitForSelector('#status:text-is("training complete")', { timeout: 10_000 });
        // The .wasm binaries were served and found: training ran on WASM, not a fallback.
        expect(await page.textContent('#backend')).toBe('wasm');
        const plan = await page.textContent('#plan');
        expect(plan).toContain('yes (secagg+)');
        expect(plan).toMatch(/Gaussian, std \d/);
        // Every batch of the last round's local training was reported.
        // (<progress> reflects `value` and `max` to its attributes.)
        const [value, max] = [Number(await page.getAttribute('#progress', 'value')), Number(await page.getAttribute('#progress', 'max'))];
        expect(value).toBe(max);
        expect(max).toBeGreaterThan(1);
      }
      await mkdir(join(REPO_ROOT, 'test-artifacts'), { recursive: true });
      await mainThread.page.screenshot({ path: join(REPO_ROOT, 'test-artifacts', 'browser-example.png'), fullPage: true });
      expect(pageErrors).toEqual([]);
    } finally {
      await mainThread.page.close();
      await inWorker.page.close();
    }
  });

  it('a page whose user never consents opens no connection, and its dialog shows the published promise', async () => {
    const before = joined.length;
    const { page, webSockets } = await openPage('client=4');
    try {
      await page.waitForSelector('#consent:not([hidden])', { timeout: 20_000 });
      // Time enough for the bundle, the backend and a connection, had the client not waited for consent.
      await page.waitForTimeout(3_000);
      expect(webSockets).toEqual([]);
      expect(joined.length).toBe(before);
      expect(await page.textContent('#status')).toBe('waiting for your answer');
      expect(await page.textContent('#backend')).toBe('not loaded yet'); // prepare() runs only after consent
      // The dialog shows the promise the coordinator publishes (fetched over HTTP, not a WebSocket).
      await page.waitForFunction("document.querySelector('#promise')?.textContent?.includes('Secure aggregation')", undefined, { timeout: 20_000 });
      const promise = await page.textContent('#promise');
      expect(promise).toContain('Secure aggregationsecagg+');
      expect(promise).toContain('Differential privacydistributed, noise multiplier z = 0.02');
      expect(promise).toContain('Privacy budgetno ε limit');
      expect(pageErrors).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
