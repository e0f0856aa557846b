// Local training throughput in Chromium against Node, both on tfjs's WASM backend: the client's own
// LocalTrainer (the code a page's ShoalClient runs each round) fits one epoch of the digits MLP on
// all 1,437 training examples, batch 16 (quick mode: the first 200). The page loads the Shoal browser bundle and the .wasm
// binaries from the example server (examples/browser-client/server.ts); Node uses initBackend().
// Both sides are timed alternately in the same run; the ratio is Chromium's examples/s over Node's,
// once with the trainer on the page's main thread and once in a module Web Worker.
// Needs Debian's Chromium at /usr/bin/chromium (skipped with a message otherwise; with
// SHOAL_REQUIRE_BROWSER=1, as in CI, a missing Chromium fails the bench).
// Correctness (exit 1 on failure): WASM runs in Node, the page and its worker, and one epoch in each
// of the three returns a finite loss and a finite, non-zero delta of the model's size.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { LocalTrainer, initBackend } from '@shoal/client';
import { builtinInitialModel } from '@shoal/coordinator';
import type { TrainConfig } from '@shoal/protocol';
import { loadDataset } from '@shoal/sim';
import { startExampleServer } from '../examples/browser-client/server.js';
import { check, compare, report, sized } from './lib.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];
const CONFIG: TrainConfig = { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 };

/**
 * Runs in the page (as source text: tsx's helpers and Node's types do not exist there). Loads the
 * bundle and WASM, builds the same LocalTrainer on the main thread and in a module Web Worker, and
 * defines `benchTrain()` / `benchTrainInWorker()`, each one epoch. A Blob URL has no base for
 * '/...' paths, so the worker gets absolute URLs. Resolves with both backends' names.
 * `withoutFramePacing` (main thread only) hides requestAnimationFrame from tfjs, which otherwise
 * waits for the next animation frame after every batch (yieldEvery 'batch'): this line shows how
 * much of the gap is that wait rather than WASM speed.
 */
const SETUP_IN_PAGE = `async ({ descriptor, weights, config, withoutFramePacing }) => {
  // tfjs picks how fit yields between batches when it loads: requestAnimationFrame if it exists.
  if (withoutFramePacing) globalThis.requestAnimationFrame = undefined;
  const origin = location.origin;
  const shoal = await import(origin + '/shoal-client.js');
  const backend = await shoal.initBrowserBackend({ wasmPaths: origin + '/wasm/', prefer: 'wasm' });
  const json = await (await fetch('/data/0.json')).json();
  const data = { featureShape: json.featureShape, x: Float32Array.from(json.x), y: Int32Array.from(json.y) };
  const global = Float32Array.from(weights);
  const trainer = await shoal.LocalTrainer.create(descriptor, data);
  globalThis.benchTrain = () => trainer.train(global, config);
  if (withoutFramePacing) return { page: backend.name, worker: 'wasm' };

  const workerSource = \`
    import * as shoal from '\${origin}/shoal-client.js';
    let train;
    onmessage = async ({ data: message }) => {
      if (message.type === 'init') {
        const backend = await shoal.initBrowserBackend({ wasmPaths: '\${origin}/wasm/', prefer: 'wasm' });
        const trainer = await shoal.LocalTrainer.create(message.descriptor, message.data);
        train = () => trainer.train(message.global, message.config);
        postMessage(backend.name);
      } else {
        const result = await train();
        postMessage({ loss: result.metrics.loss, length: result.delta.length, finite: result.delta.every(Number.isFinite), nonZero: result.delta.some((v) => v !== 0) });
      }
    };\`;
  const worker = new Worker(URL.createObjectURL(new Blob([workerSource], { type: 'text/javascript' })), { type: 'module' });
  const reply = () => new Promise((resolve, reject) => {
    worker.onmessage = ({ data: answer }) => resolve(answer);
    worker.onerror = (event) => reject(new Error('worker: ' + event.message));
  });
  const ready = reply();
  worker.postMessage({ type: 'init', descriptor, data, global, config });
  const workerBackend = await ready;
  globalThis.benchTrainInWorker = () => {
    const done = reply();
    worker.postMessage({ type: 'train' });
    return done;
  };
  return { page: backend.name, worker: workerBackend };
}`;

/** What the correctness check needs of one epoch's result. */
interface EpochOutcome {
  readonly loss: number;
  readonly length: number;
  readonly finite: boolean;
  readonly nonZero: boolean;
}

/** Self-contained (its source text also runs in the page): no imports, no helpers. */
function summarise(result: { metrics: { loss: number }; delta: Float32Array }): EpochOutcome {
  return { loss: result.metrics.loss, length: result.delta.length, finite: result.delta.every(Number.isFinite), nonZero: result.delta.some((v) => v !== 0) };
}

