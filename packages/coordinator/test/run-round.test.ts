// runRound over a scripted Cohort and a fake clock, no sockets: dropouts and quorum misses at
// every stage, a deadline that fires while a stage waits, an abort signal, and one record appended
// per round. SecAgg members are real SecAggClients, so the masks really cancel.
import { describe, expect, it } from 'vitest';
import { FakeClock, settle } from '@shoal/testkit';
import type { AnswerKind, RoundMessage } from '../src/ports.js';
import { RoundLog, type RoundRecord } from '../src/round-log.js';
import { PrivacyPolicy } from '../src/privacy.js';
import { runRound } from '../src/run-round.js';
import { fedAvg, fedMedian, krum } from '@shoal/strategy';
import { D, MEMBERS, ScriptedCohort, fedAvgOf, harness, initialState, setup, type Behaviour } from './scripted-cohort.js';

describe('runRound, plain', () => {
  it('commits the weighted mean of the answers, appends one record, and tells every member the result', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock);
    const { ports, records } = harness(cohort, clock);
    const { state, record } = await runRound(ports, setup(), initialState(), new AbortController().signal);
    expect(record.status).toBe('committed');
    expect(records).toEqual([record]);
    expect(state).toMatchObject({ round: 1, lastCommittedRound: 1 });
    expect(Array.from(state.weights)).toEqual(Array.from(fedAvgOf(MEMBERS)));
    expect(record.weightsHash).toMatch(/^[0-9a-f]{64}$/);
    for (const member of MEMBERS) expect(cohort.last(member, 'result')).toMatchObject({ round: 1, status: 'committed', modelVersion: 'run:1' });
    expect(cohort.released).toEqual([1]);
  });

  it('counts members that leave, decline or are refused as dropouts and commits with the rest', async () => {
    const clock = new FakeClock();
    const behaviour = (_kind: AnswerKind, member: string): Behaviour => (member === 'c1' ? 'leave' : member === 'c2' ? 'decline' : 'answer');
    const cohort = new ScriptedCohort(MEMBERS, clock, behaviour);
    const { ports } = harness(cohort, clock);
    const { state, record } = await runRound(ports, setup(), initialState(), new AbortController().signal);
    expect(record.metrics).toMatchObject({ status: 'committed', selected: 5, participants: 3, dropouts: 2 });
    expect(Array.from(state.weights)).toEqual(Array.from(fedAvgOf(['c3', 'c4', 'c5'])));
  });

  it('waits for a silent member until the deadline fires on the clock, then commits without it', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock, (_kind, member) => (member === 'c5' ? 'silent' : 'answer'));
    const { ports } = harness(cohort, clock);
    let done = false;
    const round = runRound(ports, setup({ roundTimeoutMs: 5_000 }), initialState(), new AbortController().signal).finally(() => (done = true));
    await clock.advance(4_999);
    expect(done).toBe(false);
    await clock.advance(1);
    const { record } = await round;
    expect(record.metrics).toMatchObject({ status: 'committed', participants: 4, dropouts: 1 });
  });

  it('aborts below the quorum with the model, strategy state and version unchanged, and still appends one record', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock, (_kind, member) => (['c1', 'c2', 'c3'].includes(member) ? 'leave' : 'answer'));
    const { ports, records } = harness(cohort, clock);
    const before = initialState();
    const { state, record } = await runRound(ports, setup(), before, new AbortController().signal);
    expect(record).toMatchObject({ status: 'aborted', modelVersion: 'run:0' });
    expect(record.reason).toContain('minClients is 3');
    expect(records).toHaveLength(1);
    expect(state).toEqual({ ...before, round: 1, previousMedianNorm: expect.any(Number) });
    expect(state.weights).toBe(before.weights);
  });

  it('aborts, model unchanged, when the signal aborts while a stage waits', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock, () => 'silent');
    const { ports } = harness(cohort, clock);
    const stop = new AbortController();
    const round = runRound(ports, setup(), initialState(), stop.signal);
    await settle();
    stop.abort();
    const { state, record } = await round;
    expect(record).toMatchObject({ status: 'aborted', reason: 'coordinator stopped' });
    expect(state.lastCommittedRound).toBe(0);
    expect(clock.pending).toBe(0); // the stage's timer was released
  });

  it('refuses an update computed on another model version and goes on without it', async () => {
    const clock = new FakeClock();
    const stale = (member: string, answer: RoundMessage) => (member === 'c1' && answer.type === 'update' ? { ...answer, modelVersion: 'run:old' } : answer);
    const cohort = new ScriptedCohort(MEMBERS, clock, undefined, undefined, stale);
    const { ports } = harness(cohort, clock);
    const { record } = await runRound(ports, setup(), initialState(), new AbortController().signal);
    expect(cohort.refused).toEqual(['c1']);
    expect(record.metrics).toMatchObject({ status: 'committed', participants: 4 });
  });
});

