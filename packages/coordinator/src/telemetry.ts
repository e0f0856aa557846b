// The coordinator's operational view: Prometheus metrics in a registry of its own, fed by a sink of
// the round log (and by timing the checkpoint sink), plus the live state read at scrape time. The
// dashboard's event stream hears of rounds through the same sink (`onRound`).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AnswerKind } from './ports.js';
import type { RoundRecord, RoundSink } from './round-log.js';
import type { RoundMetrics, SecAggStage } from './round.js';

/** What the coordinator is doing now; read on demand (a scrape, a dashboard tick), never pushed. */
export interface LiveState {
  /** Clients that said hello and are still connected. */
  readonly connected: number;
  /** Connected clients not held by the round in flight. */
  readonly idle: number;
  /** Connected clients held by the round in flight (training, or in a SecAgg stage). */
  readonly training: number;
  /**
   * `starting` until the checkpoint is restored; `waiting` between rounds; the answer kind the round
   * in flight waits for (`update`, a SecAgg stage's, `evaluation`) or `between-stages`; `finished`
   * once the configured rounds ran; `stopped` once stopping.
   */
  readonly phase: 'starting' | 'waiting' | 'finished' | 'stopped' | AnswerKind | 'between-stages';
  /** The round in flight, or else the last one finished (0 before the first). */
  readonly round: number;
  /** With DP: ε spent so far (δ fixed), the clip norm the next round uses, and the budget when set. */
  readonly privacy?: { readonly epsilon: number; readonly delta: number; readonly clipNorm: number; readonly epsilonBudget?: number };
}

const SECAGG_STAGES: readonly SecAggStage[] = ['advertise', 'share', 'masked', 'confirm', 'unmask'];
/** The label of plain rounds' dropouts in `shoal_dropouts_total`: clients that sent no update in time. */
const PLAIN_STAGE = 'update';

/**
 * Metrics of one coordinator, in a `Registry` it owns: two coordinators in one process never mix,
 * and prom-client's global default registry is never touched.
 */
export class CoordinatorTelemetry {
  readonly registry = new Registry();
  private readonly listeners = new Set<(metrics: RoundMetrics) => void>();
  private readonly rounds: Counter<'status'>;
  private readonly roundDuration: Histogram;
  private readonly stageDuration: Histogram<'stage'>;
  private readonly stageCpu: Histogram<'stage'>;
  private readonly dropouts: Counter<'stage'>;
  private readonly bytesUp: Counter;
  private readonly bytesDown: Counter;
  private readonly cohortSize: Gauge;
  private readonly accuracy: Gauge;
  private readonly loss: Gauge;
  private readonly checkpointWrite: Histogram;
  /** The live state of the scrape in progress. */
  private scraping: LiveState | undefined;

