// The coordinator's unmasking in full SecAgg (every client a neighbour of every other) at n = 500,
// d = 100,000, t = 350, with 0 %, 10 % and 30 % of the clients dropping after sharing.
//
// What is real and what is synthesised: simulating 500 full-SecAgg clients would cost minutes
// (each shares with 499 others and adds 500 masks), so only what the SecAggServer sees is made:
// real X25519 key pairs; share boxes of the right size with random bytes (the server only routes
// them); the survivors' masked inputs summed in advance — their encoded values, their self masks,
// and the pairwise masks with dropped clients (masks between two survivors cancel, so they are
// left out) — handed to the server as one survivor's input and zeros for the others; and Shamir
// shares f_v(x) = secret_v + r_v·g(x) with one random polynomial g (g(0) = 0, degree t − 1) shared
// by all secrets. Such shares are not secret (g is shared) but they are valid degree-(t − 1)
// sharings, so the server's work — parsing every reveal, Lagrange interpolation of 500 secrets,
// checking rebuilt mask keys, X25519 with every surviving neighbour of a dropped client,
// regenerating and removing every mask, decoding — is exactly that of a real round. The result is
// checked word for word. Advertisements and confirmations are real Ed25519 signatures
// (node:crypto), which the server verifies. Timed: closeMasked, every receiveReveal and finish(),
// as a ratio to the bare AES-CTR keystream time of the masks it regenerates, measured interleaved
// with it (see BaselineMeter) (target ≤ 1.5×); the consistency check (every receiveConfirm and
// closeConfirm, which forwards t − 1 signatures to each survivor) is timed apart. Flower
// publishes 18.8 / 27.2 / 37.7 s for its SecAgg+ server at 0 / 10 / 30 % (k = 19). Exits 1 if the
// unmasked sum is not exact (word for word in Z_2^32), the mask count is wrong, or closeConfirm does
// not forward t − 1 other survivors' signatures to every survivor. Then the same round is replayed into
// fresh servers and finish() timed in one thread against the coordinator's worker pool (target
// ≥ 1.7× on 2 cores), both sums checked exact.
import {
  FIELD_PRIME,
  SHARE_BOX_BYTES,
  SecAggServer,
  WordSum,
  advertisementMessage,
  deriveSecAggParams,
  encodeShare,
  encodeUpdate,
  keyPairFromSecret,
  pairMaskKey,
  selfMaskKey,
  survivorsMessage,
} from '@shoal/secagg';
import type { KeyPair } from '@shoal/secagg';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '@shoal/secagg/node';
import { checkSame } from './lib.js';
import { BaselineMeter, D, DROPOUT_RATES, N, check, exitOnFailedChecks, randomBytes, reportUnmask, reportWorkers, timed } from './secagg-lib.js';

const params = deriveSecAggParams({ mode: 'secagg', cohortSize: N, numParams: D, bound: 10, maxWeight: 1000 });
const context = { sessionId: 'bench', round: 1 };
const indices = Array.from({ length: N }, (_, i) => i + 1);
const toBigInt = (bytes: Uint8Array) => BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
console.log(`full SecAgg server, n = ${N}, d = ${D.toLocaleString('en')}: k = ${params.degree}, t = ${params.threshold}`);

// One set of clients for all three scenarios: key pairs, signed advertisements and self-mask seeds.
const encryptionKeys = new Map<number, KeyPair>(indices.map((i) => [i, keyPairFromSecret(randomBytes(32))]));
const maskKeys = new Map<number, KeyPair>(indices.map((i) => [i, keyPairFromSecret(randomBytes(32))]));
const signingSeeds = new Map<number, Uint8Array>(indices.map((i) => [i, randomBytes(32)]));
const advertisements = new Map(
  indices.map((i) => {
    const keys = { encryptionKey: encryptionKeys.get(i)!.publicKey, maskKey: maskKeys.get(i)!.publicKey, signingKey: nodeSigning.keyPair(signingSeeds.get(i)!).publicKey };
    return [i, { ...keys, signature: nodeSigning.sign(nodeSigning.keyPair(signingSeeds.get(i)!), advertisementMessage(context, i, keys)) }];
  }),
);
const seeds = new Map<number, Uint8Array>(indices.map((i) => [i, randomBytes(32)]));
const encoded = encodeUpdate(Float32Array.from({ length: D }, (_, i) => Math.sin(i * 0.01) * 5), 3, params, randomBytes);

/** Shares of every client's two secrets at the survivors' x, from one shared random polynomial g. */
function synthesiseShares(holders: readonly number[]) {
  const g = Array.from({ length: params.threshold - 1 }, () => toBigInt(randomBytes(48)) % FIELD_PRIME); // coefficients of x^1..x^(t−1)
  const gAt = new Map<number, bigint>();
  for (const x of holders) {
    let value = 0n;
    for (let i = g.length - 1; i >= 0; i--) value = ((value + g[i]!) * BigInt(x)) % FIELD_PRIME;
    gAt.set(x, value);
  }
  const shareOf = (secret: Uint8Array, x: number, r: bigint) => encodeShare((toBigInt(secret) + r * gAt.get(x)!) % FIELD_PRIME);
  const factors = new Map(indices.map((v) => [v, { self: 1n + (toBigInt(randomBytes(16)) % 1000n), key: 1n + (toBigInt(randomBytes(16)) % 1000n) }]));
  return { shareOf, factors };
}

