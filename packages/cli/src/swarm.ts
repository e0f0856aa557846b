// `shoal swarm`: hosts a config's virtual clients (all, or a share) against a remote coordinator
// (`shoal serve`) over real WebSockets, so one simulation spans several machines on the
// production protocol. Each client holds the data `shoal simulate` would give it (same seed).
import { ShoalError, configError } from '@shoal/protocol';
// The config schema only: the clients, which load tfjs, are imported once the config is valid.
import { parseConfig, type ShoalConfig } from '@shoal/sim/config';
import { integerFlag, parseFlags } from './args.js';
import { readConfig } from './config-file.js';

/** The `swarm` command; resolves with the exit code once the coordinator has finished training (or on SIGINT/SIGTERM). */
export async function swarm(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    'swarm',
    args,
    { url: { type: 'string' }, token: { type: 'string' }, clients: { type: 'string' }, share: { type: 'string' }, set: { type: 'string', multiple: true } },
    true,
  );
  const configPath = positionals[0];
  if (configPath === undefined || positionals.length > 1) throw configError('swarm takes exactly one config file: shoal swarm --url ws://HOST:PORT --token T CONFIG.json (shoal swarm --help)');
  if (values.url === undefined || !/^wss?:\/\//.test(values.url)) throw configError(`swarm needs --url ws://HOST:PORT (or wss://), the coordinator's address; got ${JSON.stringify(values.url ?? null)}`);
  const token = values.token ?? process.env['SHOAL_TOKEN'];
  if (token === undefined || token === '') throw configError('swarm needs --token T (or the SHOAL_TOKEN environment variable): a token the coordinator accepts');
  const config = await readConfig(configPath, values.set ?? [], parseConfig);
  const numbers = hostedClients(config, values.clients, values.share);

  const { remoteVirtualClients, VirtualClientHost } = await import('@shoal/sim');
  const { clients, backend } = await remoteVirtualClients(config, numbers, values.url, token);
  const say = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);
  say({ event: 'starting', clients: numbers.length, first: numbers[0], last: numbers.at(-1), backend, url: values.url });

  const host = new VirtualClientHost(clients);
  const onSignal = () => host.stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const rounds = new Set<number>();
  let failure: ShoalError | undefined;
  const failWith = (error: ShoalError) => {
    failure ??= error;
    host.stop();
  };
  try {
    for (const [clientNumber, client] of clients) {
      if (host.stopped) break;
      client.on('connected', ({ clientId }) => say({ event: 'joined', client: clientNumber, clientId }));
      client.on('roundEnd', ({ round, status }) => {
        if (status === 'sent') return;
        if (status === 'committed') rounds.add(round);
        say({ event: 'round', client: clientNumber, round, status });
      });
      // Before its first welcome a client that cannot reach the coordinator would retry forever: fail instead.
      const unreachable = client.on('error', ({ error }) => {
        if (client.clientId !== undefined || !(error instanceof ShoalError) || error.code !== 'CONNECTION_FAILED') return;
        failWith(error);
      });
      const { joined, done } = host.start(clientNumber);
      done.catch((error: unknown) => failWith(error instanceof ShoalError ? error : new ShoalError('CONNECTION_FAILED', `client ${clientNumber} stopped: ${(error as Error).message}`, { cause: error })));
      await joined;
      unreachable();
    }
    await host.finished();
  } finally {
    await host.close(); // ends the clients still running after a failure or a signal
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (failure !== undefined) throw new ShoalError(failure.code, `swarm: ${failure.message}`, { cause: failure });
  say({ event: 'finished', rounds: [...rounds].sort((a, b) => a - b), stopped: host.stopped });
  return 0;
}

/** The client numbers this process hosts: `--clients FROM-TO` (inclusive, from 0), `--share I/N` (the I-th of N equal shares, from 1), or all. */
export function hostedClients(config: ShoalConfig, clients: string | undefined, share: string | undefined): number[] {
  const total = config.simulation.numClients;
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  if (clients !== undefined && share !== undefined) throw configError('give --clients or --share, not both');
  if (clients !== undefined) {
    const match = /^(\d+)-(\d+)$/.exec(clients.trim());
    const from = match ? integerFlag('clients', match[1]!, 0, total - 1) : Number.NaN;
    const to = match ? integerFlag('clients', match[2]!, 0, total - 1) : Number.NaN;
    if (!(from <= to)) throw configError(`--clients must be FROM-TO with 0 <= FROM <= TO < simulation.numClients (${total}), got ${JSON.stringify(clients)}`);
    return range(from, to);
  }
  if (share !== undefined) {
    const match = /^(\d+)\/(\d+)$/.exec(share.trim());
    const parts = match ? integerFlag('share', match[2]!, 1, total) : Number.NaN;
    const index = match ? integerFlag('share', match[1]!, 1, parts) : Number.NaN;
    if (!(index >= 1 && index <= parts)) throw configError(`--share must be I/N with 1 <= I <= N <= simulation.numClients (${total}), got ${JSON.stringify(share)}`);
    // Share I of N: clients ⌊(I−1)·total/N⌋ to ⌊I·total/N⌋ − 1, so the N shares cover every client once.
    return range(Math.floor(((index - 1) * total) / parts), Math.floor((index * total) / parts) - 1);
  }
  return range(0, total - 1);
}
