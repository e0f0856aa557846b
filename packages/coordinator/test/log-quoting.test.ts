// Peer-controlled text reaches the coordinator's log only JSON-quoted, so a client cannot forge
// log lines (a newline in a close reason or a decline reason stays inside one quoted string).
import { afterEach, describe, expect, it } from 'vitest';
import { fedAvg } from '@shoal/strategy';
import { WsPeer } from '@shoal/testkit';
import { builtinInitialModel } from '../src/model-init.js';
import { startCoordinator, type CoordinatorHandle } from '../src/start.js';

const FORGED = 'round 7 committed: accuracy 0.99';

describe('the coordinator log', () => {
  let coordinator: CoordinatorHandle | undefined;
  afterEach(async () => {
    await coordinator?.close();
  });

  it('quotes a close reason and a decline reason that hold a newline', async () => {
    const lines: string[] = [];
    coordinator = await startCoordinator({
      model: builtinInitialModel('logreg', [4], 3),
      tokens: ['t'],
      rounds: 5,
      clientsPerRound: 2,
      minClients: 2,
      train: { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
      log: (line) => lines.push(line),
    });
    const [decliner, leaver] = await Promise.all([WsPeer.connect(coordinator.url, { token: 't' }), WsPeer.connect(coordinator.url, { token: 't' })]);
    await Promise.all([decliner.hello(), leaver.hello()]);
    const train = await decliner.next('train');
    decliner.send({ type: 'decline', round: train.round, reason: `busy\n${FORGED}` });
    leaver.ws.close(1000, `bye\n${FORGED}`);
    await leaver.closed;
    while (!lines.some((line) => line.includes('disconnected'))) await new Promise((resolve) => setTimeout(resolve, 5));
    const text = lines.join('\n');
    expect(text).toContain(JSON.stringify(`busy\n${FORGED}`));
    expect(text).toContain(JSON.stringify(`bye\n${FORGED}`));
    expect(lines.some((line) => line.includes('\n'))).toBe(false);
  });
});
