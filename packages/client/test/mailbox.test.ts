import { describe, expect, it } from 'vitest';
import type { CoordinatorMessage, TrainMessage } from '@shoal/protocol';
import { Mailbox, type RoundOver } from '../src/common/mailbox.js';
import { systemClock } from '@shoal/protocol';
import { updateWeight } from '../src/common/round.js';
import { maskedExtras } from '../src/common/privacy-steps.js';

const CONFIG = { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;
const train = (round: number): TrainMessage => ({ type: 'train', round, modelVersion: 'v', config: CONFIG, deadlineMs: 1_000 });
const result = (round: number): CoordinatorMessage => ({ type: 'result', round, status: 'aborted', modelVersion: 'v' });
const keys = (round: number): CoordinatorMessage => ({ type: 'keys', round, neighbours: [] });
const inbox = (round: number): CoordinatorMessage => ({ type: 'inbox', round, ciphertexts: [] });
const never = new AbortController().signal;

describe('Mailbox', () => {
  it('hands the loop messages in order, and undefined once closed', async () => {
    const mailbox = new Mailbox(systemClock);
    mailbox.put(train(1));
    mailbox.put(result(1));
    expect((await mailbox.take())?.message).toEqual(train(1));
    expect((await mailbox.take())?.message).toEqual(result(1));
    const pending = mailbox.take();
    mailbox.close();
    expect(await pending).toBeUndefined();
    mailbox.put(train(2)); // dropped: the connection is closing
    expect(await mailbox.take()).toBeUndefined();
  });

  it("ends the open round the moment its result arrives, and gives that result to the round's wait for it", async () => {
    const mailbox = new Mailbox(systemClock);
    const mail = mailbox.openRound(1, never);
    const waiting = mail.next('keys', mail.over);
    mailbox.put(result(1));
    expect(mail.over.aborted).toBe(true);
    expect((mail.over.reason as RoundOver).by).toBe('result');
    await expect(waiting).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await mail.next('result', mail.over)).toEqual(result(1));
    mail.close();
    const after = mailbox.take();
    mailbox.close();
    expect(await after).toBeUndefined(); // the result was the round's, not the loop's
  });

  it('ends the open round when a later train arrives, leaving that train for the loop', async () => {
    const mailbox = new Mailbox(systemClock);
    const mail = mailbox.openRound(1, never);
    mailbox.put(train(2));
    expect((mail.over.reason as RoundOver).by).toBe('superseded');
    await expect(mail.next('result', mail.over)).rejects.toMatchObject({ code: 'ABORTED' });
    mail.close();
    expect((await mailbox.take())?.message).toEqual(train(2));
  });

  it('ends a round whose end is already queued when it opens, and when the run stops', () => {
    const mailbox = new Mailbox(systemClock);
    mailbox.put(result(1));
    expect((mailbox.openRound(1, never).over.reason as RoundOver).by).toBe('result');
    const stop = new AbortController();
    const mail = mailbox.openRound(2, stop.signal);
    stop.abort();
    expect((mail.over.reason as RoundOver).by).toBe('stopped');
  });

  it("rejects a stage message out of order, and skips the round's stale stage messages while awaiting the result", async () => {
    const mailbox = new Mailbox(systemClock);
    const mail = mailbox.openRound(1, never);
    mailbox.put(keys(0)); // another round's: not this round's concern
    mailbox.put(inbox(1));
    await expect(mail.next('keys', mail.over)).rejects.toMatchObject({ code: 'UNEXPECTED_MESSAGE' });
    mailbox.put(keys(1));
    const waiting = mail.next('result', mail.over);
    mailbox.put(result(1));
    expect(await waiting).toEqual(result(1));
  });
});

describe('the weight of an update', () => {
  it('is the example count in the clear, capped at maxWeight under secure aggregation', () => {
    const secagg = { mode: 'secagg', index: 1, threshold: 2, degree: 3, bound: 1, scale: 1, maxWeight: 100, sessionId: 's' } as const;
    expect(updateWeight(train(1), 250)).toBe(250);
    expect(updateWeight({ ...train(1), secagg }, 250)).toBe(100);
    expect(updateWeight({ ...train(1), secagg: { ...secagg, maxWeight: 1 } }, 250)).toBe(1); // DP: every client weighs 1
  });
});

describe('maskedExtras', () => {
  const update = { delta: new Float32Array(2), numExamples: 1, metrics: { loss: 0, accuracy: 0, trainMs: 0 } };
  it('adds the unclipped bit only when the round sums bits, noised by bitNoiseStd', () => {
    expect(maskedExtras({ ...update, unclipped: true }, CONFIG)).toEqual([]);
    expect(maskedExtras({ ...update, unclipped: true }, { ...CONFIG, clipNorm: 1, bitNoiseStd: 0 })).toEqual([1]);
    expect(maskedExtras({ ...update, unclipped: false }, { ...CONFIG, clipNorm: 1, bitNoiseStd: 0 })).toEqual([0]);
    expect(maskedExtras({ ...update, unclipped: true }, { ...CONFIG, clipNorm: 1, bitNoiseStd: 0.5 }, { gaussian: () => 2, uniform: () => 0 })).toEqual([2]);
  });
});
