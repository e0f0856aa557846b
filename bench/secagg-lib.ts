// Shared by the SecAgg benchmarks (secagg-*.bench.ts): sizes, randomness, the interleaved keystream
// baseline of the coordinator benchmarks, Ed25519 stand-ins for "the round without the consistency
// check", and the correctness bookkeeping that makes a bench exit non-zero.
import { createCipheriv, getRandomValues } from 'node:crypto';
import { MIN_POOL_MASK_WORDS, UnmaskWorkers } from '@shoal/coordinator';
import type { NeighbourKeys } from '@shoal/protocol';
import { FIELD_PRIME, SIGNATURE_BYTES, WordSum as Words, advertisementMessage, deriveSecAggParams, keyPairFromSecret, removeMasks, splitUnmaskJobs, survivorsMessage } from '@shoal/secagg';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '@shoal/secagg/node';
import type { KeyPair, MaskPrg, SecAggServer, Signing, SigningKeyPair, SurvivorSignature, WordSum } from '@shoal/secagg';
import { QUICK, checkSame, report, sized } from './lib.js';

/** Flower's benchmark size; quick mode (lib.ts) shrinks it so a whole round takes a second or two. */
export const N = sized(500, 40);
export const D = sized(100_000, 2_000);
export const DROPOUT_RATES = [0, 0.1, 0.3] as const;

export function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let offset = 0; offset < n; offset += 65_536) getRandomValues(bytes.subarray(offset, Math.min(n, offset + 65_536)));
  return bytes;
}

export const median = (xs: readonly number[]): number => quantile(xs, 0.5);

/** The q-quantile of `xs` (nearest rank from below; the upper middle for an even count at 0.5). */
export function quantile(xs: readonly number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * One client's SecAgg+ round at Flower's size, as the client benches time it (secagg-client and
 * secagg-client-browser): the client is mid-ring (its k − 1 neighbours are the (k − 1) / 2 on
 * either side), nobody drops (U3 is all n clients: the largest message to sign, only b_v shares
 * revealed), and each neighbour has its keys, its signed advertisement, the shares it seals to the
 * client, and its signature of any survivor set.
 */
export function clientRoundFixture(session: string, round: number) {
  const params = deriveSecAggParams({ mode: 'secagg+', cohortSize: N, numParams: D, bound: 10, maxWeight: 1000 });
  const context = { sessionId: session, round };
  const me = N / 2;
  const half = (params.degree - 1) / 2;
  const neighbourIndices = Array.from({ length: params.degree - 1 }, (_, i) => me - half + i + (i >= half ? 1 : 0));
  const neighbours = neighbourIndices.map((index) => {
    const encryption: KeyPair = keyPairFromSecret(randomBytes(32));
    const mask: KeyPair = keyPairFromSecret(randomBytes(32));
    const signingSeed = randomBytes(32);
    const keys = { encryptionKey: encryption.publicKey, maskKey: mask.publicKey, signingKey: nodeSigning.keyPair(signingSeed).publicKey };
    const advertisement: NeighbourKeys = { index, ...keys, signature: nodeSigning.sign(nodeSigning.keyPair(signingSeed), advertisementMessage(context, index, keys)) };
    const sealed = { selfMaskShare: (BigInt(index) * 1_000_003n) % FIELD_PRIME, maskKeyShare: 7n };
    return { index, encryption, mask, signingSeed, advertisement, sealed };
  });
  const signaturesOf = (set: readonly number[]): SurvivorSignature[] =>
    neighbours.map((n) => ({ index: n.index, signature: nodeSigning.sign(nodeSigning.keyPair(n.signingSeed), survivorsMessage(context, set)) }));
  const survivors = Array.from({ length: N }, (_, i) => i + 1);
  return {
    params,
    context,
    me,
    values: Float32Array.from({ length: D }, (_, i) => Math.sin(i) * 5),
    survivors,
    neighbours,
    neighbourKeys: neighbours.map((n) => n.advertisement),
    signaturesOf,
    /** What the coordinator forwards in `unmask` (SecAggServer.closeConfirm): t − 1 neighbours' signatures of U3. */
    forwarded: signaturesOf(survivors).slice(0, params.threshold - 1),
  };
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

/**
 * Ed25519 replaced by nothing: signs with 64 zero bytes and accepts every signature. A round run
 * with it does everything today's round did before the consistency check (Bonawitz et al. §4) and
 * only the check's bookkeeping besides (building the signed bytes, a few set lookups), which the
 * benchmarks time and subtract, so it stands for "the round without the consistency check".
 * Never use it outside a benchmark.
 */
export const unsignedSigning: Signing = {
  keyPair: (seed) => ({ seed, publicKey: seed.slice() }),
  sign: () => new Uint8Array(SIGNATURE_BYTES),
  verify: () => true,
};

/** A Signing that counts and times every call it passes on. */
export class MeteredSigning implements Signing {
  signs = 0;
  verifies = 0;
  ms = 0;
  constructor(private readonly inner: Signing) {}

  keyPair(seed: Uint8Array): SigningKeyPair {
    return this.timed(() => this.inner.keyPair(seed));
  }

  sign(keyPair: SigningKeyPair, message: Uint8Array): Uint8Array {
    this.signs++;
    return this.timed(() => this.inner.sign(keyPair, message));
  }

  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    this.verifies++;
    return this.timed(() => this.inner.verify(publicKey, message, signature));
  }

  private timed<T>(fn: () => T): T {
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      this.ms += performance.now() - t0;
    }
  }
}

