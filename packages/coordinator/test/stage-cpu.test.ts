// The coordinator's CPU per SecAgg stage (SecAggMetrics.stageCpuMs): where each stage's window
// begins and ends. A scripted cohort burns a fixed amount of the process's CPU at one point of the
// round (a send that opens a stage, a gather, the unmasking); that much must show in the stage the
// point belongs to and in no other. CPU is burnt until process.cpuUsage() has advanced by the
// amount, so the test depends on no clock and no machine speed: the burnt stage holds at least
// BURN_MS by construction, and a round of 5 clients and 6 parameters costs a few ms of CPU, far
// below BURN_MS, in each other stage. Then the Prometheus histogram fed from it.
import type { Histogram } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { CoordinatorMessage } from '@shoal/protocol';
import type { MaskPrg } from '@shoal/secagg';
import { nodeMaskPrg } from '@shoal/secagg/node';
import { FakeClock } from '@shoal/testkit';
import type { AnswerKind, GatherRequest, Gathered } from '../src/ports.js';
import type { RoundRecord } from '../src/round-log.js';
import type { SecAggStage } from '../src/round.js';
import { runRound } from '../src/run-round.js';
import { CoordinatorTelemetry } from '../src/telemetry.js';
import { MEMBERS, ScriptedCohort, harness, initialState, setup, type Behaviour } from './scripted-cohort.js';

const STAGES: readonly SecAggStage[] = ['advertise', 'share', 'masked', 'confirm', 'unmask'];
/** CPU burnt at the chosen point: far above what any stage of this tiny round costs by itself. */
const BURN_MS = 150;

function processCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Spins until this process has used `ms` more milliseconds of CPU. */
function burnCpu(ms: number): void {
  const until = processCpuMs() + ms;
  while (processCpuMs() < until) {
    // spin: the work is the point
  }
}

/** Where in the round the CPU is burnt: the first send of a message type, a stage's gather, or the unmasking. */
type BurnPoint = { readonly sending: CoordinatorMessage['type'] } | { readonly gathering: AnswerKind } | 'unmasking';

/** A scripted cohort that burns BURN_MS of CPU once, at `point`. */
class BurningCohort extends ScriptedCohort {
  private burnt = false;

  constructor(
    private readonly point: BurnPoint,
    clock: FakeClock,
    behaviour?: (kind: AnswerKind, member: string) => Behaviour,
  ) {
    super(MEMBERS, clock, behaviour);
  }

  override send(member: string, frame: Uint8Array): number {
    const bytes = super.send(member, frame);
    const sent = this.inbox.get(member)?.at(-1)?.type;
    if (typeof this.point === 'object' && 'sending' in this.point && sent === this.point.sending) this.burnOnce();
    return bytes;
  }

  override gather<K extends AnswerKind>(request: GatherRequest<K>): Promise<Gathered> {
    if (typeof this.point === 'object' && 'gathering' in this.point && request.kind === this.point.gathering) this.burnOnce();
    return super.gather(request);
  }

  /** The coordinator's mask PRG, burning at its first use: only the unmasking (finish) uses it. */
  prg(): MaskPrg {
    return {
      expand: (key, words) => (this.point === 'unmasking' && this.burnOnce(), nodeMaskPrg.expand(key, words)),
      addTo: (sum, key, sign) => (this.point === 'unmasking' && this.burnOnce(), nodeMaskPrg.addTo(sum, key, sign)),
    };
  }

  private burnOnce(): void {
    if (this.burnt) return;
    this.burnt = true;
    burnCpu(BURN_MS);
  }
}

async function secaggRound(point: BurnPoint, behaviour?: (kind: AnswerKind, member: string) => Behaviour): Promise<RoundRecord> {
  const clock = new FakeClock();
  const cohort = new BurningCohort(point, clock, behaviour);
  const { ports } = harness(cohort, clock);
  const run = setup({ secagg: { mode: 'secagg', maxDropout: 0.2, stageTimeoutMs: 1_000 } });
  const { record } = await runRound(ports, { ...run, secaggCrypto: { ...run.secaggCrypto, prg: cohort.prg() } }, initialState(), new AbortController().signal);
  return record;
}

