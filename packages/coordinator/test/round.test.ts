import { describe, expect, it } from 'vitest';
import { fedAvg } from '@shoal/strategy';
import { decodeFrame, type UpdateMessage } from '@shoal/protocol';
import { StageCollector } from '../src/round.js';
import { PlainRound } from '../src/plain-round.js';
import type { ClientSession } from '../src/sessions.js';

describe('StageCollector', () => {
  it('settles as soon as every member answered', async () => {
    const stage = new StageCollector(['a', 'b']);
    const done = stage.collect(60_000, 2);
    expect(stage.answer('a')).toBe(true);
    expect(stage.answer('b')).toBe(true);
    await done;
    expect(stage.answered).toBe(2);
    expect(stage.answeredIds()).toEqual(['a', 'b']);
  });

  it('counts a member once: a second answer or a drop after answering changes nothing', () => {
    const stage = new StageCollector(['a']);
    expect(stage.answer('a')).toBe(true);
    expect(stage.answer('a')).toBe(false);
    stage.drop('a');
    expect(stage.answered).toBe(1);
    expect(stage.dropped).toBe(0);
  });

  it('drops the members still pending at the deadline', async () => {
    const stage = new StageCollector(['a', 'b', 'c']);
    stage.answer('a');
    await stage.collect(30, 1);
    expect(stage.answered).toBe(1);
    expect(stage.dropped).toBe(2);
    expect(stage.pending).toBe(0);
  });

  it('gives up early once minAnswers can no longer be reached', async () => {
    const stage = new StageCollector(['a', 'b', 'c']);
    const started = Date.now();
    const done = stage.collect(60_000, 3);
    stage.drop('b');
    await done;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(stage.pending).toBe(2);
  });

  it('returns when the signal aborts', async () => {
    const stage = new StageCollector(['a']);
    const controller = new AbortController();
    const done = stage.collect(60_000, 1, controller.signal);
    controller.abort();
    await done;
    expect(stage.pending).toBe(1);
  });
});

describe('PlainRound', () => {
  function session(id: string, sent: Uint8Array[]): ClientSession {
    return { clientId: id, state: 'ready', numExamples: 1, capabilities: [], assignedRounds: new Set(), lastSeenMs: 0, connection: { send: (f) => sent.push(f), close: () => {}, ping: () => {} } };
  }
  function update(delta: number[], numExamples: number, loss = 1): UpdateMessage {
    return { type: 'update', round: 1, modelVersion: 'r:0', numExamples, delta: new Float32Array(delta), metrics: { loss, accuracy: 0, trainMs: 1 } };
  }
  function round(ids: string[], sent: Uint8Array[] = [], minClients = 1) {
    return new PlainRound({
      round: 1,
      modelVersion: 'r:0',
      cohort: ids.map((id) => session(id, sent)),
      weights: new Float32Array(2),
      numParams: 2,
      config: { epochs: 1, batchSize: 1, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
      deadlineMs: 60_000,
      minClients,
      maxUpdateNorm: 100,
    });
  }

  it('sends train to every member and folds updates weighted by example count', async () => {
    const sent: Uint8Array[] = [];
    const plain = round(['a', 'b'], sent);
    const outcome = plain.collect(new AbortController().signal);
    expect(plain.receive('a', update([1, 0], 1, 1), 10)).toBeUndefined();
    expect(plain.receive('b', update([0, 1], 3, 3), 10)).toBeUndefined();
    const result = await outcome;
    expect(sent.map((f) => (decodeFrame(f) as { type: string }).type)).toEqual(['train', 'train']);
    expect('aggregate' in result && [...result.aggregate.weightedSum]).toEqual([1, 3]);
    expect(result).toMatchObject({ participants: 2, dropouts: 0, trainLoss: 2, bytesUp: 20 });
  });

  it('closes a replayed update, and one computed on another model version', () => {
    const plain = round(['a', 'b']);
    plain.receive('a', update([1, 1], 1), 1);
    expect(plain.receive('a', update([1, 1], 1), 1)).toMatchObject({ close: 'DUPLICATE_MESSAGE' });
    expect(plain.receive('b', { ...update([1, 1], 1), modelVersion: 'r:7' }, 1)).toMatchObject({ close: 'ROUND_MISMATCH' });
  });

  it('aborts with a reason when fewer than minClients answer', async () => {
    const plain = round(['a', 'b', 'c'], [], 2);
    const outcome = plain.collect(new AbortController().signal);
    plain.receive('a', update([1, 1], 1), 1);
    plain.receive('b', { type: 'decline', round: 1, reason: 'battery low' }, 1);
    plain.drop('c');
    const result = await outcome;
    expect('abortReason' in result && result.abortReason).toMatch(/only 1 of 3 .* minClients is 2/);
    expect(result.dropouts).toBe(2);
  });
});
