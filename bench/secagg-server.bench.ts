// The coordinator's side of SecAgg+ at Flower's benchmark size, n = 500, d = 100,000 (k = 27,
// t = 18 from deriveSecAggParams), with 0 %, 10 % and 30 % of the clients dropping after sharing.
// Every client is a real SecAggClient (node:crypto PRG, X25519 and Ed25519), so the round is real
// end to end; the dropped clients are spread evenly over the ring, so no neighbourhood loses more
// than t tolerates (random dropouts of 30 % would break some neighbourhood of 27 and abort the
// round: see docs/secagg.md).
//
// 1. Unmasking. Timed: closeMasked, every receiveReveal, and finish() (rebuild the secrets,
//    regenerate and remove the masks, decode), as a ratio to the bare AES-CTR keystream time of the
//    masks it regenerates (target ≤ 1.5×), measured interleaved with it (see BaselineMeter). The
//    consistency check (every receiveConfirm, closeConfirm) is timed apart. Flower publishes
//    18.8 / 27.2 / 37.7 s for its server at 0 / 10 / 30 % (k = 19).
// 2. The consistency check's cost (0 % dropouts, where it is largest: n confirmations). The
//    clients' messages of the real round are recorded, then replayed into fresh servers: the whole
//    server round (every receive* and close*, finish) with Ed25519 (node:crypto, as the coordinator
//    runs it: n advertisement signatures and n confirmations verified, each survivor's neighbour
//    signatures gathered to forward), alternating with the same replay without signatures
//    (`unsignedSigning`); the unsigned replay's confirm stage (the check's bookkeeping) is subtracted
//    from it, leaving today's round without the check. Reported: the median over pairs of
//    signed / (unsigned − its confirm stage).
//
// 3. Unmasking on worker threads: the recorded round replayed into fresh servers, finish() in one
//    thread against finish() on the coordinator's UnmaskWorkers pool, alternately (target ≥ 1.7×
//    on 2 cores); both sums must be exact. Then where the pool starts to pay: self masks of d words
//    removed in one thread against the warm pool, for growing mask counts (MIN_POOL_MASK_WORDS).
//
// Exits 1 if the unmasked sum is not exactly the survivors' encoded inputs summed mod 2^32 (each
// client's rounding bytes are recorded to encode them) or not within count/scale of the plain
// sum, if the mask count is wrong, or if a replay gives another sum.
import { createSeededRandom, shuffled } from '@shoal/protocol';
import { SecAggClient, SecAggServer, WordSum, deriveSecAggParams, encodeUpdate, roundConfig } from '@shoal/secagg';
import type { MaskPrg, RevealAnswer, Signing, SurvivorSignature } from '@shoal/secagg';
import type { NeighbourKeys } from '@shoal/protocol';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '@shoal/secagg/node';
import { checkSame, report, sized } from './lib.js';
import { BaselineMeter, D, DROPOUT_RATES, MeteredSigning, N, check, exitOnFailedChecks, median, quantile, randomBytes, reportCrossover, reportUnmask, reportWorkers, timed, unsignedSigning } from './secagg-lib.js';

const params = deriveSecAggParams({ mode: 'secagg+', cohortSize: N, numParams: D, bound: 10, maxWeight: 1000 });
const values = (index: number) => Float32Array.from({ length: D }, (_, i) => Math.sin(index + i * 0.01) * params.bound * 0.5);
const context = { sessionId: 'bench', round: 1 };
const indices = Array.from({ length: N }, (_, i) => i + 1);
const REPLAY_PAIRS = sized(5, 1);
/** Pairs of one-thread and worker-pool unmaskings per dropout rate. */
const WORKER_PAIRS = sized(3, 1);
console.log(`SecAgg+ server, n = ${N}, d = ${D.toLocaleString('en')}: k = ${params.degree}, t = ${params.threshold}`);

/** The ring of every server of a scenario: the same seed gives the same permutation, so replays see the real round's graph. */
const ringShuffle = () => {
  const random = createSeededRandom(42);
  return <T>(items: readonly T[]): T[] => shuffled(items, random);
};

/** What the clients sent the server in one round, in order, so the round can be replayed. */
interface Recording {
  readonly advertisements: (readonly [number, Omit<NeighbourKeys, 'index'>])[];
  readonly shares: (readonly [number, { to: number; box: Uint8Array }[]])[];
  readonly masked: (readonly [number, Uint32Array])[];
  readonly confirmations: (readonly [number, Uint8Array])[];
  readonly reveals: (readonly [number, RevealAnswer])[];
}