describe('runRound, robust aggregation', () => {
  // c1..c4 send honest deltas 1..4 everywhere; c5 sends 1e6 everywhere (within the large norm bound).
  const poisoned = (member: string) => new Float32Array(D).fill(member === 'c5' ? 1e6 : Number(member.slice(1)));

  it('FedMedian commits initial + 3 (the median of 1, 2, 3, 4, 1e6) where FedAvg moves by (10 + 1e6)/5', async () => {
    const committed = async (strategy: ReturnType<typeof fedAvg>) => {
      const clock = new FakeClock();
      const cohort = new ScriptedCohort(MEMBERS, clock, undefined, poisoned);
      const { ports } = harness(cohort, clock);
      const { state, record } = await runRound(ports, setup({ strategy }), initialState(), new AbortController().signal);
      expect(record.status).toBe('committed');
      return Array.from(state.weights);
    };
    const initial = Array.from(initialState().weights);
    expect(await committed(fedMedian())).toEqual(initial.map((w) => Math.fround(w + 3)));
    expect(await committed(fedAvg())).toEqual(initial.map((w) => Math.fround(w + 200_002)));
  });

  it('aborts the round, model unchanged, when the rule cannot aggregate the updates it got (Krum, f = 2, 5 updates)', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock);
    const { ports } = harness(cohort, clock);
    const before = initialState();
    const { state, record } = await runRound(ports, setup({ strategy: krum({ byzantine: 2 }) }), before, new AbortController().signal);
    expect(record.status).toBe('aborted');
    expect(record.reason).toBe('strategy krum cannot aggregate: krum with strategy.byzantine 2 needs at least 7 updates (n > 2f + 2), got 5');
    expect(state.weights).toEqual(before.weights);
  });

  it('is refused with secure aggregation or DP, naming the keys', () => {
    expect(() => setup({ strategy: fedMedian(), secagg: { mode: 'secagg' } })).toThrow(
      "strategy.name fedmedian needs each client's update, but with secagg.mode on the coordinator only sees their masked sum: set secagg.mode off or choose another strategy",
    );
    expect(() => setup({ strategy: krum(), dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1 } })).toThrow(
      "strategy.name krum cannot run with dp.mode central: DP's sensitivity analysis assumes the noised sum of clipped updates, not a robust rule over them; set dp.mode off or choose another strategy",
    );
  });
});

