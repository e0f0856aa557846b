import { describe, expect, it } from 'vitest';
import {
  Reconstructor,
  SecAggClient,
  SecAggError,
  SecAggServer,
  WordSum,
  decodeShare,
  deriveSecAggParams,
  elementToSecret,
  encodeUpdate,
  naclKeyAgreement,
  pairMaskKey,
  roundConfig,
  selfMaskKey,
} from '../src/index.js';
import type { SecAggParams } from '../src/index.js';
import { nodeMaskPrg } from '../src/node.js';
import { recordingRandomBytes, seededShuffle } from './harness.js';

// What a curious or lying coordinator can learn: nothing about one client's input.

/** Runs a round up to closeMasked, keeping what a coordinator sees and what only the test knows. */
async function roundUpToUnmask(params: SecAggParams, seed: string) {
  const indices = Array.from({ length: params.cohortSize }, (_, i) => i + 1);
  const context = { sessionId: 'session-a', round: 3 };
  const server = new SecAggServer({ ...context, params, indices, prg: nodeMaskPrg, shuffle: seededShuffle(9) });
  const randomness = new Map(indices.map((index) => [index, recordingRandomBytes(`${seed}/${index}`)]));
  const clients = indices.map(
    (index) => new SecAggClient({ config: roundConfig(params, index, context.sessionId), round: context.round, numParams: params.numParams, randomBytes: randomness.get(index)!.randomBytes, prg: nodeMaskPrg }),
  );
  const maskKeys = new Map<number, Uint8Array>();
  for (const client of clients) {
    const keys = client.advertise();
    maskKeys.set(client.index, keys.maskKey);
    server.receiveAdvertise(client.index, keys);
  }
  const keys = server.closeAdvertise();
  for (const client of clients) server.receiveShares(client.index, client.share(keys.get(client.index)!).ciphertexts);
  const inboxes = server.closeShares();
  const masked = new Map<number, Uint32Array>();
  const encoded = new Map<number, Uint32Array>();
  for (const client of clients) {
    client.receiveInbox(inboxes.get(client.index)!);
    const values = new Float32Array(params.numParams); // all zero: the least random input there is
    const recorder = randomness.get(client.index)!;
    recorder.record(true);
    const words = await client.mask(values, 1);
    recorder.record(false);
    encoded.set(client.index, encodeUpdate(values, 1, params, recorder.replay()));
    masked.set(client.index, words.slice());
    server.receiveMasked(client.index, words);
  }
  const close = server.closeMasked();
  return { server, clients, close, masked, encoded, maskKeys, context };
}

/** Upper-tail p-value of a chi-square statistic (Wilson–Hilferty normal approximation). */
function chiSquarePValue(statistic: number, degreesOfFreedom: number): number {
  const k = degreesOfFreedom;
  const z = (Math.cbrt(statistic / k) - (1 - 2 / (9 * k))) / Math.sqrt(2 / (9 * k));
  return 0.5 * erfc(z / Math.SQRT2);
}

/** erfc with |error| < 1.2e-7 (Numerical Recipes' Chebyshev fit). */
function erfc(x: number): number {
  const t = 1 / (1 + 0.5 * Math.abs(x));
  const y = t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? y : 2 - y;
}

/** χ² of the words bucketed into 256 bins by the byte at `shift`. */
function chiSquare(words: Uint32Array, shift: number): number {
  const bins = new Array<number>(256).fill(0);
  for (const word of words) bins[(word >>> shift) & 0xff]!++;
  const expected = words.length / 256;
  return bins.reduce((sum, count) => sum + (count - expected) ** 2 / expected, 0);
}

describe('a curious coordinator', () => {
  it.each([
    ['SecAgg', deriveSecAggParams({ mode: 'secagg', cohortSize: 5, numParams: 50_000, bound: 1, maxWeight: 10 })],
    ['SecAgg+', deriveSecAggParams({ mode: 'secagg+', cohortSize: 12, numParams: 50_000, bound: 1, maxWeight: 10 })],
  ])('%s: sees masked inputs that pass a chi-square test for uniform 32-bit words', async (_name, params) => {
    const { masked, encoded } = await roundUpToUnmask(params, 'uniform');
    const words = masked.get(1)!;
    for (const shift of [24, 16, 8, 0]) {
      const p = chiSquarePValue(chiSquare(words, shift), 255);
      expect(p, `byte at bit ${shift}`).toBeGreaterThan(1e-4);
    }
    // The test has power: the unmasked encoding of the same zero input fails it completely.
    expect(chiSquarePValue(chiSquare(encoded.get(1)!, 24), 255)).toBeLessThan(1e-12);
  }, 30_000);
});