if (!existsSync(CHROMIUM)) {
  const required = process.env['SHOAL_REQUIRE_BROWSER'] === '1';
  console.log(`browser-training: skipped, ${CHROMIUM} is missing (apt-get install -y chromium)`);
  check(!required, `SHOAL_REQUIRE_BROWSER=1 but ${CHROMIUM} is missing`);
  process.exit();
}

const { train } = loadDataset('digits', { seed: 0 });
const initial = builtinInitialModel('mlp', train.featureShape, train.numClasses, 0);
// Quick mode trains on the first 200 examples only: one epoch then takes a fraction of a second.
const examplesUsed = sized(train.length, 200);
const featureSize = train.featureShape.reduce((product, size) => product * size, 1);
const data = { x: train.x.subarray(0, examplesUsed * featureSize), y: train.y.subarray(0, examplesUsed), featureShape: train.featureShape };

// Node side.
const nodeBackend = await initBackend({ prefer: 'wasm' });
const nodeTrainer = await LocalTrainer.create(initial.descriptor, data);

// Browser side: the example server serves the bundle, the .wasm files and the data as /data/0.json.
const bundleDir = await mkdtemp(join(tmpdir(), 'shoal-browser-training-bench-'));
const server = await startExampleServer({
  coordinatorUrl: 'ws://127.0.0.1:9', // never contacted: no page here asks for consent
  token: 'unused',
  partitions: [data],
  status: () => ({ rounds: [] }),
  bundleDir,
});
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  // Any same-origin document will do: the bundle is imported by the evaluated code, not by a page script.
  const openTrainingPage = async (withoutFramePacing: boolean) => {
    const page = await browser.newPage();
    await page.goto(`${server.url}config.json`);
    const args = { descriptor: initial.descriptor, weights: Array.from(initial.weights), config: CONFIG, withoutFramePacing };
    const backends = (await page.evaluate(`(${SETUP_IN_PAGE})(${JSON.stringify(args)})`)) as { page: string; worker: string };
    check(backends.page === 'wasm' && backends.worker === 'wasm', `WASM in the page and its worker (got ${backends.page}, ${backends.worker})`);
    return page;
  };
  check(nodeBackend.name === 'wasm', `WASM in Node (got ${nodeBackend.name})`);
  const page = await openTrainingPage(false);
  const unpacedPage = await openTrainingPage(true);

  const trainInNode = () => nodeTrainer.train(initial.weights, CONFIG);

  // What one epoch returns, in Node, in the page and in its worker (which posts the same summary), before any timing.
  const outcomes: [string, EpochOutcome][] = [
    ['Node', summarise(await trainInNode())],
    ['the page', (await page.evaluate(`globalThis.benchTrain().then(${summarise.toString()})`)) as EpochOutcome],
    ['the Web Worker', (await page.evaluate('globalThis.benchTrainInWorker()')) as EpochOutcome],
  ];
  for (const [where, { loss, length, finite, nonZero }] of outcomes) {
    const expected = initial.weights.length;
    check(Number.isFinite(loss) && length === expected && finite && nonZero, `one epoch in ${where} gives a finite loss (${loss}) and a finite, non-zero delta of ${expected} values (${length})`);
  }
  const examples = CONFIG.epochs * examplesUsed;
  const rate = (ms: number) => (examples * 1000) / ms;
  const cases = [
    { where: 'main thread', page, fn: 'benchTrain' },
    { where: 'Web Worker', page, fn: 'benchTrainInWorker' },
    { where: 'main thread, no requestAnimationFrame', page: unpacedPage, fn: 'benchTrain' },
  ];
  for (const { where, page: inPage, fn } of cases) {
    const trainInBrowser = () => inPage.evaluate(`globalThis.${fn}().then(() => undefined)`);
    const { candidate, baseline } = await compare(trainInBrowser, trainInNode, 3, 800);
    report(
      `browser-training: Chromium WASM (${where}) vs Node WASM, digits MLP (examples/s)`,
      rate(candidate.medianMs) / rate(baseline.medianMs),
      `Chromium ${rate(candidate.medianMs).toFixed(0)} ex/s, Node ${rate(baseline.medianMs).toFixed(0)} ex/s, ${examples} examples per epoch, batch ${CONFIG.batchSize}`,
    );
  }
  await page.close();
  await unpacedPage.close();
} finally {
  await browser.close();
  await server.close();
  nodeTrainer.dispose();
  await rm(bundleDir, { recursive: true, force: true });
}