describe('runRound, secure aggregation', () => {
  const secagg = { mode: 'secagg', maxDropout: 0.2, stageTimeoutMs: 1_000 } as const;

  it('commits the survivors\' FedAvg within the quantization bound', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock);
    const { ports } = harness(cohort, clock);
    const { state, record } = await runRound(ports, setup({ secagg }), initialState(), new AbortController().signal);
    expect(record.status).toBe('committed');
    const expected = fedAvgOf(MEMBERS);
    for (let i = 0; i < D; i++) expect(state.weights[i]).toBeCloseTo(expected[i]!, 3);
  });

  it.each([
    ['advertise', 'advertise'],
    ['share', 'shares'],
    ['masked', 'masked'],
    ['confirm', 'confirm'],
    ['unmask', 'reveal'],
  ] as const)('a member lost in the %s stage is a dropout of that stage; the round commits the others', async (stage, kind) => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock, (asked, member) => (member === 'c5' && asked === kind ? 'leave' : 'answer'));
    const { ports } = harness(cohort, clock);
    const { state, record } = await runRound(ports, setup({ secagg }), initialState(), new AbortController().signal);
    expect(record.status, record.reason).toBe('committed');
    expect(record.metrics.secagg!.dropouts[stage]).toBe(1);
    // Lost before its masked input was in, c5 is not in the sum; lost in confirm or unmask, it is.
    const survivors = stage === 'confirm' || stage === 'unmask' ? MEMBERS : MEMBERS.slice(0, 4);
    const expected = fedAvgOf(survivors);
    for (let i = 0; i < D; i++) expect(state.weights[i]).toBeCloseTo(expected[i]!, 3);
  });

  it.each(['advertise', 'shares', 'masked', 'confirm', 'reveal'] as const)('aborts when too many are lost at %s, model unchanged', async (kind) => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock, (asked, member) => (asked === kind && ['c3', 'c4', 'c5'].includes(member) ? 'leave' : 'answer'));
    const { ports } = harness(cohort, clock);
    const before = initialState();
    const { state, record } = await runRound(ports, setup({ secagg }), before, new AbortController().signal);
    expect(record.status).toBe('aborted');
    expect(record.reason).toMatch(/secure aggregation aborted in the \w+ stage|survived secure aggregation/);
    expect(state.weights).toBe(before.weights);
    expect(state.lastCommittedRound).toBe(0);
  });

  it('a stage deadline fires on the clock while a member stays silent in the share stage', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock, (asked, member) => (member === 'c5' && asked === 'shares' ? 'silent' : 'answer'));
    const { ports } = harness(cohort, clock);
    let done = false;
    const round = runRound(ports, setup({ secagg }), initialState(), new AbortController().signal).finally(() => (done = true));
    // The share stage opens after real key generation: wait until its deadline timer is set.
    while (clock.pending === 0) await new Promise((resolve) => setImmediate(resolve));
    await clock.advance(999);
    expect(done).toBe(false);
    await clock.advance(1);
    const { record } = await round;
    expect(record.metrics.secagg!.dropouts.share).toBe(1);
    expect(record.status).toBe('committed');
  });
});

