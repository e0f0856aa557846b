// Peer-controlled text reaches the coordinator's log only as a field, never in a message, so a
// client cannot forge log lines: a newline in a close reason or a decline reason stays inside one
// escaped value, in the readable line format as in JSON.
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fedAvg } from '@shoal/strategy';
import { WsPeer } from '@shoal/testkit';
import { formatLogLine, recordingLogger } from '../src/logger.js';
import { builtinInitialModel } from '../src/model-init.js';
import { startCoordinator, type CoordinatorHandle } from '../src/start.js';

const FORGED = 'round 7 committed: accuracy 0.99';

describe('the coordinator log', () => {
  let coordinator: CoordinatorHandle | undefined;
  afterEach(async () => {
    await coordinator?.close();
  });

  it('keeps a close reason and a decline reason that hold a newline in fields, out of the messages', async () => {
    const { logger, records } = recordingLogger();
    coordinator = await startCoordinator({
      model: builtinInitialModel('logreg', [4], 3),
      tokens: ['t'],
      rounds: 5,
      clientsPerRound: 2,
      minClients: 2,
      train: { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
      logger,
    });
    const [decliner, leaver] = await Promise.all([WsPeer.connect(coordinator.url, { token: 't' }), WsPeer.connect(coordinator.url, { token: 't' })]);
    await Promise.all([decliner.hello(), leaver.hello()]);
    const train = await decliner.next('train');
    decliner.send({ type: 'decline', round: train.round, reason: `busy\n${FORGED}` });
    leaver.ws.close(1000, `bye\n${FORGED}`);
    await leaver.closed;
    while (!records.some((record) => record.message === 'client disconnected')) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(records.find((record) => record.message === 'client declined the round')?.fields.reason).toBe(`busy\n${FORGED}`);
    expect(records.find((record) => record.message === 'client disconnected')?.fields.reason).toBe(`bye\n${FORGED}`);
    expect(records.every((record) => !record.message.includes(FORGED))).toBe(true);
    const lines = records.map(({ level, message, fields }) => formatLogLine(level, message, fields));
    expect(lines.some((line) => line.includes('\n'))).toBe(false);
  });

  it('formats any peer text as one quoted value on one line that reads back to the same text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (reason) => {
        const line = formatLogLine('info', 'client disconnected', { clientId: 'c1', reason });
        expect(line).not.toMatch(/[\n\r]/);
        const quoted = line.slice(line.indexOf(' reason=') + ' reason='.length);
        expect(JSON.parse(quoted)).toBe(reason);
      }),
    );
  });
});
