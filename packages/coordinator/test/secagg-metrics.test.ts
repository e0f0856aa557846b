// Under secure aggregation the coordinator learns the sum and nothing per client: training metrics
// travel beside a masked input only when the round asked for them (secagg.shareMetrics), and
// metrics it did not ask for (an older or dishonest client's) never reach the round record.
import { describe, expect, it } from 'vitest';
import { FakeClock } from '@shoal/testkit';
import type { RoundMessage } from '../src/ports.js';
import { runRound } from '../src/run-round.js';
import { MEMBERS, ScriptedCohort, harness, initialState, setup } from './scripted-cohort.js';

/** Every member sends metrics with its masked input, asked or not. */
const withMetrics = (_member: string, answer: RoundMessage): RoundMessage =>
  answer.type === 'masked' ? { ...answer, metrics: { loss: 0.25, accuracy: 0.75, trainMs: 1 } } : answer;

async function secaggRound(shareMetrics: boolean | undefined) {
  const clock = new FakeClock();
  const cohort = new ScriptedCohort(MEMBERS, clock, undefined, undefined, withMetrics);
  const { ports } = harness(cohort, clock);
  const secagg = { mode: 'secagg', maxDropout: 0.2, stageTimeoutMs: 1_000, ...(shareMetrics !== undefined ? { shareMetrics } : {}) } as const;
  const { record } = await runRound(ports, setup({ secagg }), initialState(), new AbortController().signal);
  const trains = MEMBERS.map((member) => cohort.inbox.get(member)!.find((message) => message.type === 'train'));
  return { record, trains };
}

describe('metrics under secure aggregation', () => {
  it('by default: the train message does not ask for metrics, and the record has no trainLoss even if clients send some', async () => {
    const { record, trains } = await secaggRound(undefined);
    expect(record.status).toBe('committed');
    for (const train of trains) expect(train?.type === 'train' && train.secagg?.shareMetrics).toBeFalsy();
    expect(record.metrics.trainLoss).toBeUndefined();
  });

  it('with secagg.shareMetrics: the train message asks for them and their mean is the trainLoss', async () => {
    const { record, trains } = await secaggRound(true);
    expect(record.status).toBe('committed');
    for (const train of trains) expect(train?.type === 'train' && train.secagg?.shareMetrics).toBe(true);
    expect(record.metrics.trainLoss).toBeCloseTo(0.25);
  });
});