describe('runRound, the consistency round and pinned identities', () => {
  const secagg = { mode: 'secagg', maxDropout: 0.2, stageTimeoutMs: 1_000 } as const;
  const seed = (byte: number) => new Uint8Array(32).fill(byte);
  /** The same answer with one bit of its signature flipped: a forgery. */
  const forged = (answer: RoundMessage): RoundMessage => {
    if (answer.type !== 'confirm' && answer.type !== 'advertise') return answer;
    const signature = answer.signature.slice();
    signature[0]! ^= 1;
    return { ...answer, signature };
  };
  /** The SecAgg index the round gave `member` (the cohort is sampled in a random order). */
  const indexOf = (cohort: ScriptedCohort, member: string) => cohort.last(member, 'train').secagg!.index;
  const closeTo = (weights: Float32Array, members: readonly string[]) => {
    const expected = fedAvgOf(members);
    for (let i = 0; i < D; i++) expect(weights[i]).toBeCloseTo(expected[i]!, 3);
  };

  it('announces the whole U3, ascending, to every survivor, then forwards to each threshold − 1 of its neighbours\' signatures of it', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock);
    const { ports } = harness(cohort, clock);
    const { record } = await runRound(ports, setup({ secagg }), initialState(), new AbortController().signal);
    expect(record.status, record.reason).toBe('committed');
    const indices = MEMBERS.map((_, i) => i + 1);
    for (const member of MEMBERS) {
      expect(cohort.last(member, 'survivors')).toEqual({ type: 'survivors', round: 1, survivors: indices });
      const { signatures } = cohort.last(member, 'unmask');
      const signers = signatures.map((entry) => entry.index);
      // With its own signature, exactly the threshold (4 of 5) the client checks: no more verifications than needed.
      expect(signers).toHaveLength(3);
      expect(new Set(signers).size).toBe(3);
      for (const signer of signers) expect(indices.filter((index) => index !== indexOf(cohort, member))).toContain(signer);
      for (const entry of signatures) expect(entry.signature).toHaveLength(64);
    }
    expect(record.metrics.secagg!.dropouts.confirm).toBe(0);
  });

  it('closes a survivor whose confirmation does not verify on U3 (SECAGG_VIOLATION); its input stays in the sum', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock, undefined, undefined, (member, answer) => (member === 'c5' && answer.type === 'confirm' ? forged(answer) : answer));
    const { ports } = harness(cohort, clock);
    const { state, record } = await runRound(ports, setup({ secagg }), initialState(), new AbortController().signal);
    expect(cohort.refusals).toEqual([{ member: 'c5', code: 'SECAGG_VIOLATION', reason: expect.stringContaining('signed something other than the announced survivor set') }]);
    expect(record.status, record.reason).toBe('committed');
    expect(record.metrics.secagg!.dropouts.confirm).toBe(1);
    // c5's masked input is in U3: its self mask is rebuilt from the others' shares; nobody was sent its signature.
    closeTo(state.weights, MEMBERS);
    for (const member of MEMBERS.slice(0, 4)) expect(cohort.last(member, 'unmask').signatures.map((entry) => entry.index)).not.toContain(indexOf(cohort, 'c5'));
  });

  it('closes a member whose advertisement signature does not verify (SECAGG_VIOLATION)', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock, undefined, undefined, (member, answer) => (member === 'c2' && answer.type === 'advertise' ? forged(answer) : answer));
    const { ports } = harness(cohort, clock);
    const { state, record } = await runRound(ports, setup({ secagg }), initialState(), new AbortController().signal);
    expect(cohort.refusals).toEqual([{ member: 'c2', code: 'SECAGG_VIOLATION', reason: expect.stringContaining('advertise.signature does not verify') }]);
    expect(record.status, record.reason).toBe('committed');
    expect(record.metrics.secagg!.dropouts.advertise).toBe(1);
    closeTo(state.weights, ['c1', 'c3', 'c4', 'c5']);
  });

  it('members enrolled with identity keys advertise them, and the round commits', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock);
    for (const [i, member] of MEMBERS.entries()) cohort.identities.set(member, seed(i + 1));
    const { ports } = harness(cohort, clock);
    const { state, record } = await runRound(ports, setup({ secagg }), initialState(), new AbortController().signal);
    expect(record.status, record.reason).toBe('committed');
    expect(cohort.refusals).toEqual([]);
    const memberAt = new Map(MEMBERS.map((member) => [indexOf(cohort, member), member]));
    for (const neighbour of cohort.last('c1', 'keys').neighbours) {
      expect(neighbour.signingKey).toEqual(cohort.identityOf(memberAt.get(neighbour.index)!));
    }
    closeTo(state.weights, MEMBERS);
  });

  it('closes a member enrolled with an identity that signs its advertisement with another key (SECAGG_VIOLATION)', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock);
    for (const [i, member] of MEMBERS.entries()) cohort.identities.set(member, seed(i + 1));
    cohort.signsWith.set('c3', seed(99)); // a valid signature, by a key that is not c3's enrolled identity
    const { ports } = harness(cohort, clock);
    const { state, record } = await runRound(ports, setup({ secagg }), initialState(), new AbortController().signal);
    expect(cohort.refusals).toEqual([{ member: 'c3', code: 'SECAGG_VIOLATION', reason: expect.stringContaining('other than its enrolled identity key') }]);
    expect(record.status, record.reason).toBe('committed');
    closeTo(state.weights, ['c1', 'c2', 'c4', 'c5']);
  });

  it('a member without an enrolled identity may sign with any key, next to members with one', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock);
    cohort.identities.set('c1', seed(1));
    const { ports } = harness(cohort, clock);
    const { record } = await runRound(ports, setup({ secagg }), initialState(), new AbortController().signal);
    expect(record.status, record.reason).toBe('committed');
    expect(cohort.refusals).toEqual([]);
  });
});

