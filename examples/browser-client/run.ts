// Runs the browser example on one machine: a coordinator on 127.0.0.1 training a digits model, and
// a web server for the page. Open the printed URLs in two tabs (or more) and click "Join training".
//
//   npm run example:browser        (= node --conditions=shoal-source --import tsx examples/browser-client/run.ts)
//
// SHOAL_TABS (default 2) is how many tabs must join before a round starts.
import { randomBytes } from 'node:crypto';
import { builtinInitialModel, lineLogger, startCoordinator } from '@shoal/coordinator';
import { centralEvaluator, loadDataset, partitionIid, subset } from '@shoal/sim';
import { createSeededRandom } from '@shoal/protocol';
import { fedAvg } from '@shoal/strategy';
import { startExampleServer } from './server.js';

const TABS = Number(process.env.SHOAL_TABS ?? '2');
const ROUNDS = 10;
/** Partitions served; a tab picks one with ?client=<n>. */
const PARTITIONS = 8;

const { train, test } = loadDataset('digits', { seed: 0 });
const model = builtinInitialModel('mlp', train.featureShape, train.numClasses, 1);
// The coordinator scores each new global model on held-out digits no tab has.
const evaluator = await centralEvaluator(model.descriptor, test);
const token = randomBytes(16).toString('hex');

const coordinator = await startCoordinator({
  model,
  tokens: [token],
  rounds: ROUNDS,
  clientsPerRound: TABS,
  minClients: Math.min(2, TABS),
  roundTimeoutMs: 60_000,
  train: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
  strategy: fedAvg(),
  evaluate: (weights) => evaluator.evaluate(weights),
  onRound: (m) => console.log(`round ${m.round}: ${m.status}, ${m.participants}/${m.selected} clients, accuracy ${m.accuracy === undefined ? 'n/a' : `${(100 * m.accuracy).toFixed(1)}%`}`),
  logger: lineLogger((line) => console.error(`[coordinator] ${line}`)),
});

const partitions = partitionIid(train.length, PARTITIONS, createSeededRandom(1)).map((indices) => subset(train, indices));
const server = await startExampleServer({
  coordinatorUrl: coordinator.url,
  token,
  partitions,
  status: () => ({ rounds: coordinator.history }),
});

console.log(`coordinator: ${coordinator.url}; ${ROUNDS} rounds, waiting for ${TABS} tabs`);
for (let i = 0; i < TABS; i++) console.log(`open ${server.url}?client=${i}${i % 2 === 1 ? '&worker=1' : ''}`);

const stop = async () => {
  await coordinator.close();
  await server.close();
  evaluator.dispose();
};
process.once('SIGINT', () => void stop().then(() => process.exit(130)));

const summary = await coordinator.finished;
console.log(`training ${summary.stoppedBy}; the page stays up until you press Ctrl-C`);
