// The client side of the example: one ShoalClient with this page's local data. app.js runs it on
// the page's main thread, or starts this file as a module Web Worker (`?worker=1`), where training
// cannot freeze the page. A worker cannot show a dialog, so it asks the page for consent.
import { ShoalClient, initBrowserBackend } from '/shoal-client.js';

/** The client events the page shows (plus 'backend', the tfjs backend chosen before the first round). */
const EVENTS = ['consent', 'connected', 'roundStart', 'roundPlan', 'progress', 'roundStopped', 'roundEnd', 'error', 'disconnected', 'paced'];

/**
 * Joins training as page `client` (its data is `/data/<client>.json`). `askConsent()` resolves with
 * the user's answer; the client opens no connection before it resolves `true`. `onEvent(name,
 * payload)` receives the client's events. Resolves with the client and its `run()` promise.
 * `testHooks` is for test/browser/browser-secagg.test.ts only (see `testHookSteps`); an app omits it.
 */
export async function joinTraining(client, askConsent, onEvent, testHooks = {}) {
  const [config, data] = await Promise.all([fetchJson('/config.json'), fetchJson(`/data/${client}.json`)]);
  const shoal = new ShoalClient({
    url: config.coordinatorUrl,
    token: config.token,
    data: { featureShape: data.featureShape, x: Float32Array.from(data.x), y: Int32Array.from(data.y) },
    consent: askConsent,
    // The .wasm binaries are served under /wasm/ (see server.ts); tfjs fetches them from there.
    prepare: async () => onEvent('backend', await initBrowserBackend({ wasmPaths: '/wasm/' })),
    reconnect: { initialDelayMs: 500, maxDelayMs: 5_000 },
    updateSteps: testHookSteps(testHooks, onEvent),
  });
  for (const name of EVENTS) {
    // Errors are not structured-cloneable everywhere: pass their message.
    shoal.on(name, (payload) => onEvent(name, name === 'error' ? { message: payload.error.message } : payload));
  }
  const running = shoal.run();
  return { shoal, running };
}

/**
 * TEST HOOK (test/browser/browser-secagg.test.ts; the page turns it on with `&record=1` or
 * `&closeAt=masked`, an app never does). `record`: emits 'testUpdate' {round, delta, numExamples}
 * with each update as it enters secure aggregation. `closeAt: 'masked'`: emits 'testStage'
 * 'masking' and then never finishes the step, so the masked input is never sent and the test can
 * close the page mid-round.
 */
function testHookSteps({ record = false, closeAt }, onEvent) {
  const steps = [];
  if (record) {
    steps.push((update, { round }) => {
      onEvent('testUpdate', { round, delta: Array.from(update.delta), numExamples: update.numExamples });
      return update;
    });
  }
  if (closeAt === 'masked') steps.push(() => (onEvent('testStage', 'masking'), new Promise(() => {})));
  return steps;
}

async function fetchJson(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}`);
  return response.json();
}

// Running as a worker: take orders from the page, send it the client's events.
if (typeof WorkerGlobalScope !== 'undefined' && globalThis instanceof WorkerGlobalScope) {
  let consentAnswer;
  const consentGiven = new Promise((resolve) => (consentAnswer = resolve));
  let joined;
  globalThis.onmessage = async ({ data: message }) => {
    if (message.type === 'start') {
      const askConsent = () => {
        globalThis.postMessage({ type: 'consent-request' });
        return consentGiven;
      };
      try {
        const onEvent = (name, payload) => globalThis.postMessage({ type: 'event', name, payload });
        joined = await joinTraining(message.client, askConsent, onEvent, message.testHooks);
        await joined.running;
        globalThis.postMessage({ type: 'finished' });
      } catch (error) {
        globalThis.postMessage({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
      }
    } else if (message.type === 'consent') {
      consentAnswer(message.granted === true);
    } else if (message.type === 'leave') {
      await joined?.shoal.leave();
    }
  };
}