const rates = process.argv[2] === undefined ? DROPOUT_RATES : [Number(process.argv[2])];
for (const rate of rates) {
  const percent = Math.round(rate * 100);
  const meter = new BaselineMeter(nodeMaskPrg);
  const server = new SecAggServer({ ...context, params, indices, prg: meter, agreement: nodeKeyAgreement, signing: nodeSigning, shuffle: ringShuffle() });
  // Every ⌈1/rate⌉-ish place on the ring drops: evenly spread, rate·N clients in all.
  const ring = ringShuffle()(indices);
  const dropped = new Set(ring.filter((_, position) => Math.floor((position + 1) * rate) > Math.floor(position * rate)));
  // Each client's stochastic-rounding bytes, kept so the expected sum can be encoded exactly as the clients did.
  const rounding = new Map<number, Uint8Array[]>(indices.map((index) => [index, []]));
  const roundingBytesOf = (index: number) => (n: number) => {
    const bytes = randomBytes(n);
    rounding.get(index)!.push(bytes);
    return bytes;
  };
  const clients = indices.map(
    (index) =>
      new SecAggClient({
        config: roundConfig(params, index, context.sessionId),
        round: context.round,
        numParams: D,
        randomBytes,
        roundingBytes: roundingBytesOf(index),
        prg: nodeMaskPrg,
        agreement: nodeKeyAgreement,
        signing: nodeSigning,
      }),
  );
  const recording: Recording = { advertisements: [], shares: [], masked: [], confirmations: [], reveals: [] };
  for (const client of clients) {
    const advertised = client.advertise();
    recording.advertisements.push([client.index, advertised]);
    server.receiveAdvertise(client.index, advertised);
  }
  const keys = server.closeAdvertise();
  for (const client of clients) {
    const { ciphertexts } = client.share(keys.get(client.index)!);
    recording.shares.push([client.index, ciphertexts]);
    server.receiveShares(client.index, ciphertexts);
  }
  const inboxes = server.closeShares();
  let foldMs = 0;
  const plainSum = new Float64Array(D);
  const encodedSum = new WordSum(D + 1); // the survivors' encoded inputs, summed mod 2^32 without masks
  for (const client of clients) {
    if (dropped.has(client.index)) continue;
    client.receiveInbox(inboxes.get(client.index)!);
    const input = values(client.index);
    input.forEach((v, i) => (plainSum[i] = plainSum[i]! + v));
    const masked = await client.mask(input, 1);
    const replayed = [...rounding.get(client.index)!];
    encodedSum.add(encodeUpdate(input, 1, params, () => replayed.shift()!));
    recording.masked.push([client.index, masked]);
    foldMs += (await timed(() => server.receiveMasked(client.index, masked))).ms;
  }

  const closing = await timed(() => server.closeMasked());
  const close = closing.value;
  const survivors = clients.filter((c) => close.survivors.includes(c.index));
  const confirmations = survivors.map((c) => [c.index, c.confirm(close.survivors)] as const);
  const confirming = await timed(() => {
    for (const [index, signature] of confirmations) server.receiveConfirm(index, signature);
    return server.closeConfirm();
  });
  const answers = survivors.filter((c) => confirming.value.has(c.index)).map((c) => [c.index, c.reveal(confirming.value.get(c.index)!)] as const);
  recording.confirmations.push(...confirmations);
  recording.reveals.push(...answers);
  const revealing = await timed(() => {
    for (const [index, answer] of answers) server.receiveReveal(index, answer);
  });
  const finishing = await timed(() => server.finish());
  const result = finishing.value;

  const masks = close.survivors.length + close.dropped.reduce((total, v) => total + server.neighboursOf(v).filter((u) => !dropped.has(u)).length, 0);
  let worst = 0;
  for (let i = 0; i < D; i++) worst = Math.max(worst, Math.abs(result.sum[i]! - plainSum[i]!));
  const exact = checkSame(result.encodedSum, encodedSum.toUint32Array(), `SecAgg+, ${percent} % dropouts: the unmasked sum equals the survivors' encoded inputs summed mod 2^32`);
  const maskCount = check(masks === meter.masks, `SecAgg+, ${percent} % dropouts: ${meter.masks} masks regenerated, ${masks} expected`);
  const withinBound = check(worst <= result.count / params.scale && result.count === N - dropped.size, `SecAgg+, ${percent} % dropouts: the sum of ${result.count} inputs is within count/scale of the plain sum (worst error ${worst})`);
  reportUnmask(
    `SecAgg+ server, ${percent} % dropouts`,
    {
      unmaskMs: closing.ms + revealing.ms + finishing.ms - meter.keystreamMs,
      finishMs: finishing.ms - meter.keystreamMs,
      revealMs: revealing.ms,
      confirmMs: confirming.ms,
      foldMs,
      survivors: close.survivors.length,
      dropped: close.dropped.length,
    },
    meter,
    `${maskCount ? 'mask count as expected' : `MASK COUNT ${meter.masks} ≠ ${masks}`}; sum within count/scale: ${withinBound ? 'yes' : 'NO'}; exact in Z_2^32: ${exact ? 'yes' : 'NO'}`,
  );
  if (rate === 0) await consistencyCost(recording, result.encodedSum);
  await reportWorkers(`SecAgg+ server, ${percent} % dropouts`, async () => replayToUnmask(recording), encodedSum.toUint32Array(), masks, WORKER_PAIRS);
}
await reportCrossover(D + 1, sized([4, 16, 64, 256, 1_024], [4]), sized(7, 1));
exitOnFailedChecks();