// The correctness checks live in lib.ts, shared by every bench; re-exported for the SecAgg benches.
export { check, exitOnFailedChecks } from './lib.js';

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
  /** The consistency check: every receiveConfirm and closeConfirm (not part of unmaskMs). */
  readonly confirmMs: number;
  /** Folding the masked inputs into the running sum as they arrived (receiveMasked). */
  readonly foldMs: number;
  readonly survivors: number;
  readonly dropped: number;
}

/** Prints one scenario: the server's unmasking time against the bare keystream time of the masks it regenerated. */
export function reportUnmask(label: string, timings: UnmaskTimings, meter: BaselineMeter, checks: string): void {
  report(
    `${label}: unmasking vs bare keystream of its ${meter.masks.toLocaleString('en')} masks`,
    timings.unmaskMs / meter.keystreamMs,
    `unmask ${timings.unmaskMs.toFixed(0)} ms (finish ${timings.finishMs.toFixed(0)}, reveals ${timings.revealMs.toFixed(0)}), ` +
      `keystreams alone ${meter.keystreamMs.toFixed(0)} ms (${(meter.keystreamMs / meter.masks).toFixed(3)} ms each); ` +
      `consistency check (confirms + closeConfirm, not in unmask) ${timings.confirmMs.toFixed(0)} ms; ` +
      `folding ${timings.survivors} masked inputs ${timings.foldMs.toFixed(0)} ms; ${timings.dropped} dropped; ${checks}`,
    { op: '<=', value: 1.5 },
  );
}

/**
 * Unmasking in one thread against the coordinator's pool of worker threads (`UnmaskWorkers`, its
 * default thread count and crossover), in the same run: `pairs` times, alternately, a fresh
 * server brought to the unmask stage by `atUnmask` is finished (closeMasked through finish is
 * already done by `atUnmask`; only finish() is timed) in this thread and on the pool. Both sums
 * must equal `expected` word for word (else exit 1). Reports the median of one-thread / pool
 * times, target ≥ 1.7× on 2 cores; below the pool's crossover both run in this thread (~1×),
 * except in quick mode.
 */