for (const rate of process.argv[2] === undefined ? DROPOUT_RATES : [Number(process.argv[2])]) {
  const dropped = new Set(indices.filter((i) => Math.floor(i * rate) > Math.floor((i - 1) * rate)));
  const survivors = indices.filter((i) => !dropped.has(i));
  const meter = new BaselineMeter(nodeMaskPrg);
  const server = new SecAggServer({ ...context, params, indices, prg: meter, agreement: nodeKeyAgreement, signing: nodeSigning, shuffle: (x) => [...x] });
  for (const i of indices) server.receiveAdvertise(i, advertisements.get(i)!);
  server.closeAdvertise();
  const box = randomBytes(SHARE_BOX_BYTES);
  for (const i of indices) server.receiveShares(i, indices.filter((j) => j !== i).map((to) => ({ to, box })));
  server.closeShares();

  // The survivors' masked inputs, summed: encodings + self masks + masks with dropped neighbours.
  const total = new WordSum(D + 1);
  for (const u of survivors) {
    total.add(encoded);
    await nodeMaskPrg.addTo(total, selfMaskKey(seeds.get(u)!, context), 1);
  }
  for (const v of dropped) {
    const agreed = nodeKeyAgreement.agreeMany(maskKeys.get(v)!.secretKey, survivors.map((u) => maskKeys.get(u)!.publicKey));
    for (const [i, u] of survivors.entries()) await nodeMaskPrg.addTo(total, pairMaskKey(agreed[i]!, u, v, context), u > v ? 1 : -1);
  }
  let foldMs = 0;
  const zero = new Uint32Array(D + 1);
  for (const [k, u] of survivors.entries()) foldMs += (await timed(() => server.receiveMasked(u, k === 0 ? total.toUint32Array() : zero))).ms;

  const { shareOf, factors } = synthesiseShares(survivors);
  const closing = await timed(() => server.closeMasked());
  // The consistency check: every survivor signs the announced U3 (its own work, not timed); the
  // server verifies each signature and forwards every survivor t − 1 other survivors' signatures.
  const announced = closing.value.survivors;
  const signed = survivorsMessage(context, announced);
  const confirmations = announced.map((x) => [x, nodeSigning.sign(nodeSigning.keyPair(signingSeeds.get(x)!), signed)] as const);
  const confirming = await timed(() => {
    for (const [x, signature] of confirmations) server.receiveConfirm(x, signature);
    return server.closeConfirm();
  });
  // Each survivor gets t − 1 other survivors' signatures: with its own, exactly the t it checks.
  const forwardedOk = [...confirming.value].every(([x, list]) => list.length === params.threshold - 1 && list.every((entry) => entry.index !== x && !dropped.has(entry.index)));
  check(confirming.value.size === survivors.length && forwardedOk, `full SecAgg, ${Math.round(rate * 100)} % dropouts: closeConfirm forwards t − 1 = ${params.threshold - 1} other survivors' signatures to each of the ${survivors.length} survivors`);
  // What each survivor is asked for (closeConfirm's requests): every other client holds shares of it.
  const reveals = survivors.map((x) => [x, {
    selfMaskShares: survivors.map((of) => ({ of, share: shareOf(seeds.get(of)!, x, factors.get(of)!.self) })),
    maskKeyShares: [...dropped].map((of) => ({ of, share: shareOf(maskKeys.get(of)!.secretKey, x, factors.get(of)!.key) })),
  }] as const);
  const revealing = await timed(() => {
    for (const [x, reveal] of reveals) server.receiveReveal(x, reveal);
  });
  const finishing = await timed(() => server.finish());

  const expected = encoded.map((word) => word * survivors.length); // Uint32Array.map wraps mod 2^32
  const exact = checkSame(finishing.value.encodedSum, expected, `full SecAgg, ${Math.round(rate * 100)} % dropouts: the unmasked sum is exact`);
  const maskCount = check(meter.masks === survivors.length + dropped.size * survivors.length, `full SecAgg, ${Math.round(rate * 100)} % dropouts: ${meter.masks} masks regenerated`);
  reportUnmask(
    `full SecAgg server, ${Math.round(rate * 100)} % dropouts`,
    {
      unmaskMs: closing.ms + revealing.ms + finishing.ms - meter.keystreamMs,
      finishMs: finishing.ms - meter.keystreamMs,
      revealMs: revealing.ms,
      confirmMs: confirming.ms,
      foldMs,
      survivors: survivors.length,
      dropped: dropped.size,
    },
    meter,
    `${maskCount ? 'mask count as expected' : 'MASK COUNT WRONG'}; unmasked sum exact: ${exact ? 'yes' : 'NO'}`,
  );

  // The same round replayed into fresh servers, finished in one thread and on the worker pool.
  const totalWords = total.toUint32Array();
  const atUnmask = async () => {
    const fresh = new SecAggServer({ ...context, params, indices, prg: nodeMaskPrg, agreement: nodeKeyAgreement, signing: nodeSigning, shuffle: (x) => [...x] });
    for (const i of indices) fresh.receiveAdvertise(i, advertisements.get(i)!);
    fresh.closeAdvertise();
    for (const i of indices) fresh.receiveShares(i, indices.filter((j) => j !== i).map((to) => ({ to, box })));
    fresh.closeShares();
    for (const [k, u] of survivors.entries()) fresh.receiveMasked(u, k === 0 ? totalWords : zero);
    fresh.closeMasked();
    for (const [x, signature] of confirmations) fresh.receiveConfirm(x, signature);
    fresh.closeConfirm();
    for (const [x, reveal] of reveals) fresh.receiveReveal(x, reveal);
    return fresh;
  };
  await reportWorkers(`full SecAgg server, ${Math.round(rate * 100)} % dropouts`, atUnmask, expected, meter.masks, 1);
}
exitOnFailedChecks();