describe('RoundLog', () => {
  it('appends each round once, in order, to every sink in turn', async () => {
    const seen: string[] = [];
    const log = new RoundLog([(r) => void seen.push(`a${r.round}`), async (r) => void seen.push(`b${r.round}`)]);
    const record = { round: 1 } as RoundRecord;
    await log.append(record);
    await log.append({ ...record, round: 2 });
    await expect(log.append(record)).rejects.toThrow('round 1 appended after round 2');
    expect(seen).toEqual(['a1', 'b1', 'a2', 'b2']);
  });

  it('commit runs the durable sinks only; publish hands the record to the observers', async () => {
    const seen: string[] = [];
    const log = new RoundLog([(r) => void seen.push(`sink ${r.round}`)], [(r) => void seen.push(`observer ${r.round} ${r.reason}`)]);
    const committed = await log.commit({ round: 1, reason: 'as committed' } as RoundRecord);
    expect(seen).toEqual(['sink 1']);
    await log.publish({ ...committed, reason: 'with what came after' });
    expect(seen).toEqual(['sink 1', 'observer 1 with what came after']);
  });
});

describe('runRound, the commit comes before anyone hears of the round', () => {
  const secagg = { mode: 'secagg+', maxDropout: 0.2, stageTimeoutMs: 1_000 } as const;
  const resultsSent = (cohort: ScriptedCohort) => MEMBERS.filter((member) => (cohort.inbox.get(member) ?? []).some((m) => m.type === 'result')).length;
  const unmasksSent = (cohort: ScriptedCohort) => MEMBERS.filter((member) => (cohort.inbox.get(member) ?? []).some((m) => m.type === 'unmask')).length;

  it.each([
    ['plain', {}],
    ['secure', { secagg }],
  ] as const)('%s: the members are told the result only once the round is committed', async (_name, overrides) => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock);
    const atCommit: number[] = [];
    const { ports } = harness(cohort, clock);
    const log = new RoundLog([() => void atCommit.push(resultsSent(cohort))]);
    const { record } = await runRound({ ...ports, log }, setup(overrides), initialState(), new AbortController().signal);
    expect(record.status).toBe('committed');
    expect(atCommit).toEqual([0]); // the durable sink ran before any result left
    expect(resultsSent(cohort)).toBe(MEMBERS.length);
  });

  it('distributed DP: the release is durable before the unmasking is asked for, and charged as written', async () => {
    const dp = { mode: 'distributed', noiseMultiplier: 1, clipNorm: 1 } as const;
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock, undefined, () => new Float32Array(D).fill(0.01));
    const { ports } = harness(cohort, clock);
    const releases: { round: number; sampleRate: number; unmasksAlreadySent: number }[] = [];
    const log = new RoundLog([], [], [async (release) => void releases.push({ round: release.round, sampleRate: release.charge.sampleRate, unmasksAlreadySent: unmasksSent(cohort) })]);
    const policy = new PrivacyPolicy(dp, MEMBERS.length, 3, true);
    const { record } = await runRound({ ...ports, log }, { ...setup({ dp, secagg }), privacy: policy }, { ...initialState(), privacy: policy.initialState() }, new AbortController().signal);
    expect(record.status, record.reason).toBe('committed');
    expect(releases).toEqual([{ round: 1, sampleRate: record.charge!.sampleRate, unmasksAlreadySent: 0 }]);
    expect(unmasksSent(cohort)).toBe(MEMBERS.length);
  });

  it('a sum unmasked under DP is charged even when the round then aborts (a forged masked weight)', async () => {
    const dp = { mode: 'distributed', noiseMultiplier: 1, clipNorm: 1 } as const;
    const clock = new FakeClock();
    // c5 adds 1,000 to its masked weight word: the decoded total weight leaves 1..count · maxWeight.
    const forge = (member: string, answer: RoundMessage): RoundMessage => {
      if (member !== 'c5' || answer.type !== 'masked') return answer;
      const masked = answer.masked.slice();
      masked[masked.length - 1] = (masked[masked.length - 1]! + 1_000) >>> 0;
      return { ...answer, masked };
    };
    const cohort = new ScriptedCohort(MEMBERS, clock, undefined, () => new Float32Array(D).fill(0.01), forge);
    const { ports } = harness(cohort, clock);
    const policy = new PrivacyPolicy(dp, MEMBERS.length, 3, true);
    const before = { ...initialState(), privacy: policy.initialState() };
    const { state, record } = await runRound(ports, { ...setup({ dp, secagg }), privacy: policy }, before, new AbortController().signal);
    expect(record).toMatchObject({ status: 'aborted', reason: expect.stringMatching(/a masked weight was forged/) });
    expect(record.charge).toMatchObject({ noiseMultiplier: 1, clipNorm: 1 });
    expect(policy.spent(state.privacy!).epsilon).toBeGreaterThan(0);
    expect(state.weights).toBe(before.weights);
  });

  it('central DP and plain DP rounds write no release: the noised model leaves only after the commit', async () => {
    const dp = { mode: 'central', noiseMultiplier: 1, clipNorm: 1 } as const;
    for (const overrides of [{ dp }, { dp, secagg }]) {
      const clock = new FakeClock();
      const cohort = new ScriptedCohort(MEMBERS, clock, undefined, () => new Float32Array(D).fill(0.01));
      const { ports } = harness(cohort, clock);
      const releases: number[] = [];
      const log = new RoundLog([], [], [async (release) => void releases.push(release.round)]);
      const policy = new PrivacyPolicy(dp, MEMBERS.length, 3, 'secagg' in overrides);
      const { record } = await runRound({ ...ports, log }, { ...setup(overrides), privacy: policy }, { ...initialState(), privacy: policy.initialState() }, new AbortController().signal);
      expect(record.status, record.reason).toBe('committed');
      expect(releases).toEqual([]);
    }
  });
});

