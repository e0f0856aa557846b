/**
 * The live dashboard in real Chromium (playwright-core, /usr/bin/chromium) during a real 5-round
 * run: a coordinator with central DP on 127.0.0.1 and four Node SDK clients training logreg on
 * iris over WebSockets. The page is opened before any client connects, follows the run through
 * its event stream alone, and must end up showing the 5 committed rounds and the ε that
 * `/metrics` reports (the exact number, in a data attribute, and its rounded text). It loads
 * nothing but itself and its stream; every chart has data marks. A screenshot goes to
 * test-artifacts/dashboard.png for a person to look at.
 *
 * Run with `npx vitest run --config vitest.browser.config.ts test/browser/dashboard.test.ts`.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { ShoalClient, initBackend } from '@shoal/client';
import { builtinInitialModel, startCoordinator, type CoordinatorHandle } from '@shoal/coordinator';
import { createSeededRandom } from '@shoal/protocol';
import { centralEvaluator, loadDataset, partitionIid, subset } from '@shoal/sim';
import { fedAvg } from '@shoal/strategy';
import { parseExposition, sampleValue } from '../integration/fixtures/exposition.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env['SHOAL_REQUIRE_BROWSER']) {
  throw new Error(`Chromium is required (SHOAL_REQUIRE_BROWSER is set) but ${CHROMIUM} is missing: apt-get install -y chromium`);
}
if (!haveChromium) console.warn(`dashboard browser test skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);

const REPO_ROOT = join(import.meta.dirname, '..', '..');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];
const TOKEN = 'dashboard-client';
const ADMIN = 'dashboard-operator';
const ROUNDS = 5;
const NUM_CLIENTS = 4;

const cleanups: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.skipIf(!haveChromium)('the live dashboard in Chromium', () => {
  it(`follows a ${ROUNDS}-round DP run and shows the committed rounds and ε that /metrics reports`, { timeout: 180_000 }, async () => {
    await initBackend();
    const { train, test } = loadDataset('iris', { seed: 0 });
    const model = builtinInitialModel('logreg', train.featureShape, train.numClasses, 0);
    const evaluator = await centralEvaluator(model.descriptor, test);
    cleanups.push(() => evaluator.dispose());
    const checkpoints = await mkdtemp(join(tmpdir(), 'shoal-dashboard-'));
    cleanups.push(() => rm(checkpoints, { recursive: true, force: true }));

    const coordinator: CoordinatorHandle = await startCoordinator({
      model,
      tokens: [TOKEN],
      adminTokens: [ADMIN],
      rounds: ROUNDS,
      clientsPerRound: 3,
      minClients: 2,
      minAvailable: NUM_CLIENTS,
      roundTimeoutMs: 30_000,
      seed: 3,
      train: { epochs: 2, batchSize: 16, learningRate: 0.5, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
      dp: { mode: 'central', noiseMultiplier: 0.8, clipNorm: 1, targetEpsilon: 60 },
      checkpointDir: checkpoints,
      evaluate: (weights) => evaluator.evaluate(weights),
    });
    cleanups.push(() => coordinator.close());

    const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    cleanups.push(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    const pageUrl = `${coordinator.httpUrl}/dashboard?token=${ADMIN}`;
    // Waits (with the page's CSP on, so through locators, not evaluated strings) until the element's whole text is `text`.
    const textIs = (selector: string, text: string, timeout?: number) =>
      page.locator(selector).filter({ hasText: new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }).waitFor(timeout === undefined ? {} : { timeout });
    await page.goto(pageUrl);
    // Before any client: the snapshot arrived, nothing is committed, the coordinator waits.
    await textIs('#stream', 'live');
    await textIs('#phase', 'waiting');
    expect(await page.textContent('#committed')).toBe('0');
    expect(await page.textContent('#connected')).toBe('0');

    const stop = new AbortController();
    cleanups.push(() => stop.abort());
    const runs = partitionIid(train.length, NUM_CLIENTS, createSeededRandom(1)).map((indices) => {
      const data = subset(train, indices);
      return new ShoalClient({ url: coordinator.url, token: TOKEN, data: { x: data.x, y: data.y, featureShape: data.featureShape } }).run({ signal: stop.signal });
    });

    // The page learns of every round from its stream alone.
    await textIs('#committed', String(ROUNDS), 150_000);
    const summary = await coordinator.finished;
    await Promise.all(runs);
    expect(summary.rounds.map((r) => r.status)).toEqual(Array.from({ length: ROUNDS }, () => 'committed'));

    const response = await fetch(`${coordinator.httpUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const metrics = parseExposition(await response.text());
    const committed = sampleValue(metrics, 'shoal_rounds_total', { status: 'committed' });
    const epsilon = sampleValue(metrics, 'shoal_epsilon_spent');
    expect(committed).toBe(ROUNDS);
    expect(epsilon).toBe(summary.rounds.at(-1)!.epsilon);
    expect(epsilon).toBeGreaterThan(0);

    // What the page shows equals what /metrics reports: the count, and ε exactly (and as rounded text).
    expect(Number(await page.textContent('#committed'))).toBe(committed);
    await page.locator(`#epsilon[data-value="${String(epsilon)}"]`).waitFor();
    expect(await page.textContent('#epsilon')).toBe(`${epsilon!.toFixed(3)} / 60`);
    expect(Number(await page.getAttribute('#clip-norm', 'data-value'))).toBe(sampleValue(metrics, 'shoal_clip_norm'));
    expect(await page.textContent('#aborted')).toBe('0');
    expect(await page.locator('#rounds tr').count()).toBe(ROUNDS);

    // Every chart drew its data: a path per series with data, or the cohort's bars.
    const marks = await page.$$eval('svg', (svgs) => svgs.map((svg) => ({ id: svg.id, marks: svg.querySelectorAll('path, rect').length, width: svg.getBoundingClientRect().width })));
    for (const chart of marks) {
      expect(chart.marks, chart.id).toBeGreaterThan(0);
      expect(chart.width, chart.id).toBeGreaterThan(200);
    }
    // Nothing but the page and its event stream was requested.
    expect([...new Set(requests)]).toEqual([pageUrl, `${coordinator.httpUrl}/dashboard/events?token=${ADMIN}`]);

    await mkdir(join(REPO_ROOT, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: join(REPO_ROOT, 'test-artifacts', 'dashboard.png'), fullPage: true });
  });
});
