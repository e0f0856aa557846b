import { createHash } from 'node:crypto';
import type { StrategyState } from '@shoal/strategy';
import { writeCheckpoint, type PruneOptions } from './checkpoint.js';
import type { LedgerHead, RoundEntry, Unchained } from './ledger.js';
import type { PrivacyState } from './privacy.js';
import type { RoundMetrics } from './round.js';

/**
 * What one finished round leaves behind, committed or aborted. Appending it to the `RoundLog` is
 * the only commit: checkpoints and metrics are sinks of the log, and the privacy ledger, the
 * dashboard and `/metrics` will be readers of it.
 */
export interface RoundRecord {
  readonly round: number;
  readonly status: 'committed' | 'aborted';
  /** Why an aborted round aborted. */
  readonly reason?: string;
  readonly metrics: RoundMetrics;
  readonly runId: string;
  /** The global model version after this round (unchanged by an aborted round). */
  readonly modelVersion: string;
  /** The global weights after this round. Shared, not copied: sinks must not change them. */
  readonly weights: Float32Array;
  /** SHA-256 of the weights' bytes, hex: what a ledger entry names the model by. */
  readonly weightsHash: string;
  readonly strategyName: string;
  readonly strategyState: StrategyState;
  /** With DP: the accountant and clip norm after this round. */
  readonly privacy?: PrivacyState;
  /** With DP, for a committed round: what the accountant was charged for it. */
  readonly charge?: { readonly sampleRate: number; readonly noiseMultiplier: number; readonly clipNorm: number };
  /**
   * Data-subject requests the coordinator answered since the previous record: counts only, never
   * who asked (the privacy ledger records them).
   */
  readonly subjectRequests?: { readonly access: number; readonly erasure: number };
}

/** Something that keeps or publishes records; awaited in order, so a checkpoint is durable before anyone hears of the round. */
export type RoundSink = (record: RoundRecord) => void | Promise<void>;

/**
 * A round about to let the coordinator learn a sum it counts as released (distributed DP: the
 * clients' noise is in it, and nothing protects it further), written before the coordinator asks
 * for the shares that unmask it: what the round will be charged, so that a coordinator that dies
 * before the round's commit still charges it on restart (`readRelease`).
 */
export interface Release {
  readonly runId: string;
  readonly round: number;
  readonly charge: NonNullable<RoundRecord['charge']>;
}

/** Something that makes a `Release` durable; awaited before the unmasking is asked for. */
export type ReleaseSink = (release: Release) => Promise<void>;

/**
 * The record of a round from its metrics and the state after it (the model, strategy and privacy
 * state it leaves; the model named by its hash). Its round, status, reason and model version are
 * the metrics'.
 */
export function roundRecord(
  metrics: RoundMetrics,
  after: { readonly runId: string; readonly weights: Float32Array; readonly strategyState: StrategyState; readonly privacy?: PrivacyState },
  strategyName: string,
  charge?: RoundRecord['charge'],
): RoundRecord {
  return {
    round: metrics.round,
    status: metrics.status,
    ...(metrics.reason !== undefined ? { reason: metrics.reason } : {}),
    metrics,
    runId: after.runId,
    modelVersion: metrics.modelVersion,
    weights: after.weights,
    weightsHash: weightsHash(after.weights),
    strategyName,
    strategyState: after.strategyState,
    ...(after.privacy ? { privacy: after.privacy } : {}),
    ...(charge ? { charge } : {}),
  };
}

/**
 * The append-only log of rounds: one record per round, in round order. `commit` runs the durable
 * sinks (checkpoint, ledger): the round's one commit, before anyone hears of the round. `publish`
 * then hands the record, with what was measured after the commit (federated evaluation), to the
 * observers (metrics, history, onRound). `append` is both, for a round with nothing to add.
 */
export class RoundLog {
  private lastRound = 0;

  constructor(
    private readonly sinks: readonly RoundSink[],
    private readonly observers: readonly RoundSink[] = [],
    private readonly releaseSinks: readonly ReleaseSink[] = [],
  ) {}

  /** Makes the record durable; returns it as committed (a subclass may add to it). */
  async commit(record: RoundRecord): Promise<RoundRecord> {
    if (record.round <= this.lastRound) throw new Error(`round log: round ${record.round} appended after round ${this.lastRound}`);
    this.lastRound = record.round;
    for (const sink of this.sinks) await sink(record);
    return record;
  }

  async publish(record: RoundRecord): Promise<void> {
    for (const observer of this.observers) await observer(record);
  }

  async append(record: RoundRecord): Promise<RoundRecord> {
    const committed = await this.commit(record);
    await this.publish(committed);
    return committed;
  }

  /** Records that a round's sum is about to be released (see `Release`); resolves once it is durable. */
  async release(release: Release): Promise<void> {
    for (const sink of this.releaseSinks) await sink(release);
  }
}

/** The sink that writes an atomic checkpoint of every record (aborted rounds too, so round numbers are never reused). */
export function checkpointSink(
  dir: string,
  ledgerHead: () => LedgerHead | undefined = () => undefined,
  prune: PruneOptions = {},
  ledgerEntry?: (record: RoundRecord) => Unchained<RoundEntry>,
): RoundSink {
  return async (record) => {
    await writeCheckpoint(dir, {
      formatVersion: 1,
      runId: record.runId,
      round: record.round,
      modelVersion: record.modelVersion,
      weights: record.weights,
      strategyName: record.strategyName,
      strategyState: record.strategyState,
      ...(record.privacy ? { privacy: record.privacy } : {}),
      ...(ledgerHead() ? { ledger: ledgerHead()! } : {}),
      ...(ledgerEntry ? { ledgerEntry: ledgerEntry(record) } : {}),
    }, prune);
  };
}

export function weightsHash(weights: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength)).digest('hex');
}
