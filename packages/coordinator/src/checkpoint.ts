import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ShoalError, decodeFrame, encodeFrame } from '@shoal/protocol';
import type { StrategyState } from '@shoal/strategy';
import type { LedgerHead, RoundEntry, Unchained } from './ledger.js';
import type { PrivacyState } from './privacy.js';
import { readTextIfPresent, writeFileAtomically } from './atomic-file.js';
import type { Release } from './round-log.js';

/** Everything needed to resume training after the round it was written for. */
export interface Checkpoint {
  readonly formatVersion: 1;
  /** Random per training run; part of every model version id. */
  readonly runId: string;
  /** The last finished round (committed or aborted); training resumes at round + 1. */
  readonly round: number;
  readonly modelVersion: string;
  readonly weights: Float32Array;
  /** Which strategy the state belongs to: resuming with another strategy is refused. */
  readonly strategyName: string;
  readonly strategyState: StrategyState;
  /** The privacy accountant and clip norm, when DP is on: a restart must not reset the ε spent. */
  readonly privacy?: PrivacyState;
  /**
   * The privacy ledger's newest entry when this checkpoint was written (before this round's entry:
   * the ledger sink runs after the checkpoint sink), so cutting entries off the ledger shows.
   */
  readonly ledger?: LedgerHead;
  /**
   * This round's privacy-ledger entry, as the ledger sink writes it after this checkpoint: a
   * restart that finds the ledger one round behind (a crash between the two writes) appends it,
   * so the ledger records every round itself.
   */
  readonly ledgerEntry?: Unchained<RoundEntry>;
}

const FILE_PATTERN = /^round-(\d{6,})\.ckpt$/;
/** Temporary files of a crashed atomic write (a checkpoint's or the release journal's). */
const TEMP_PATTERN = /^(round-\d{6,}\.ckpt|release\.json)\.tmp-\d+$/;

/**
 * How long checkpoints are kept (`server.retention`, docs/privacy.md "Retention"). Applied each time
 * a checkpoint is written; the newest checkpoint is always kept, whatever its age.
 */
export interface RetentionOptions {
  /** Checkpoints kept at most, the newest first. Default 3. */
  readonly keepCheckpoints?: number;
  /** Checkpoints whose file is older than this (by modification time) are deleted. Default: no age limit. */
  readonly maxCheckpointAgeMs?: number;
}

export const RETENTION_DEFAULTS = { keepCheckpoints: 3 } as const;

/** `options` with its defaults filled in. */
export function retentionOf(options: RetentionOptions | undefined): { readonly keepCheckpoints: number; readonly maxCheckpointAgeMs?: number } {
  return { keepCheckpoints: options?.keepCheckpoints ?? RETENTION_DEFAULTS.keepCheckpoints, ...(options?.maxCheckpointAgeMs !== undefined ? { maxCheckpointAgeMs: options.maxCheckpointAgeMs } : {}) };
}

/** How a checkpoint write prunes: the retention rules, and the clock file ages are measured with (injected in tests). */
export interface PruneOptions {
  readonly retention?: RetentionOptions;
  /** Milliseconds since the epoch, the clock file modification times are on. Default Date.now. */
  readonly now?: () => number;
}

function fileName(round: number): string {
  return `round-${String(round).padStart(6, '0')}.ckpt`;
}

/**
 * Writes a checkpoint atomically: to a temporary file, fsync, then rename over the final name, so a
 * crash at any instant leaves either the old checkpoint or the new one, never half of one.
 */
export async function writeCheckpoint(dir: string, checkpoint: Checkpoint, prune: PruneOptions = {}): Promise<string> {
  await mkdir(dir, { recursive: true });
  const finalPath = join(dir, fileName(checkpoint.round));
  await writeFileAtomically(finalPath, encodeFrame(checkpoint)); // its temp name matches TEMP_PATTERN
  await pruneOld(dir, retentionOf(prune.retention), (prune.now ?? Date.now)());
  return finalPath;
}

