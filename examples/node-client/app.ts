// A Node service that takes part in federated training with its own data. Its examples never leave
// this process: the coordinator sends the global model, the app trains on its data and sends back
// only the change to the weights.
//
//   SHOAL_URL=ws://127.0.0.1:8080 SHOAL_TOKEN=secret node --conditions=shoal-source --import tsx examples/node-client/app.ts
//   node --conditions=shoal-source --import tsx examples/node-client/app.ts --url ws://127.0.0.1:8080 --token secret --seed 2
import { parseArgs } from 'node:util';
import { ShoalClient } from '@shoal/client';
import { CLASSES, syntheticDataset } from './data.js';

// Flags win over environment variables.
const { values: flags } = parseArgs({
  options: {
    url: { type: 'string' },
    token: { type: 'string' },
    name: { type: 'string' },
    seed: { type: 'string' },
    examples: { type: 'string' },
  },
});
const url = flags.url ?? process.env['SHOAL_URL'];
const token = flags.token ?? process.env['SHOAL_TOKEN'];
const name = flags.name ?? process.env['SHOAL_CLIENT_NAME'] ?? `app-${process.pid}`;
// Which slice of the world this device sees; different seeds give different local data.
const seed = Number(flags.seed ?? process.env['SHOAL_DATA_SEED'] ?? 1);
const size = Number(flags.examples ?? process.env['SHOAL_EXAMPLES'] ?? 150);
if (url === undefined || token === undefined || !Number.isInteger(seed) || seed < 0 || !Number.isInteger(size) || size < 1) {
  process.stderr.write(
    'usage: app.ts --url ws://HOST:PORT --token TOKEN [--name NAME] [--seed N] [--examples N]\n' +
      '       (or SHOAL_URL, SHOAL_TOKEN, SHOAL_CLIENT_NAME, SHOAL_DATA_SEED, SHOAL_EXAMPLES)\n',
  );
  process.exit(2);
}
const log = (line: string) => process.stdout.write(`[${name}] ${line}\n`);

// This device's own data: mostly one class, as a phone mostly sees its owner's habits.
const data = syntheticDataset({ seed, size, favouriteClass: seed % CLASSES });
log(`holding ${size} local examples (mostly class ${seed % CLASSES}); they stay here`);

// No model is given, so the client builds the one the coordinator describes in its welcome.
const client = new ShoalClient({ url, token, data, reconnect: { maxAttempts: 5 } });
client.on('connected', ({ clientId }) => log(`connected as ${clientId}`));
client.on('roundStart', ({ round }) => log(`round ${round}: training locally`));
client.on('roundEnd', ({ round, status, reason }) => {
  // 'sent' when our update is on its way; 'committed' or 'aborted' when the coordinator has decided.
  if (status !== 'sent') log(`round ${round}: ${status}${reason !== undefined ? ` (${reason})` : ''}`);
});
client.on('error', ({ error }) => process.stderr.write(`[${name}] ${error.message}\n`));

const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
process.once('SIGTERM', () => stop.abort());
try {
  // Resolves when the coordinator says training is complete (or on SIGINT/SIGTERM).
  await client.run({ signal: stop.signal });
  log(stop.signal.aborted ? 'stopped' : 'training complete');
} catch (error) {
  process.stderr.write(`[${name}] giving up: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
