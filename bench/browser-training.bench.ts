// Local training throughput in Chromium against Node, both on tfjs's WASM backend: the client's own
// LocalTrainer (the code a page's ShoalClient runs each round) fits one epoch of the digits MLP on
// all 1,437 training examples, batch 16. The page loads the Shoal browser bundle and the .wasm
// binaries from the example server (examples/browser-client/server.ts); Node uses initBackend().
// Both sides are timed alternately in the same run; the ratio is Chromium's examples/s over Node's,
// once with the trainer on the page's main thread and once in a module Web Worker.
// Needs Debian's Chromium at /usr/bin/chromium (skipped with a message otherwise).
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
import { compare, report } from './lib.js';

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
        await train();
        postMessage('done');
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

if (!existsSync(CHROMIUM)) {
  console.log(`browser-training: skipped, ${CHROMIUM} is missing (apt-get install -y chromium)`);
  process.exit(0);
}

const { train } = loadDataset('digits', { seed: 0 });
const initial = builtinInitialModel('mlp', train.featureShape, train.numClasses, 0);
const data = { x: train.x, y: train.y, featureShape: train.featureShape };

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
    if (backends.page !== 'wasm' || backends.worker !== 'wasm') throw new Error(`expected WASM in the page and its worker, got ${backends.page}, ${backends.worker}`);
    return page;
  };
  if (nodeBackend.name !== 'wasm') throw new Error(`expected WASM in Node, got ${nodeBackend.name}`);
  const page = await openTrainingPage(false);
  const unpacedPage = await openTrainingPage(true);

  const trainInNode = () => nodeTrainer.train(initial.weights, CONFIG);
  const examples = CONFIG.epochs * train.length;
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
