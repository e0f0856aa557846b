import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ShoalError, decodeFrame, encodeFrame } from '@shoal/protocol';
import type { StrategyState } from '@shoal/strategy';
import type { PrivacyState } from './privacy.js';
import { writeFileAtomically } from './atomic-file.js';

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
}

const FILE_PATTERN = /^round-(\d{6,})\.ckpt$/;
const TEMP_PATTERN = /^round-\d{6,}\.ckpt\.tmp-\d+$/;
const KEEP = 3;

function fileName(round: number): string {
  return `round-${String(round).padStart(6, '0')}.ckpt`;
}

/**
 * Writes a checkpoint atomically: to a temporary file, fsync, then rename over the final name, so a
 * crash at any instant leaves either the old checkpoint or the new one, never half of one.
 */
export async function writeCheckpoint(dir: string, checkpoint: Checkpoint): Promise<string> {
  await mkdir(dir, { recursive: true });
  const finalPath = join(dir, fileName(checkpoint.round));
  await writeFileAtomically(finalPath, encodeFrame(checkpoint)); // its temp name matches TEMP_PATTERN
  await pruneOld(dir);
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

/** Keeps the newest KEEP checkpoints, and removes temp files that a crashed write left behind. */
async function pruneOld(dir: string): Promise<void> {
  const rounds = await listRounds(dir);
  for (const round of rounds.slice(0, Math.max(0, rounds.length - KEEP))) {
    await rm(join(dir, fileName(round)), { force: true });
  }
  for (const name of await readdir(dir)) {
    if (TEMP_PATTERN.test(name)) await rm(join(dir, name), { force: true });
  }
}