/** The newest checkpoint in `dir`, or undefined when there is none (or the folder is missing). */
export async function readLatestCheckpoint(dir: string): Promise<Checkpoint | undefined> {
  const rounds = await listRounds(dir);
  const latest = rounds.at(-1);
  if (latest === undefined) return undefined;
  const path = join(dir, fileName(latest));
  let value: unknown;
  try {
    value = decodeFrame(await readFile(path));
  } catch (cause) {
    throw new ShoalError('CHECKPOINT_CORRUPT', `checkpoint ${path} is not readable msgpack; move it away to resume from an older one`, { cause });
  }
  // A file may hold valid msgpack that is not an object at all (e.g. a single nil byte).
  const checkpoint = (typeof value === 'object' && value !== null ? value : {}) as Partial<Checkpoint>;
  if (
    checkpoint.formatVersion !== 1 ||
    typeof checkpoint.runId !== 'string' ||
    checkpoint.round !== latest ||
    typeof checkpoint.modelVersion !== 'string' ||
    typeof checkpoint.strategyName !== 'string' ||
    !(checkpoint.weights instanceof Float32Array) ||
    typeof checkpoint.strategyState !== 'object' ||
    checkpoint.strategyState === null
  ) {
    throw new ShoalError('CHECKPOINT_CORRUPT', `checkpoint ${path} is missing fields or has the wrong format version`);
  }
  return { ...(checkpoint as Checkpoint), weights: checkpoint.weights.slice() };
}

/**
 * The release journal (see `Release`): one file, the newest release, in the checkpoint folder. A
 * release of a round that has no checkpoint yet is one the coordinator died before committing.
 */
export const RELEASE_FILE = 'release.json';

export async function writeRelease(dir: string, release: Release): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFileAtomically(join(dir, RELEASE_FILE), `${JSON.stringify({ formatVersion: 1, ...release })}\n`);
}

/** The newest release written in `dir`, or undefined when none was. */
export async function readRelease(dir: string): Promise<Release | undefined> {
  const path = join(dir, RELEASE_FILE);
  const text = await readTextIfPresent(path);
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new ShoalError('CHECKPOINT_CORRUPT', `release journal ${path} is not JSON; it records a round whose charge must not be lost: restore it from a backup`, { cause });
  }
  const release = (typeof value === 'object' && value !== null ? value : {}) as Partial<Release> & { formatVersion?: unknown };
  const charge = release.charge as Partial<Release['charge']> | undefined;
  if (
    release.formatVersion !== 1 ||
    typeof release.runId !== 'string' ||
    !Number.isSafeInteger(release.round) ||
    release.round! < 1 ||
    typeof charge !== 'object' ||
    charge === null ||
    !(typeof charge.sampleRate === 'number' && charge.sampleRate > 0 && charge.sampleRate <= 1) ||
    !(typeof charge.noiseMultiplier === 'number' && charge.noiseMultiplier >= 0) ||
    !(typeof charge.clipNorm === 'number' && charge.clipNorm > 0)
  ) {
    throw new ShoalError('CHECKPOINT_CORRUPT', `release journal ${path} is missing fields or has the wrong format version; it records a round whose charge must not be lost: restore it from a backup`);
  }
  return { runId: release.runId, round: release.round!, charge: { sampleRate: charge.sampleRate, noiseMultiplier: charge.noiseMultiplier, clipNorm: charge.clipNorm } };
}

async function listRounds(dir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names
    .map((name) => FILE_PATTERN.exec(name)?.[1])
    .filter((round): round is string => round !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/**
 * Applies the retention rules (the newest `keepCheckpoints`, and of those only the ones younger
 * than `maxCheckpointAgeMs` at `nowMs`, the newest always), and removes temp files that a crashed
 * write left behind.
 */
async function pruneOld(dir: string, retention: ReturnType<typeof retentionOf>, nowMs: number): Promise<void> {
  const rounds = await listRounds(dir);
  const keptByCount = rounds.slice(-retention.keepCheckpoints);
  for (const round of rounds.slice(0, rounds.length - keptByCount.length)) {
    await rm(join(dir, fileName(round)), { force: true });
  }
  if (retention.maxCheckpointAgeMs !== undefined) {
    for (const round of keptByCount.slice(0, -1)) {
      const path = join(dir, fileName(round));
      const modifiedMs = (await stat(path)).mtimeMs;
      if (nowMs - modifiedMs > retention.maxCheckpointAgeMs) await rm(path, { force: true });
    }
  }
  for (const name of await readdir(dir)) {
    if (TEMP_PATTERN.test(name)) await rm(join(dir, name), { force: true });
  }
}
