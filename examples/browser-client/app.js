// The page: asks for consent, starts the client (on this thread, or in a Web Worker with
// `?worker=1`) and shows its events, plus the coordinator's round history from /status.json.
//   index.html?client=0            data partition 0, client on the main thread
//   index.html?client=1&worker=1   data partition 1, client in a Web Worker
const params = new URLSearchParams(location.search);
const client = Number(params.get('client') ?? '0');
const inWorker = params.get('worker') === '1';
// Test hooks (test/browser/browser-secagg.test.ts): `&record=1`, `&closeAt=masked`; see worker.js.
const testHooks = { record: params.get('record') === '1', closeAt: params.get('closeAt') ?? undefined };
const $ = (id) => document.getElementById(id);

$('client-name').textContent = String(client);
$('where').textContent = inWorker ? 'in a Web Worker' : 'on the page’s main thread';

/** Shows the consent dialog; resolves with the user's answer when a button is clicked. */
let declined = false;
function askConsent() {
  $('consent').hidden = false;
  return new Promise((resolve) => {
    const answer = (granted) => {
      $('consent').hidden = true;
      declined = !granted;
      setStatus(granted ? 'joining…' : 'you declined: nothing was sent and no connection was opened');
      resolve(granted);
    };
    $('consent-yes').addEventListener('click', () => answer(true), { once: true });
    $('consent-no').addEventListener('click', () => answer(false), { once: true });
  });
}

