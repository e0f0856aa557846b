// Runs the whole example on one machine: a coordinator on 127.0.0.1 and three copies of app.ts, each
// a separate Node process with its own data, training one model together over real WebSockets.
//
//   npm run example:node        (= node --conditions=shoal-source --import tsx examples/node-client/run.ts)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinInitialModel, lineLogger, startCoordinator, type RoundMetrics } from '@shoal/coordinator';
import { fedAvg } from '@shoal/strategy';
import { CLASSES, FEATURES, syntheticDataset } from './data.js';
import { denseEvaluator } from './evaluate.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const APP = join('examples', 'node-client', 'app.ts');
const APPS = 3;
const ROUNDS = 5;
/** The whole example normally takes a few seconds; this only guards against a hang. */
const TIMEOUT_MS = 120_000;

// The operator's side. Its token is made up per run; real deployments hand tokens to their apps.
const token = randomBytes(16).toString('hex');
// A built-in MLP matching the apps' data: 4 features in, 3 classes out.
const model = builtinInitialModel('mlp', [FEATURES], CLASSES, 1);
// Held-out data, uniform over classes, that no app has: the coordinator's measure of the global model.
const heldOut = syntheticDataset({ seed: 1_000, size: 600 });
const evaluate = denseEvaluator(model.descriptor, heldOut);
const initial = await evaluate(model.weights);
const percent = (x: number | undefined) => (x === undefined ? 'n/a' : `${(100 * x).toFixed(1)}%`);

const coordinator = await startCoordinator(
  {
    model,
    tokens: [token],
    rounds: ROUNDS,
    clientsPerRound: APPS,
    minClients: 2,
    roundTimeoutMs: 30_000,
    train: { epochs: 1, batchSize: 16, learningRate: 0.05, optimizer: 'sgd', proximalMu: 0 },
    strategy: fedAvg(),
    seed: 1,
    evaluate,
    onRound: (metrics) => console.log(describeRound(metrics)),
    logger: lineLogger((line) => console.error(`[coordinator] ${line}`)),
  },
  { host: '127.0.0.1', port: 0 },
);
console.log(`coordinator listening on ${coordinator.url}; initial model: accuracy ${percent(initial.accuracy)} on ${heldOut.y.length} held-out examples`);

const apps = Array.from({ length: APPS }, (_, i) => launchApp(i + 1));
let failure: string | undefined;
const fail = (reason: string) => {
  if (failure !== undefined) return;
  failure = reason;
  for (const app of apps) app.child.kill('SIGTERM');
  void coordinator.close();
};
for (const app of apps) void app.exited.then((code) => code !== 0 && fail(`${app.name} exited with status ${code}`));
const timer = setTimeout(() => fail(`timed out after ${TIMEOUT_MS / 1000} s`), TIMEOUT_MS);

const summary = await coordinator.finished;
// After the last round the coordinator tells every app training is complete; they exit by themselves.
await Promise.all(apps.map((app) => app.exited));
clearTimeout(timer);
await coordinator.close();

const committed = summary.rounds.filter((r) => r.status === 'committed');
const last = committed.at(-1);
console.log(
  `${committed.length}/${summary.rounds.length} rounds committed; final global model ${summary.modelVersion}: ` +
    `accuracy ${percent(last?.accuracy)} (from ${percent(initial.accuracy)}), loss ${last?.loss?.toFixed(3) ?? 'n/a'}`,
);
if (failure !== undefined || summary.stoppedBy !== 'completed') {
  console.error(`example failed: ${failure ?? 'training did not complete'}`);
  process.exitCode = 1;
}

/** Starts one app as its own Node process; its output goes straight to ours. */
function launchApp(index: number) {
  const name = `app-${index}`;
  const child = spawn(process.execPath, ['--conditions=shoal-source', '--import', 'tsx', APP], {
    cwd: REPO_ROOT,
    env: { ...process.env, SHOAL_URL: coordinator.url, SHOAL_TOKEN: token, SHOAL_CLIENT_NAME: name, SHOAL_DATA_SEED: String(index), SHOAL_EXAMPLES: String(100 + 50 * index) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (error) => {
      console.error(`[${name}] could not start: ${error.message}`);
      resolve(null);
    });
    child.on('exit', (code) => resolve(code));
  });
  return { name, child, exited };
}

function describeRound(m: RoundMetrics): string {
  const kB = (bytes: number) => `${(bytes / 1_000).toFixed(1)} kB`;
  const outcome = m.status === 'committed' ? `accuracy ${percent(m.accuracy)}, loss ${m.loss?.toFixed(3) ?? 'n/a'}` : `aborted: ${m.reason ?? ''}`;
  return `round ${m.round}: ${m.status}, ${m.participants}/${m.selected} clients, ${outcome}, ${kB(m.bytesUp)} up, ${kB(m.bytesDown)} down, ${Math.round(m.durationMs)} ms`;
}
