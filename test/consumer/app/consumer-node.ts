// A TypeScript app against the published .d.ts (test/consumer/consumer.test.ts type-checks it
// under moduleResolution "node16" and "bundler"; it is never run). Every `@ts-expect-error` proves
// a type is real, not `any`: if the declarations went missing, the unused directive would fail.
import { ShoalClient, type ClientEvents, type NodeClientOptions } from '@shoal/client';
import { builtinInitialModel, startCoordinator, type CoordinatorHandle, type RoundMetrics } from '@shoal/coordinator';
import { PROTOCOL_VERSION, ShoalError } from '@shoal/protocol';
import { fedAvg } from '@shoal/strategy';
import { loadDataset, type Dataset } from '@shoal/sim';
import { datasetsDir } from '@shoal/datasets';

export async function serve(tokens: readonly string[]): Promise<CoordinatorHandle> {
  return startCoordinator(
    {
      model: builtinInitialModel('logreg', [4], 3),
      tokens,
      rounds: 3,
      train: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
      onRound: (metrics: RoundMetrics) => console.log(metrics.round, metrics.status),
    },
    { host: '127.0.0.1', port: 0 },
  );
}

export function join(url: string, data: Dataset): Promise<void> {
  const options: NodeClientOptions = { url, token: 'secret', data: { x: data.x, y: data.y, featureShape: data.featureShape } };
  const client = new ShoalClient(options);
  client.on('roundEnd', (event: ClientEvents['roundEnd']) => console.log(event.round, event.status));
  return client.run({ signal: AbortSignal.timeout(60_000) });
}

export const iris: Dataset = loadDataset('iris', { dataDir: datasetsDir }).train;
export const version: number = PROTOCOL_VERSION;
export const isShoalError = (error: unknown): error is ShoalError => error instanceof ShoalError;

// @ts-expect-error: a token is a string
new ShoalClient({ url: 'ws://127.0.0.1:1', token: 42, data: { x: new Float32Array(4), y: new Int32Array(1), featureShape: [4] } });
// @ts-expect-error: only the packages' exports are public, not their files
await import('@shoal/client/dist/common/client.js');