/** Fills a <dl> with [term, value] rows. */
function showRows(id, rows) {
  $(id).replaceChildren(
    ...rows.flatMap(([term, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = value;
      return [dt, dd];
    }),
  );
}

/**
 * Fetches the coordinator's published privacy promise (the SDK's own fetch and check) and shows it
 * in the consent dialog, so the user sees what the coordinator commits to before agreeing.
 */
async function showPromise() {
  const [{ fetchPromise, defaultPromiseFetch }, config] = await Promise.all([import('/shoal-client.js'), fetch('/config.json').then((r) => r.json())]);
  const state = await fetchPromise(config.coordinatorUrl, defaultPromiseFetch, new AbortController().signal);
  if (!('promise' in state)) return showRows('promise', [['Not published', state.problem]]);
  const { secureAggregation: secagg, differentialPrivacy: dp, retention } = state.promise;
  const days = (ms) => `${(ms / 86_400_000).toPrecision(2)} days`;
  showRows('promise', [
    ['Secure aggregation', secagg.mode === 'off' ? 'none: the coordinator sees each update' : `${secagg.mode}${secagg.threshold === undefined ? '' : `, threshold ${secagg.threshold}`}`],
    ['Differential privacy', dp.mode === 'off' ? 'none' : `${dp.mode}, noise multiplier z = ${dp.noiseMultiplier}`],
    ['Privacy budget', dp.mode === 'off' ? 'no formal guarantee' : dp.epsilonBudget === null ? 'no ε limit' : `training stops before ε exceeds ${dp.epsilonBudget} (δ = ${dp.delta})`],
    ['What leaves this device', state.promise.leavesDevice.join('; ')],
    [
      'Retention',
      `the newest ${retention.keepCheckpoints} model checkpoints${retention.maxCheckpointAgeMs === null ? '' : `, none older than ${days(retention.maxCheckpointAgeMs)}`}; your device's id and rounds for ${days(retention.resumeTokenTtlMs)} after it disconnects`,
    ],
  ]);
}

function setStatus(text) {
  $('status').textContent = text;
}

function showPlan(plan) {
  const rows = [
    ['Round', String(plan.round)],
    ['Values', `${plan.updateValues} numbers, about ${(plan.updateBytes / 1024).toFixed(1)} kB`],
    ['Secure aggregation', plan.secureAggregation ? `yes (${plan.secaggMode}): the coordinator sees only the sum over clients` : 'no'],
    ['Clipped to L2 norm', plan.clipNorm === undefined ? 'no clipping' : String(plan.clipNorm)],
    ['Noise added here', plan.noiseStd === undefined ? 'none' : `Gaussian, std ${plan.noiseStd.toPrecision(3)}`],
    ['Training metrics sent', plan.sendsMetrics ? 'yes' : 'no'],
  ];
  showRows('plan', rows);
}

function onEvent(name, payload) {
  switch (name) {
    case 'backend':
      $('backend').textContent = payload.name;
      $('backend').title = payload.reason;
      return;
    case 'connected':
      return setStatus(`connected as ${payload.clientId}; waiting to be selected for a round`);
    case 'roundStart':
      $('progress').value = 0;
      return setStatus(`round ${payload.round}: training locally`);
    case 'roundPlan':
      return showPlan(payload);
    case 'progress': {
      const done = payload.epoch * payload.batchesPerEpoch + payload.batch + 1;
      $('progress').max = payload.batchesPerEpoch;
      $('progress').value = Math.min(done, payload.batchesPerEpoch);
      return;
    }
    case 'roundEnd':
      return setStatus(`round ${payload.round}: ${payload.status === 'sent' ? 'update sent, waiting for the others' : payload.status}`);
    case 'error':
      return console.warn('shoal:', payload.message);
    case 'roundStopped':
      return setStatus(`round ${payload.round}: stopped before the update was sent (${payload.by})`);
    case 'disconnected':
      return setStatus(`disconnected (${payload.code} ${payload.reason})`);
    case 'paced':
      return setStatus(`not needed for round ${payload.round}: reconnecting in ${Math.round(payload.delayMs / 1000)} s`);
    // Test hooks only (see testHookSteps in worker.js): state the test reads with page.evaluate.
    case 'testUpdate':
      return void (window.__shoalUpdates ??= []).push(payload);
    case 'testStage':
      return void (window.__shoalStage = payload);
  }
}

/** Polls the coordinator's round history (run.ts serves it) and shows each round's global accuracy. */
async function pollHistory() {
  try {
    const response = await fetch('/status.json');
    const { rounds } = await response.json();
    $('history').replaceChildren(
      ...rounds.map((round) => {
        const row = document.createElement('tr');
        row.dataset.round = String(round.round);
        const accuracy = round.accuracy === undefined ? 'n/a' : `${(100 * round.accuracy).toFixed(1)}%`;
        for (const text of [round.round, round.status, `${round.participants}/${round.selected}`, accuracy]) {
          const cell = document.createElement('td');
          cell.textContent = String(text);
          row.append(cell);
        }
        return row;
      }),
    );
  } catch {
    // The example server stopped; keep what is shown.
  }
  setTimeout(pollHistory, 1_000);
}

function startInWorker() {
  const worker = new Worker('/worker.js', { type: 'module' });
  worker.onmessage = async ({ data: message }) => {
    if (message.type === 'consent-request') worker.postMessage({ type: 'consent', granted: await askConsent() });
    else if (message.type === 'event') onEvent(message.name, message.payload);
    else if (message.type === 'finished' && !declined) setStatus('training complete');
    else if (message.type === 'failed') setStatus(`stopped: ${message.message}`);
  };
  worker.onerror = (event) => setStatus(`worker failed: ${event.message}`);
  worker.postMessage({ type: 'start', client, testHooks });
}

async function startOnMainThread() {
  const { joinTraining } = await import('/worker.js');
  try {
    const { running } = await joinTraining(client, askConsent, onEvent, testHooks);
    await running;
    if (!declined) setStatus('training complete');
  } catch (error) {
    setStatus(`stopped: ${error instanceof Error ? error.message : String(error)}`);
  }
}

const dataInfo = await fetch(`/data/${client}.json`).then((r) => r.json());
$('example-count').textContent = String(dataInfo.y.length);
void pollHistory();
void showPromise().catch((error) => showRows('promise', [['Not shown', String(error)]]));
if (inWorker) startInWorker();
else void startOnMainThread();
