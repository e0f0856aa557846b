/**
 * A leader that takes over a round left open by a dead leader, against a real redis-server: under
 * distributed DP, a group sum already reported was released (its gateway unmasked it, noised), so
 * the abandoned round is charged at the sampling rate the round began with; under central DP (the
 * group sums carry no noise and never leave the operator's processes) and when no group reported a
 * sum, it is not. The dead leader is played by a ControlPlane of its own: it took the lease, began
 * round 1, and a gateway reported a group, and then its lease was gone.
 */
import { describe, expect, it } from 'vitest';
import { PrivacyPolicy, RoundLog, builtinInitialModel, resolveOptions, silentLogger, type Cohort, type CoordinatorState, type DpOptions, type RoundPorts, type RoundRecord, type RunSetup } from '@shoal/coordinator';
import { createSeededRandom, systemClock } from '@shoal/protocol';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '@shoal/secagg/node';
import { fedAvg } from '@shoal/strategy';
import { runLeaderRound, type GroupReportMeta, type HeldLease, type RoundTask } from '@shoal/scaleout';
import { redisPlanes } from './redis-planes.js';

const MODEL = builtinInitialModel('logreg', [4], 3, 1);
const NUM_PARAMS = MODEL.weights.length;
const BEGUN_AT_RATE = 0.5;

const { plane } = redisPlanes('leader-release');

/** The leader holds no devices: any use of its cohort is a bug this test should see. */
const NO_DEVICES = new Proxy({} as Cohort, {
  get: (_target, property) => {
    throw new Error(`a leader used its cohort (${String(property)})`);
  },
});

/** Round 1 begun by a leader that then died, with `reports` from its gateways. */
async function roundLeftOpen(dp: DpOptions, reports: readonly GroupReportMeta[]): Promise<void> {
  const dead = await plane();
  const epoch = (await dead.acquireLease('dead', 60_000))!;
  const state = new PrivacyPolicy(dp, 4, 2, true).initialState();
  const roundTask: RoundTask = {
    runId: 'run',
    lastCommittedRound: 0,
    config: { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
    privacy: { dpMode: dp.mode },
    privacyState: state,
    quotas: { 'gw-0': 4 },
    minGroupSize: 3,
    sampleRate: BEGUN_AT_RATE,
  };
  expect(await dead.begin(epoch, 1, JSON.stringify(roundTask))).toBe(true);
  for (const [k, meta] of reports.entries()) {
    expect(await dead.report(1, epoch, `gw-0/${k}`, JSON.stringify(meta), meta.failure === undefined ? new Float64Array(NUM_PARAMS).fill(0.1) : undefined)).toBe('ok');
  }
  await dead.releaseLease('dead', epoch); // its lease is gone (as if it expired)
}

/** The next leader's first round: it takes over round 1. */
async function takeOver(dp: DpOptions): Promise<{ record: RoundRecord; state: CoordinatorState; phase: string | undefined }> {
  const next = await plane();
  const epoch = (await next.acquireLease('next', 60_000))!;
  const lease: HeldLease = {
    nodeId: 'next',
    epoch: () => epoch,
    async ensure() {
      if (!(await next.renewLease('next', epoch, 60_000))) throw new Error('lease lost');
    },
  };
  const options = resolveOptions({ model: MODEL, tokens: ['t'], rounds: 3, clientsPerRound: 4, minClients: 2, train: { epochs: 1, batchSize: 4, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 }, strategy: fedAvg(), secagg: { mode: 'secagg+' }, dp });
  const policy = new PrivacyPolicy(dp, 4, 2, true);
  const setup: RunSetup = { options, numParams: NUM_PARAMS, sessionId: 'next', privacy: policy, secaggCrypto: { prg: nodeMaskPrg, agreement: nodeKeyAgreement, signing: nodeSigning } };
  const state: CoordinatorState = { runId: 'run', round: 0, lastCommittedRound: 0, weights: MODEL.weights.slice(), strategyState: options.strategy.initialState(NUM_PARAMS), privacy: policy.initialState() };
  const records: RoundRecord[] = [];
  const ports: RoundPorts = { cohort: NO_DEVICES, clock: systemClock, random: createSeededRandom(1), log: new RoundLog([(record) => void records.push(record)]), logger: silentLogger };
  const leaderOptions = { plane: next, lease, clock: systemClock, overSelection: 1, minGroupSize: 3, reportTimeoutMs: 1_000, minAvailable: 1 };
  const { record, state: after } = await runLeaderRound(ports, setup, state, leaderOptions, new AbortController().signal);
  expect(records).toEqual([record]);
  return { record, state: after, phase: (await next.roundStatus())?.phase };
}

const REPORTED: GroupReportMeta = { gateway: 'gw-0', selected: 4, count: 4, totalWeight: 4, dropouts: 0, bytesUp: 100, bytesDown: 100 };
const FAILED: GroupReportMeta = { gateway: 'gw-0', selected: 4, count: 0, totalWeight: 0, dropouts: 4, bytesUp: 0, bytesDown: 100, failure: 'secure aggregation aborted in the masked stage' };
const charges = (state: CoordinatorState) => state.privacy!.accountant.history.reduce((total, entry) => total + entry.steps, 0);

describe('a leader taking over a round a dead leader left open', () => {
  it('distributed DP, a group sum reported: abandons the round and charges it at the rate it began with', async () => {
    const dp = { mode: 'distributed', noiseMultiplier: 1.1, clipNorm: 1 } as const;
    await roundLeftOpen(dp, [REPORTED]);
    const { record, state, phase } = await takeOver(dp);
    expect(phase).toBe('abandoned');
    expect(record).toMatchObject({ round: 1, status: 'aborted', reason: expect.stringMatching(/replaced/), charge: { sampleRate: BEGUN_AT_RATE, noiseMultiplier: 1.1, clipNorm: 1 } });
    expect(charges(state)).toBe(1);
    expect(record.metrics.epsilon).toBeGreaterThan(0);
    expect(state.lastCommittedRound).toBe(0);
  });

  it('distributed DP, only a failed group reported: nothing was released, nothing is charged', async () => {
    const dp = { mode: 'distributed', noiseMultiplier: 1.1, clipNorm: 1 } as const;
    await roundLeftOpen(dp, [FAILED]);
    const { record, state } = await takeOver(dp);
    expect(record).toMatchObject({ round: 1, status: 'aborted' });
    expect(record.charge).toBeUndefined();
    expect(charges(state)).toBe(0);
  });

  it('central DP, a group sum reported: the noise was never added, nothing left the operator; not charged', async () => {
    const dp = { mode: 'central', noiseMultiplier: 1.1, clipNorm: 1 } as const;
    await roundLeftOpen(dp, [REPORTED]);
    const { record, state } = await takeOver(dp);
    expect(record).toMatchObject({ round: 1, status: 'aborted' });
    expect(record.charge).toBeUndefined();
    expect(charges(state)).toBe(0);
  });
});