export async function reportWorkers(label: string, atUnmask: () => Promise<SecAggServer>, expected: Uint32Array, masks: number, pairs: number): Promise<void> {
  // Quick mode's rounds are far below the crossover: use the threads anyway, so `npm test` checks their sums.
  const pool = new UnmaskWorkers(QUICK ? { minMaskWords: 0 } : {});
  try {
    // Threads start once per coordinator run (the first big round pays it); timed apart.
    const starting = await timed(() => pool.run([{ context: { sessionId: 'warm-up', round: 0 }, words: 4, selfMaskSeeds: [new Uint8Array(32)], pairMasks: [] }]));
    const ratios: number[] = [];
    const times: { one: number; pool: number }[] = [];
    let exact = true;
    for (let pair = 0; pair < pairs; pair++) {
      const first = await atUnmask();
      const alone = await timed(() => first.finish());
      const second = await atUnmask();
      const spread = await timed(() => second.finish(pool));
      exact &&= checkSame(alone.value.encodedSum, expected, `${label}: the sum unmasked in one thread is exact`);
      exact &&= checkSame(spread.value.encodedSum, expected, `${label}: the sum unmasked on ${pool.threads} worker threads is exact (bit for bit the one-thread sum)`);
      ratios.push(alone.ms / spread.ms);
      times.push({ one: alone.ms, pool: spread.ms });
    }
    const words = expected.length;
    const used = pool.parts(masks, words) > 0;
    report(
      `${label}: finish() in one thread / on ${pool.threads} worker threads`,
      median(ratios),
      `${times.map((t) => `${t.one.toFixed(0)} vs ${t.pool.toFixed(0)} ms`).join(', ')} (one thread vs pool, each pair); starting the threads ${starting.ms.toFixed(0)} ms once; ` +
        `${masks.toLocaleString('en')} masks × ${words.toLocaleString('en')} words ${used ? 'above' : 'below'} the crossover: ${used ? 'threads used' : 'kept in this thread'}; exact: ${exact ? 'yes' : 'NO'}`,
      { op: '>=', value: 1.7 },
    );
  } finally {
    await pool.close();
  }
}

/**
 * Where the worker pool starts to pay (MIN_POOL_MASK_WORDS): self masks of `words` words, m of
 * them for growing m, removed in this thread against the warm pool (jobs posted, partial sums
 * added back), alternately, median of `samples` each. Both results must be equal word for word.
 */
export async function reportCrossover(words: number, maskCounts: readonly number[], samples: number): Promise<void> {
  const pool = new UnmaskWorkers();
  try {
    await pool.run([{ context: { sessionId: 'warm-up', round: 0 }, words: 4, selfMaskSeeds: [new Uint8Array(32)], pairMasks: [] }]);
    for (const masks of maskCounts) {
      const job = { context: { sessionId: 'crossover', round: 1 }, words, selfMaskSeeds: Array.from({ length: masks }, () => randomBytes(32)), pairMasks: [] };
      const one: number[] = [];
      const spread: number[] = [];
      let same = true;
      for (let sample = 0; sample < samples; sample++) {
        const alone = new Words(words);
        one.push((await timed(() => removeMasks(alone, job, nodeMaskPrg, nodeKeyAgreement))).ms);
        const together = new Words(words);
        spread.push((await timed(async () => {
          for (const partial of await pool.run(splitUnmaskJobs(job, pool.threads))) together.add(partial);
        })).ms);
        same &&= checkSame(together.toUint32Array(), alone.toUint32Array(), `crossover, ${masks} masks: the pool's sum is the one-thread sum`);
      }
      report(
        `unmask crossover, ${masks} masks × ${words.toLocaleString('en')} words (${(masks * words).toExponential(1)} mask words; pool used from ${MIN_POOL_MASK_WORDS.toExponential(1)})`,
        median(one) / median(spread),
        `one thread ${median(one).toFixed(1)} ms, warm pool of ${pool.threads} ${median(spread).toFixed(1)} ms (medians of ${samples}); equal: ${same ? 'yes' : 'NO'}`,
      );
    }
  } finally {
    await pool.close();
  }
}