describe('a lying coordinator', () => {
  // Full SecAgg, n = 8, t = 5 > k/2 = 4. The coordinator wants client 8's input alone, so it
  // tries to collect both b_8 and s_8^SK: it tells some clients "8 survived" and others "8
  // dropped". Each honest client answers a consistent-looking request, but reveals at most one
  // share of client 8, and 8 holders cannot give 2t = 10 shares.
  const params = deriveSecAggParams({ mode: 'secagg', cohortSize: 8, numParams: 64, bound: 1, maxWeight: 10 });
  const target = 8;

  async function attack(toldSurvived: number[], seed = 'lie') {
    const world = await roundUpToUnmask(params, seed);
    const everyone = [1, 2, 3, 4, 5, 6, 7, 8];
    const selfMaskShares: { x: number; y: bigint }[] = [];
    const maskKeyShares: { x: number; y: bigint }[] = [];
    for (const client of world.clients) {
      const lie = client.index === target || toldSurvived.includes(client.index)
        ? { survivors: everyone, dropped: [] }
        : { survivors: everyone.filter((v) => v !== target), dropped: [target] };
      const answer = client.reveal(lie); // honest clients accept: each request is consistent on its own
      for (const { of, share } of answer.selfMaskShares) if (of === target) selfMaskShares.push({ x: client.index, y: decodeShare(share)! });
      for (const { of, share } of answer.maskKeyShares) if (of === target) maskKeyShares.push({ x: client.index, y: decodeShare(share)! });
    }
    return { ...world, selfMaskShares, maskKeyShares };
  }

  /** What the coordinator recovers of x_8: masked_8 minus the masks it can rebuild. */
  async function unmaskTarget(world: Awaited<ReturnType<typeof attack>>, selfMaskSeed: Uint8Array, maskSecretKey: Uint8Array) {
    const words = new WordSum(params.numParams + 1);
    words.add(world.masked.get(target)!);
    await nodeMaskPrg.addTo(words, selfMaskKey(selfMaskSeed, world.context), -1);
    const others = [1, 2, 3, 4, 5, 6, 7];
    const agreed = naclKeyAgreement.agreeMany(maskSecretKey, others.map((v) => world.maskKeys.get(v)!));
    for (const [i, v] of others.entries()) {
      await nodeMaskPrg.addTo(words, pairMaskKey(agreed[i]!, target, v, world.context), target > v ? -1 : 1);
    }
    return words.toUint32Array();
  }

  const guess = (shares: { x: number; y: bigint }[]) => elementToSecret(new Reconstructor(shares.length).reconstruct(shares)) ?? new Uint8Array(32);

  it.each([
    ['4 others told "survived": b_8 has t shares, s_8^SK only t − 2', [1, 2, 3, 4], 5, 3],
    ['1 other told "survived": s_8^SK has t + 1 shares, b_8 only t − 3', [1], 2, 6],
  ])('%s, so x_8 stays masked', async (_name, toldSurvived, expectedSelf, expectedKey) => {
    const world = await attack(toldSurvived);
    expect(world.selfMaskShares).toHaveLength(expectedSelf);
    expect(world.maskKeyShares).toHaveLength(expectedKey);
    expect(world.selfMaskShares.length >= params.threshold && world.maskKeyShares.length >= params.threshold).toBe(false);
    const recovered = await unmaskTarget(world, guess(world.selfMaskShares), guess(world.maskKeyShares));
    const truth = world.encoded.get(target)!;
    const matching = recovered.filter((word, i) => word === truth[i]).length;
    expect(matching).toBeLessThanOrEqual(1); // chance agreement of uniform words is 64/2^32
  });

  it('the same unmasking succeeds when both secrets really are available (so the check above has power)', async () => {
    // Control: with t shares of each secret, which honest clients never give for one client,
    // the coordinator would recover x_8 exactly. Take b_8 from one attack and s_8^SK from another
    // run with the same seeds.
    const withSelfMask = await attack([1, 2, 3, 4], 'control');
    const withMaskKey = await attack([1], 'control');
    expect(withMaskKey.masked.get(target)).toEqual(withSelfMask.masked.get(target)); // same seeds, same round
    const recovered = await unmaskTarget(withSelfMask, guess(withSelfMask.selfMaskShares), guess(withMaskKey.maskKeyShares));
    expect(Array.from(recovered)).toEqual(Array.from(withSelfMask.encoded.get(target)!));
  });

  it('a client is refused outright when told it dropped itself, or when survivors and dropped overlap', async () => {
    const world = await roundUpToUnmask(params, 'refusals');
    const [first, second, third] = world.clients;
    expect(() => first!.reveal({ survivors: [2, 3, 4, 5, 6, 7, 8], dropped: [1] })).toThrow(SecAggError);
    expect(() => second!.reveal({ survivors: [1, 2, 3, 4, 5, 6, 7, 8], dropped: [8] })).toThrow(/8 is announced both as a survivor and as dropped/);
    expect(() => third!.reveal({ survivors: [3, 4, 5, 6], dropped: [1, 2, 7, 8] })).toThrow(/4 survivors announced; the threshold is 5/);
    for (const client of [first!, second!, third!]) expect(client.stage).toBe('failed');
  });
});