describe('runRound, differential privacy', () => {
  const dp = { mode: 'central', noiseMultiplier: 1, clipNorm: 1 } as const;

  it('charges a round whose sum was computed even when stop() lands right after it', async () => {
    const clock = new FakeClock();
    const stop = new AbortController();
    let answered = 0;
    // The last update to arrive triggers the stop: the sum is complete, the model step never runs.
    const cohort = new ScriptedCohort(MEMBERS, clock, undefined, undefined, (_member, answer) => {
      if (++answered === MEMBERS.length) stop.abort();
      return answer;
    });
    const { ports } = harness(cohort, clock);
    const policy = new PrivacyPolicy(dp, MEMBERS.length, 3, false);
    const run = { ...setup({ dp }), privacy: policy };
    const before = { ...initialState(), privacy: policy.initialState() };
    const { state, record } = await runRound(ports, run, before, stop.signal);
    expect(record).toMatchObject({ status: 'aborted', reason: 'coordinator stopped' });
    expect(record.charge).toMatchObject({ noiseMultiplier: 1, clipNorm: 1 });
    expect(policy.spent(state.privacy!).epsilon).toBeGreaterThan(0);
    expect(state.weights).toBe(before.weights); // the model is unchanged all the same
  });

  it('does not charge a round that aborted before its sum existed', async () => {
    const clock = new FakeClock();
    const cohort = new ScriptedCohort(MEMBERS, clock, (_kind, member) => (['c1', 'c2', 'c3'].includes(member) ? 'leave' : 'answer'));
    const { ports } = harness(cohort, clock);
    const policy = new PrivacyPolicy(dp, MEMBERS.length, 3, false);
    const before = { ...initialState(), privacy: policy.initialState() };
    const { state, record } = await runRound(ports, { ...setup({ dp }), privacy: policy }, before, new AbortController().signal);
    expect(record.status).toBe('aborted');
    expect(record.charge).toBeUndefined();
    expect(state.privacy).toEqual(before.privacy);
  });
});
