import { describe, expect, it } from 'vitest';
import { fedAvg } from '@shoal/strategy';
import type { UpdateMessage } from '@shoal/protocol';
import { RoundCollector } from '../src/round.js';

function update(delta: number[], numExamples: number): UpdateMessage {
  return { type: 'update', round: 1, modelVersion: 'r:0', numExamples, delta: new Float32Array(delta), metrics: { loss: 1, accuracy: 0, trainMs: 1 } };
}

function collector(cohort: string[]) {
  return new RoundCollector({ round: 1, modelVersion: 'r:0', cohort, numParams: 2, strategy: fedAvg() });
}

describe('RoundCollector', () => {
  it('settles as soon as every member reported, and folds weights by example count', async () => {
    const round = collector(['a', 'b']);
    const done = round.collect(60_000, 2);
    round.accept('a', update([1, 0], 1));
    round.accept('b', update([0, 1], 3));
    await done;
    const aggregate = round.sum.result();
    expect(aggregate.totalWeight).toBe(4);
    expect([...aggregate.weightedSum]).toEqual([1, 3]);
    expect(round.received).toBe(2);
  });

  it('counts a member once: a second update or a drop after reporting changes nothing', () => {
    const round = collector(['a']);
    round.accept('a', update([1, 1], 1));
    round.accept('a', update([5, 5], 1));
    round.drop('a');
    expect(round.received).toBe(1);
    expect(round.dropped).toBe(0);
    expect([...round.sum.result().weightedSum]).toEqual([1, 1]);
  });

  it('drops the members still pending at the deadline', async () => {
    const round = collector(['a', 'b', 'c']);
    round.accept('a', update([1, 1], 1));
    await round.collect(30, 1);
    expect(round.received).toBe(1);
    expect(round.dropped).toBe(2);
    expect(round.pending).toBe(0);
  });

  it('gives up early once minClients can no longer be reached', async () => {
    const round = collector(['a', 'b', 'c']);
    const started = Date.now();
    const done = round.collect(60_000, 3);
    round.drop('b');
    await done;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(round.pending).toBe(2);
  });

  it('returns when the signal aborts', async () => {
    const round = collector(['a']);
    const controller = new AbortController();
    const done = round.collect(60_000, 1, controller.signal);
    controller.abort();
    await done;
    expect(round.pending).toBe(1);
  });

  it('averages the reported training losses', () => {
    const round = collector(['a', 'b']);
    expect(round.meanTrainLoss()).toBeUndefined();
    round.accept('a', { ...update([0, 0], 1), metrics: { loss: 1, accuracy: 0, trainMs: 1 } });
    round.accept('b', { ...update([0, 0], 1), metrics: { loss: 3, accuracy: 0, trainMs: 1 } });
    expect(round.meanTrainLoss()).toBe(2);
  });
});