/** A fresh server fed the recorded round through its masked stage. */
function replayThroughMasked(recording: Recording, signing: Signing = nodeSigning, prg: MaskPrg = nodeMaskPrg): SecAggServer {
  const server = new SecAggServer({ ...context, params, indices, prg, agreement: nodeKeyAgreement, signing, shuffle: ringShuffle() });
  for (const [index, advertised] of recording.advertisements) server.receiveAdvertise(index, advertised);
  server.closeAdvertise();
  for (const [index, ciphertexts] of recording.shares) server.receiveShares(index, ciphertexts);
  server.closeShares();
  for (const [index, masked] of recording.masked) server.receiveMasked(index, masked);
  server.closeMasked();
  return server;
}

/** A fresh server fed the recorded round up to its last reveal: ready for finish(). */
function replayToUnmask(recording: Recording): SecAggServer {
  const server = replayThroughMasked(recording);
  for (const [index, signature] of recording.confirmations) server.receiveConfirm(index, signature);
  server.closeConfirm();
  for (const [index, answer] of recording.reveals) server.receiveReveal(index, answer);
  return server;
}

type Replayed = Awaited<ReturnType<typeof replay>>;

/** Times one whole server round replayed from `recording`: in all, and its confirm stage. */
async function replay(recording: Recording, signing: Signing, prg: MaskPrg) {
  const t0 = performance.now();
  const server = replayThroughMasked(recording, signing, prg);
  const t1 = performance.now();
  for (const [index, signature] of recording.confirmations) server.receiveConfirm(index, signature);
  const forwarded: Map<number, SurvivorSignature[]> = server.closeConfirm();
  const t2 = performance.now();
  for (const [index, answer] of recording.reveals) server.receiveReveal(index, answer);
  const result = await server.finish();
  return { totalMs: performance.now() - t0, confirmMs: t2 - t1, forwarded, result };
}

async function consistencyCost(recording: Recording, expected: Uint32Array): Promise<void> {
  const ratios: number[] = [];
  const signedMs: number[] = [];
  const withoutMs: number[] = [];
  const bookkeepingMs: number[] = [];
  const signatureMs: number[] = [];
  const confirmStageMs: number[] = [];
  let verifies = 0;
  let forwardedSignatures = 0;
  for (let pair = 0; pair <= REPLAY_PAIRS; pair++) {
    const metered = new MeteredSigning(nodeSigning);
    // Alternate which goes first, so a drift in machine load hits both alike.
    let signed: Replayed;
    let unsigned: Replayed;
    if (pair % 2 === 0) {
      signed = await replay(recording, metered, nodeMaskPrg);
      unsigned = await replay(recording, unsignedSigning, nodeMaskPrg);
    } else {
      unsigned = await replay(recording, unsignedSigning, nodeMaskPrg);
      signed = await replay(recording, metered, nodeMaskPrg);
    }
    for (const [name, run] of [['signed', signed], ['unsigned', unsigned]] as const) {
      check(run.result.encodedSum.every((word, i) => word === expected[i]), `the ${name} replay gives the real round's sum`);
    }
    if (pair === 0) continue; // warm-up
    verifies = metered.verifies;
    forwardedSignatures = [...signed.forwarded.values()].reduce((total, list) => total + list.length, 0);
    const without = unsigned.totalMs - unsigned.confirmMs;
    ratios.push(signed.totalMs / without);
    signedMs.push(signed.totalMs);
    withoutMs.push(without);
    bookkeepingMs.push(unsigned.confirmMs);
    signatureMs.push(metered.ms);
    confirmStageMs.push(signed.confirmMs);
  }
  check(verifies === recording.advertisements.length + recording.confirmations.length, `the server verified ${verifies} signatures: one per advertisement and per confirmation`);
  report(
    `SecAgg+ server, consistency check: whole server round with it vs without it (node:crypto Ed25519)`,
    median(ratios),
    `median of ${ratios.length} interleaved pairs; with ${median(signedMs).toFixed(0)} ms, without ${median(withoutMs).toFixed(0)} ms; ` +
      `${verifies} Ed25519 verifications ${median(signatureMs).toFixed(0)} ms (${((1000 * median(signatureMs)) / verifies).toFixed(0)} µs each); ` +
      `confirm stage ${median(confirmStageMs).toFixed(0)} ms of which bookkeeping without signatures ${median(bookkeepingMs).toFixed(1)} ms ` +
      `(gathering ${forwardedSignatures.toLocaleString('en')} signatures to forward); ratios p25–p75 ${quantile(ratios, 0.25).toFixed(3)}–${quantile(ratios, 0.75).toFixed(3)}`,
  );
}