  /**
   * @param live read at every scrape for the client gauges and, with `dp`, the privacy gauges.
   * @param options.dp whether the ε and clip-norm gauges exist; `epsilonBudget` adds the budget-left gauge.
   */
  constructor(
    private readonly live: () => LiveState,
    options: { readonly dp: boolean; readonly epsilonBudget?: number },
  ) {
    const registers = [this.registry];
    this.rounds = new Counter({ name: 'shoal_rounds_total', help: 'Rounds finished, by status (committed or aborted).', labelNames: ['status'], registers });
    this.roundDuration = new Histogram({
      name: 'shoal_round_duration_seconds',
      help: 'Wall-clock time of a round, selection to commit.',
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    });
    this.stageDuration = new Histogram({
      name: 'shoal_secagg_stage_duration_seconds',
      help: 'Wall-clock time of each secure-aggregation stage.',
      labelNames: ['stage'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.stageCpu = new Histogram({
      name: 'shoal_secagg_stage_cpu_seconds',
      help: "The coordinator process's CPU time in each secure-aggregation stage (user + system, every thread; the stage's opening sends and, for unmask, the unmasking included).",
      labelNames: ['stage'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.dropouts = new Counter({
      name: 'shoal_dropouts_total',
      help: 'Cohort members lost (disconnected, declined, or missed the deadline), by stage: a SecAgg stage, or "update" in plain rounds.',
      labelNames: ['stage'],
      registers,
    });
    this.bytesUp = new Counter({ name: 'shoal_bytes_up_total', help: 'Bytes of round messages received from cohorts.', registers });
    this.bytesDown = new Counter({ name: 'shoal_bytes_down_total', help: 'Bytes of round messages sent to cohorts.', registers });
    this.cohortSize = new Gauge({ name: 'shoal_cohort_size', help: 'Clients selected into the last round.', registers });
    this.accuracy = new Gauge({ name: 'shoal_accuracy', help: 'Central test accuracy of the last committed round that was evaluated.', registers });
    this.loss = new Gauge({ name: 'shoal_loss', help: 'Central test loss of the last committed round that was evaluated.', registers });
    this.checkpointWrite = new Histogram({
      name: 'shoal_checkpoint_write_seconds',
      help: 'Time to write one checkpoint atomically (temp file, fsync, rename).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    // Every series a dashboard or alert may divide by exists from the start, at 0.
    for (const status of ['committed', 'aborted']) this.rounds.labels(status).inc(0);
    for (const stage of [PLAIN_STAGE, ...SECAGG_STAGES]) this.dropouts.labels(stage).inc(0);

    // Read at every scrape from the live state (one read per scrape, shared by every gauge); a gauge
    // whose pick gives undefined keeps no value.
    const liveState = () => this.scraping ?? live();
    const liveGauge = (name: string, help: string, pick: (state: LiveState) => number | undefined) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const value = pick(liveState());
          if (value !== undefined) this.set(value);
        },
      });
    liveGauge('shoal_clients_connected', 'Clients connected that said hello.', (state) => state.connected);
    liveGauge('shoal_clients_idle', 'Connected clients not in the round in flight.', (state) => state.idle);
    liveGauge('shoal_clients_training', 'Connected clients held by the round in flight.', (state) => state.training);
    liveGauge('shoal_round', 'The round in flight, or else the last round finished (0 before the first).', (state) => state.round);
    if (options.dp) {
      liveGauge('shoal_epsilon_spent', 'Client-level ε spent so far, at the configured δ (the RDP accountant).', (state) => state.privacy?.epsilon);
      liveGauge('shoal_clip_norm', 'The DP clip norm the next round uses (it moves with adaptive clipping).', (state) => state.privacy?.clipNorm);
      if (options.epsilonBudget !== undefined) {
        liveGauge('shoal_epsilon_budget_remaining', 'dp.targetEpsilon minus the ε spent so far.', ({ privacy }) =>
          privacy?.epsilonBudget !== undefined ? privacy.epsilonBudget - privacy.epsilon : undefined,
        );
      }
    }
  }

  /** The sink that counts every round record; add it to the round log after the checkpoint sink. */
  readonly sink: RoundSink = (record: RoundRecord) => {
    const metrics = record.metrics;
    this.rounds.labels(record.status).inc();
    this.roundDuration.observe(metrics.durationMs / 1000);
    this.bytesUp.inc(metrics.bytesUp);
    this.bytesDown.inc(metrics.bytesDown);
    this.cohortSize.set(metrics.selected);
    if (metrics.secagg) {
      for (const stage of SECAGG_STAGES) {
        this.stageDuration.labels(stage).observe(metrics.secagg.stageMs[stage] / 1000);
        if (metrics.secagg.stageCpuMs) this.stageCpu.labels(stage).observe(metrics.secagg.stageCpuMs[stage] / 1000);
        this.dropouts.labels(stage).inc(metrics.secagg.dropouts[stage]);
      }
    } else {
      this.dropouts.labels(PLAIN_STAGE).inc(metrics.dropouts);
    }
    if (record.status === 'committed' && metrics.accuracy !== undefined) this.accuracy.set(metrics.accuracy);
    if (record.status === 'committed' && metrics.loss !== undefined) this.loss.set(metrics.loss);
    for (const listener of this.listeners) listener(metrics);
  };

  /** `sink`, timed into `shoal_checkpoint_write_seconds`. */
  timedCheckpoint(sink: RoundSink): RoundSink {
    return async (record) => {
      const stopTimer = this.checkpointWrite.startTimer();
      await sink(record);
      stopTimer();
    };
  }

  /** Calls `listener` with every round's metrics after they are counted; returns the unsubscribe. */
  onRound(listener: (metrics: RoundMetrics) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The Prometheus text exposition of every metric, and its content type. */
  async scrape(): Promise<{ readonly contentType: string; readonly text: string }> {
    // The live state walks every client and converts the accountant's RDP to ε: read it once here,
    // not once per gauge.
    this.scraping = this.live();
    try {
      return { contentType: this.registry.contentType, text: await this.registry.metrics() };
    } finally {
      this.scraping = undefined;
    }
  }
}
