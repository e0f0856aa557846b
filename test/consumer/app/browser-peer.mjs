// The Node side of the browser check in test/consumer/consumer.test.ts: a coordinator for one round
// of two clients and one Node client; the other client is a Chromium page. Prints
// {"url": ...} once listening, then the round's outcome when training ends.
import { ShoalClient } from '@shoal/client';
import { builtinInitialModel, startCoordinator } from '@shoal/coordinator';
import { fedAvg } from '@shoal/strategy';

const [token] = process.argv.slice(2);
const coordinator = await startCoordinator({
  model: builtinInitialModel('logreg', [4], 2, 0),
  tokens: [token],
  rounds: 1,
  clientsPerRound: 2,
  minClients: 2,
  roundTimeoutMs: 40_000,
  train: { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
  strategy: fedAvg(),
});
console.log(JSON.stringify({ url: coordinator.url }));

const x = new Float32Array(32 * 4).map((_, i) => (Math.floor(i / 4) % 2 === 0 ? -1 : 1) + Math.random() - 0.5);
const y = new Int32Array(32).map((_, i) => i % 2);
const run = new ShoalClient({ url: coordinator.url, token, data: { x, y, featureShape: [4] } }).run({ signal: AbortSignal.timeout(60_000) });
const summary = await coordinator.finished;
await run;
await coordinator.close();
console.log(JSON.stringify({ rounds: summary.rounds.map(({ round, status, participants }) => ({ round, status, participants })) }));
