// Shared by the two coordinator-side SecAgg benchmarks (secagg-server*.bench.ts).
import { createCipheriv, getRandomValues } from 'node:crypto';
import type { MaskPrg, WordSum } from '@shoal/secagg';
import { report } from './lib.js';

export const N = 500;
export const D = 100_000;
export const DROPOUT_RATES = [0, 0.1, 0.3] as const;

export function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let offset = 0; offset < n; offset += 65_536) getRandomValues(bytes.subarray(offset, Math.min(n, offset + 65_536)));
  return bytes;
}

const PIECE = new Uint8Array(64 * 1024);

/**
 * The server's PRG, measuring its own baseline: before each mask it produces the bare AES-128-CTR
 * keystream of that mask (same key and length, node:crypto, 64 KiB pieces, discarded) and times
 * it, then lets the real PRG add the mask. Baseline and candidate thus run interleaved, mask by
 * mask, under the same machine load (this machine is shared with other jobs), and the baseline's
 * time is subtracted from the server's.
 */
export class BaselineMeter implements MaskPrg {
  masks = 0;
  keystreamMs = 0;
  constructor(private readonly prg: MaskPrg) {}

  expand(key: Uint8Array, words: number): Promise<Uint32Array> {
    return this.prg.expand(key, words);
  }

  async addTo(sum: WordSum, key: Uint8Array, sign: 1 | -1): Promise<void> {
    const t0 = performance.now();
    const bytes = 4 * sum.length;
    const cipher = createCipheriv('aes-128-ctr', key, new Uint8Array(16));
    for (let offset = 0; offset < bytes; offset += PIECE.length) cipher.update(PIECE.subarray(0, Math.min(PIECE.length, bytes - offset)));
    this.keystreamMs += performance.now() - t0;
    this.masks++;
    await this.prg.addTo(sum, key, sign);
  }
}

/** Wall-clock milliseconds of `fn`. */
export async function timed<T>(fn: () => T | Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

export interface UnmaskTimings {
  /** closeMasked + every receiveReveal + finish, less the interleaved baseline keystreams. */
  readonly unmaskMs: number;
  readonly finishMs: number;
  readonly revealMs: number;
  /** Folding the masked inputs into the running sum as they arrived (receiveMasked). */
  readonly foldMs: number;
  readonly survivors: number;
  readonly dropped: number;
}

/** Prints one scenario: the server's unmasking time against the bare keystream time of the masks it regenerated. */
export function reportUnmask(label: string, timings: UnmaskTimings, meter: BaselineMeter, check: string): void {
  report(
    `${label}: unmasking vs bare keystream of its ${meter.masks.toLocaleString('en')} masks`,
    timings.unmaskMs / meter.keystreamMs,
    `unmask ${timings.unmaskMs.toFixed(0)} ms (finish ${timings.finishMs.toFixed(0)}, reveals ${timings.revealMs.toFixed(0)}), ` +
      `keystreams alone ${meter.keystreamMs.toFixed(0)} ms (${(meter.keystreamMs / meter.masks).toFixed(3)} ms each); ` +
      `folding ${timings.survivors} masked inputs ${timings.foldMs.toFixed(0)} ms; ${timings.dropped} dropped; ${check}`,
    { op: '<=', value: 1.5 },
  );
}