/** The stages whose CPU reached the burnt amount. */
function burntStages(record: RoundRecord): SecAggStage[] {
  const cpu = record.metrics.secagg?.stageCpuMs;
  expect(cpu).toBeDefined();
  return STAGES.filter((stage) => cpu![stage] >= BURN_MS);
}

describe('secagg.stageCpuMs: the coordinator CPU of each SecAgg stage', () => {
  it('has all five stages, each finite and ≥ 0, in a committed round', async () => {
    const record = await secaggRound({ sending: 'train' });
    expect(record.status).toBe('committed');
    const cpu = record.metrics.secagg!.stageCpuMs!;
    expect(Object.keys(cpu).sort()).toEqual([...STAGES].sort());
    for (const stage of STAGES) {
      expect(Number.isFinite(cpu[stage])).toBe(true);
      expect(cpu[stage]).toBeGreaterThanOrEqual(0);
    }
  });

  // Each point, and the one stage its CPU must be charged to.
  const points: readonly [string, BurnPoint, SecAggStage][] = [
    ['sending train (opens advertise)', { sending: 'train' }, 'advertise'],
    ['gathering advertisements', { gathering: 'advertise' }, 'advertise'],
    ['closing advertise and sending keys (opens share)', { sending: 'keys' }, 'share'],
    ['gathering shares', { gathering: 'shares' }, 'share'],
    ['closing share and sending inboxes (opens masked)', { sending: 'inbox' }, 'masked'],
    ['gathering masked inputs', { gathering: 'masked' }, 'masked'],
    ['closing masked and sending the survivor set (opens confirm)', { sending: 'survivors' }, 'confirm'],
    ['gathering confirmations', { gathering: 'confirm' }, 'confirm'],
    ['closing confirm and sending unmask requests (opens unmask)', { sending: 'unmask' }, 'unmask'],
    ['gathering reveals', { gathering: 'reveal' }, 'unmask'],
    ['unmasking the sum (finish)', 'unmasking', 'unmask'],
  ];
  for (const [what, point, stage] of points) {
    it(`charges CPU spent ${what} to ${stage}, and to no other stage`, async () => {
      const record = await secaggRound(point);
      expect(record.status).toBe('committed');
      expect(burntStages(record)).toEqual([stage]);
    });
  }

  it('charges the stage a round aborts in: CPU of the keys sends shows in share when too few clients share', async () => {
    // Three of five decline to share: 2 < quorum 3, the round aborts in the share stage.
    const record = await secaggRound({ sending: 'keys' }, (kind, member) => (kind === 'shares' && member !== 'c1' && member !== 'c2' ? 'decline' : 'answer'));
    expect(record.status).toBe('aborted');
    expect(record.metrics.reason).toContain('share stage');
    expect(burntStages(record)).toEqual(['share']);
  });
});

describe('shoal_secagg_stage_cpu_seconds', () => {
  const live = () => ({ connected: 0, idle: 0, training: 0, phase: 'waiting', round: 0 }) as const;

  /** The histogram's `_sum` and `_count` for `stage`. */
  async function observed(telemetry: CoordinatorTelemetry, stage: SecAggStage): Promise<{ sum: number; count: number }> {
    const { values } = await (telemetry.registry.getSingleMetric('shoal_secagg_stage_cpu_seconds') as Histogram<'stage'>).get();
    const pick = (suffix: string) => values.find((v) => v.metricName === `shoal_secagg_stage_cpu_seconds_${suffix}` && v.labels['stage'] === stage)?.value ?? 0;
    return { sum: pick('sum'), count: pick('count') };
  }

  it('observes each stage of a recorded round in seconds, and skips records written before stageCpuMs existed', async () => {
    const record = await secaggRound({ gathering: 'shares' });
    const telemetry = new CoordinatorTelemetry(live, { dp: false });
    await telemetry.sink(record);
    for (const stage of STAGES) {
      expect(await observed(telemetry, stage)).toEqual({ sum: expect.closeTo(record.metrics.secagg!.stageCpuMs![stage] / 1000, 12), count: 1 });
    }
    expect((await observed(telemetry, 'share')).sum).toBeGreaterThanOrEqual(BURN_MS / 1000);

    const { stageCpuMs: _absent, ...older } = record.metrics.secagg!;
    await telemetry.sink({ ...record, metrics: { ...record.metrics, secagg: older } });
    for (const stage of STAGES) expect((await observed(telemetry, stage)).count).toBe(1);
  });
});
