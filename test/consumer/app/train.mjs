// A plain Node app, as an app developer writes one after `npm install @shoal/coordinator
// @shoal/client @shoal/strategy`: no TypeScript, no loader, no flags. It starts a coordinator on
// 127.0.0.1 (an OS-chosen port) and trains two clients on a few random points for 2 rounds, then
// prints one JSON line for test/consumer/consumer.test.ts.
import { ShoalClient } from '@shoal/client';
import { builtinInitialModel, startCoordinator } from '@shoal/coordinator';
import { fedAvg } from '@shoal/strategy';

const TOKEN = 'consumer-token';
const FEATURES = 4;

/** `count` points in two classes around ±1 in every feature (a tiny seeded LCG, so runs repeat). */
function points(count, seed) {
  let state = seed >>> 0;
  const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const x = new Float32Array(count * FEATURES);
  const y = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    y[i] = i % 2;
    for (let j = 0; j < FEATURES; j++) x[i * FEATURES + j] = (y[i] === 1 ? 1 : -1) + (random() - 0.5);
  }
  return { x, y, featureShape: [FEATURES] };
}

const coordinator = await startCoordinator(
  {
    model: builtinInitialModel('logreg', [FEATURES], 2, 0),
    tokens: [TOKEN],
    rounds: 2,
    clientsPerRound: 2,
    minClients: 2,
    roundTimeoutMs: 30_000,
    train: { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
    strategy: fedAvg(),
  },
  { host: '127.0.0.1', port: 0 },
);
const clients = [1, 2].map((seed) => new ShoalClient({ url: coordinator.url, token: TOKEN, data: points(32, seed) }));
const runs = clients.map((client) => client.run({ signal: AbortSignal.timeout(60_000) }));
const summary = await coordinator.finished;
await Promise.all(runs);
await coordinator.close();
console.log(
  JSON.stringify({
    url: coordinator.url,
    stoppedBy: summary.stoppedBy,
    rounds: summary.rounds.map(({ round, status, participants }) => ({ round, status, participants })),
    resolved: { client: import.meta.resolve('@shoal/client'), coordinator: import.meta.resolve('@shoal/coordinator') },
  }),
);
