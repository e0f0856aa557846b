import { SecAggAbort } from './errors.js';
import type { KeyAgreement, RoundContext } from './keys.js';
import type { MaskPrg } from './prg.js';
import { pairMaskKey, selfMaskKey } from './prg.js';
import { WordSum } from './word-sum.js';

/**
 * The mask regeneration at the end of a SecAgg round, cut into serialisable jobs (plain data:
 * numbers and byte arrays) that any thread can run with its own PRG and key agreement. Each job
 * yields a partial sum of the masks it removes; partial sums add up mod 2^32 in any order, so the
 * unmasked sum is bit for bit the same however the work is cut and wherever it runs.
 */
export interface UnmaskJob {
  readonly context: RoundContext;
  /** Words of the sum: numParams + 1. */
  readonly words: number;
  /** Rebuilt self-mask seeds b_u of survivors: the job removes PRG(b_u) for each. */
  readonly selfMaskSeeds: readonly Uint8Array[];
  /** Dropped clients' pairwise masks with (some of) their surviving neighbours. */
  readonly pairMasks: readonly PairMasks[];
}

/** The pairwise masks between one dropped client and some of its surviving neighbours. */
export interface PairMasks {
  readonly dropped: number;
  /** s_v^SK, rebuilt from the survivors' shares and already checked against the advertised key. */
  readonly secretKey: Uint8Array;
  readonly survivors: readonly { readonly index: number; readonly maskKey: Uint8Array }[];
}

/**
 * Runs a round's unmask jobs somewhere else (the coordinator's worker threads). Injected into
 * `SecAggServer.finish`, so this package stays free of threads and I/O.
 */
export interface UnmaskRunner {
  /** How many jobs to cut `masks` masks of `words` words each into; 0 keeps the work in the calling thread. */
  parts(masks: number, words: number): number;
  /** Each job's partial sum (`unmaskPartial`), in job order. Rejects with SecAggAbort when a job cannot run. */
  run(jobs: readonly UnmaskJob[]): Promise<readonly Uint32Array[]>;
}

/** Masks a job removes (one keystream each). */
export function jobMasks(job: UnmaskJob): number {
  return job.selfMaskSeeds.length + job.pairMasks.reduce((count, pair) => count + pair.survivors.length, 0);
}

/**
 * Cuts the work into `parts` jobs of nearly equal mask counts (a dropped client's neighbours may
 * be split between two jobs): self masks first, then pairwise masks in the given order. Never
 * returns an empty job, so fewer than `parts` when there are fewer masks.
 */
export function splitUnmaskJobs(whole: UnmaskJob, parts: number): UnmaskJob[] {
  if (!Number.isSafeInteger(parts) || parts < 1) throw new RangeError(`parts must be an integer ≥ 1, got ${parts}`);
  type Unit = { readonly seed: Uint8Array } | { readonly pair: PairMasks; readonly survivor: PairMasks['survivors'][number] };
  const units: Unit[] = [...whole.selfMaskSeeds.map((seed) => ({ seed })), ...whole.pairMasks.flatMap((pair) => pair.survivors.map((survivor) => ({ pair, survivor })))];
  const jobs: UnmaskJob[] = [];
  for (let part = 0; part < parts; part++) {
    const slice = units.slice(Math.floor((part * units.length) / parts), Math.floor(((part + 1) * units.length) / parts));
    if (slice.length === 0) continue;
    const selfMaskSeeds: Uint8Array[] = [];
    const pairMasks: { dropped: number; secretKey: Uint8Array; survivors: PairMasks['survivors'][number][] }[] = [];
    for (const unit of slice) {
      if ('seed' in unit) {
        selfMaskSeeds.push(unit.seed);
        continue;
      }
      const last = pairMasks.at(-1);
      if (last?.dropped === unit.pair.dropped) last.survivors.push(unit.survivor);
      else pairMasks.push({ dropped: unit.pair.dropped, secretKey: unit.pair.secretKey, survivors: [unit.survivor] });
    }
    jobs.push({ context: whole.context, words: whole.words, selfMaskSeeds, pairMasks });
  }
  return jobs;
}

/**
 * Removes the job's masks from `sum` in place: −PRG(b_u) for each self-mask seed; for each dropped
 * v and surviving neighbour u, X25519(s_v^SK, s_u^PK) → PRG(s_uv), which u added when u > v and
 * subtracted otherwise: undo exactly that.
 */
export async function removeMasks(sum: WordSum, job: UnmaskJob, prg: MaskPrg, agreement: KeyAgreement): Promise<void> {
  if (sum.length !== job.words) throw new RangeError(`a job of ${job.words} words cannot unmask a sum of ${sum.length}`);
  for (const seed of job.selfMaskSeeds) await prg.addTo(sum, selfMaskKey(seed, job.context), -1);
  for (const { dropped: v, secretKey, survivors } of job.pairMasks) {
    const agreed = agreement.agreeMany(secretKey, survivors.map((u) => u.maskKey));
    for (const [i, { index: u }] of survivors.entries()) {
      const maskSecret = agreed[i];
      if (maskSecret == null) throw new SecAggAbort(`no mask secret between ${v} and ${u}`); // advertise rejects small-order keys
      await prg.addTo(sum, pairMaskKey(maskSecret, u, v, job.context), u > v ? -1 : 1);
    }
  }
}

/** The job's partial sum: its masks removed from zero (what a worker thread sends back). */
export async function unmaskPartial(job: UnmaskJob, prg: MaskPrg, agreement: KeyAgreement): Promise<Uint32Array> {
  const sum = new WordSum(job.words);
  await removeMasks(sum, job, prg, agreement);
  return sum.toUint32Array();
}
