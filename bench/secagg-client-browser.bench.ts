// The SecAgg+ client round in Chromium with WebCrypto X25519 and Ed25519 against the same round in
// Node, at Flower's benchmark size (n = 500, d = 100,000, k = 27, t = 18; quick mode: n = 40,
// d = 2,000), issue #13 item 4: "in Chromium, WebCrypto X25519 where the browser has it (tweetnacl
// as the fallback) within 1.5× of Node".
//
// Timed, per round, as bench/secagg-client.bench.ts times it: new client + advertise, share,
// receiveInbox, mask, confirm (U3 = all n clients), reveal (t − 1 forwarded signatures verified);
// not timed: the neighbours sealing their boxes to the client. Three clients, each as its SDK builds
// it, through the same asynchronous steps the SDK's round uses (advertiseAsync, shareAsync,
// confirmAsync, revealAsync):
// - Node: the Node entry's node:crypto X25519, Ed25519 and AES-CTR, in this process;
// - Chromium, WebCrypto: the browser entry's default (webCryptoKeyAgreement, webCryptoSigning,
//   WebCrypto AES-CTR), in a page of headless Chromium (@shoal/secagg bundled by esbuild);
// - Chromium, tweetnacl: the same page with tweetnacl X25519 and Ed25519 (the browser default
//   before WebCrypto X25519 and Ed25519; the fallback where a browser lacks them).
// They run interleaved (the order rotates each round) after one warm-up round each; reported: the
// median over rounds of each Chromium round / the Node round of the same iteration, and per phase.
// Needs Debian's Chromium at /usr/bin/chromium (skipped with a message otherwise; with
// SHOAL_REQUIRE_BROWSER=1, as in CI, a missing Chromium fails the bench).
//
// Correctness (exit 1 on failure): with the same seeded randomness, the three clients produce the
// same bytes: public keys, advertisement signature, every share box, the masked input, the
// survivor-set signature and the revealed shares (so both agreement ports give the same pairwise
// secrets and masks as Node's, whose round bench/secagg-client.bench.ts unmasks and decodes); and the
// reveal holds exactly the shares the neighbours sealed.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { SecAggClient, encodeShare, naclKeyAgreement, roundConfig, sealShares, shareBoxKey } from '@shoal/secagg';
import type { Advertisement, RevealAnswer, Shares } from '@shoal/secagg';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '@shoal/secagg/node';
import { createSeededRandom } from '@shoal/protocol';
import { CHROMIUM, CHROMIUM_ARGS, startSecAggPageServer } from '../test/browser/secagg-page.js';
import { check, exitOnFailedChecks, report, sized } from './lib.js';
import { D, N, clientRoundFixture, median, quantile, randomBytes } from './secagg-lib.js';

const ROUND = 1;
const SESSION = 'bench-session';
const WEIGHT = 600;
const TARGET = 1.5;
/** Timed rounds of each client after the warm-up. */
const ROUNDS = sized(15, 1);
/** The seed of the correctness round's randomness, the same in Node and in the page. */
const SEED = 20_251;

if (!existsSync(CHROMIUM)) {
  const required = process.env['SHOAL_REQUIRE_BROWSER'] === '1';
  console.log(`secagg-client-browser: skipped, ${CHROMIUM} is missing (apt-get install -y chromium)`);
  check(!required, `SHOAL_REQUIRE_BROWSER=1 but ${CHROMIUM} is missing`);
  process.exit();
}

const { params, context, me, values, survivors, neighbours, neighbourKeys, forwarded } = clientRoundFixture(SESSION, ROUND);

const PHASES = ['advertise', 'share', 'inbox', 'mask', 'confirm', 'reveal'] as const;
type Phases = Record<(typeof PHASES)[number], number>;

/** Everything a client sends, as hex: what the correctness check compares across the three clients. */
interface Outputs {
  readonly advertised: string[];
  readonly boxes: string[];
  readonly masked: string;
  readonly confirmation: string;
  readonly reveal: string[];
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
function outputsOf(advertised: Advertisement, shares: Shares, masked: Uint32Array, confirmation: Uint8Array, answer: RevealAnswer): Outputs {
  return {
    advertised: [advertised.encryptionKey, advertised.maskKey, advertised.signingKey, advertised.signature].map(hex),
    boxes: shares.ciphertexts.map(({ to, box }) => `${to}:${hex(box)}`),
    masked: hex(new Uint8Array(masked.buffer, masked.byteOffset, masked.byteLength)),
    confirmation: hex(confirmation),
    reveal: [...answer.selfMaskShares.map(({ of, share }) => `b${of}:${hex(share)}`), ...answer.maskKeyShares.map(({ of, share }) => `s${of}:${hex(share)}`)],
  };
}

/** Seeded randomness, the same stream in Node and the page (createSeededRandom is in both). */
function seededBytes(seed: number): (n: number) => Uint8Array {
  const random = createSeededRandom(seed);
  return (n) => Uint8Array.from({ length: n }, () => random.nextInt(256));
}

/** The Node SDK's client: node:crypto throughout, the SDK's asynchronous steps. With `seed`, also returns its outputs. */
async function nodeRound(seed?: number): Promise<{ phases: Phases; outputs?: Outputs }> {
  const random = seed === undefined ? randomBytes : seededBytes(seed);
  const t0 = performance.now();
  const client = new SecAggClient({ config: roundConfig(params, me, SESSION), round: ROUND, numParams: D, randomBytes: random, prg: nodeMaskPrg, agreement: nodeKeyAgreement, signing: nodeSigning });
  const advertised = await client.advertiseAsync();
  const t1 = performance.now();
  const shares = await client.shareAsync(neighbourKeys);
  const t2 = performance.now();
  const inbox = neighbours.map((n) => {
    const key = shareBoxKey(naclKeyAgreement.agreeMany(n.encryption.secretKey, [advertised.encryptionKey])[0]!, context);
    return { from: n.index, box: sealShares(key, randomBytes(24), { ...context, sender: n.index, recipient: me }, n.sealed) };
  });
  const t3 = performance.now();
  client.receiveInbox(inbox);
  const t4 = performance.now();
  const masked = await client.mask(values, WEIGHT);
  const t5 = performance.now();
  const confirmation = client.confirm(survivors);
  const t6 = performance.now();
  const answer = client.reveal(forwarded);
  const t7 = performance.now();
  const phases = { advertise: t1 - t0, share: t2 - t1, inbox: t4 - t3, mask: t5 - t4, confirm: t6 - t5, reveal: t7 - t6 };
  return seed === undefined ? { phases } : { phases, outputs: outputsOf(advertised, shares, masked, confirmation, answer) };
}

/**
 * Runs in the page (source text: tsx's helpers do not exist there). Loads @shoal/secagg, rebuilds the
 * fixture from hex, and defines `benchRound(port, seed)`, the round of nodeRound() with the browser
 * client's crypto. Resolves with the path webCryptoKeyAgreement took.
 */
const SETUP_IN_PAGE = `async (fixture) => {
  const s = await import('/secagg.js');
  const bytes = (text) => Uint8Array.from(text.match(/../g), (b) => parseInt(b, 16));
  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  const { params, session, round, me, weight } = fixture;
  const context = { sessionId: session, round };
  const neighbours = fixture.neighbours.map((n) => ({
    index: n.index,
    encryptionSecret: bytes(n.encryptionSecret),
    sealed: { selfMaskShare: BigInt(n.selfMaskShare), maskKeyShare: BigInt(n.maskKeyShare) },
    keys: { index: n.index, encryptionKey: bytes(n.encryptionKey), maskKey: bytes(n.maskKey), signingKey: bytes(n.signingKey), signature: bytes(n.signature) },
  }));
  const neighbourKeys = neighbours.map((n) => n.keys);
  const forwarded = fixture.forwarded.map((f) => ({ index: f.index, signature: bytes(f.signature) }));
  const survivors = Array.from({ length: params.cohortSize }, (_, i) => i + 1);
  const values = Float32Array.from(fixture.values);
  const webCrypto = s.webCryptoKeyAgreement();
  const ports = { webcrypto: webCrypto, tweetnacl: s.naclKeyAgreement };
  const signings = { webcrypto: s.webCryptoSigning(), tweetnacl: s.naclSigning };
  const prg = s.webCryptoMaskPrg();
  const csprng = (n) => {
    const b = new Uint8Array(n);
    for (let o = 0; o < n; o += 65536) crypto.getRandomValues(b.subarray(o, Math.min(n, o + 65536)));
    return b;
  };
  const seeded = (seed) => {
    const random = s.createSeededRandom(seed);
    return (n) => Uint8Array.from({ length: n }, () => random.nextInt(256));
  };
  globalThis.benchRound = async (port, seed) => {
    const randomBytes = seed === null ? csprng : seeded(seed);
    const t0 = performance.now();
    const client = new s.SecAggClient({ config: s.roundConfig(params, me, session), round, numParams: params.numParams, randomBytes, prg, agreement: ports[port], signing: signings[port] });
    const advertised = await client.advertiseAsync();
    const t1 = performance.now();
    const shares = await client.shareAsync(neighbourKeys);
    const t2 = performance.now();
    const inbox = neighbours.map((n) => {
      const key = s.shareBoxKey(s.naclKeyAgreement.agreeMany(n.encryptionSecret, [advertised.encryptionKey])[0], context);
      return { from: n.index, box: s.sealShares(key, csprng(24), { ...context, sender: n.index, recipient: me }, n.sealed) };
    });
    const t3 = performance.now();
    client.receiveInbox(inbox);
    const t4 = performance.now();
    const masked = await client.mask(values, weight);
    const t5 = performance.now();
    const confirmation = await client.confirmAsync(survivors);
    const t6 = performance.now();
    const answer = await client.revealAsync(forwarded);
    const t7 = performance.now();
    const phases = { advertise: t1 - t0, share: t2 - t1, inbox: t4 - t3, mask: t5 - t4, confirm: t6 - t5, reveal: t7 - t6 };
    if (seed === null) return { phases };
    const outputs = {
      advertised: [advertised.encryptionKey, advertised.maskKey, advertised.signingKey, advertised.signature].map(hex),
      boxes: shares.ciphertexts.map(({ to, box }) => to + ':' + hex(box)),
      masked: hex(new Uint8Array(masked.buffer, masked.byteOffset, masked.byteLength)),
      confirmation: hex(confirmation),
      reveal: [...answer.selfMaskShares.map(({ of, share }) => 'b' + of + ':' + hex(share)), ...answer.maskKeyShares.map(({ of, share }) => 's' + of + ':' + hex(share))],
    };
    return { phases, outputs };
  };
  // One call of a primitive the round spends its time in; resolves with its milliseconds.
  const mine = neighbours[0].encryptionSecret;
  const signed = s.naclSigning.sign(s.naclSigning.keyPair(mine), new Uint8Array(64));
  const signer = s.naclSigning.keyPair(mine).publicKey;
  const primitives = {
    // advertise's two public keys and share's two agreements with k − 1 neighbours, as the client overlaps them.
    x25519: (port) => Promise.all([ports[port].publicKey(mine), ports[port].publicKey(mine), ports[port].agreeMany(mine, neighbourKeys.map((n) => n.encryptionKey)), ports[port].agreeMany(mine, neighbourKeys.map((n) => n.maskKey))]),
    keystream: () => s.webCryptoKeystream(mine.subarray(0, 16), new Uint8Array(16), 4 * (params.numParams + 1)),
    // reveal's t − 1 checks of forwarded survivor-set signatures, as the client runs them: all at once.
    verify: (port) => Promise.all(forwarded.map(() => signings[port].verify(signer, new Uint8Array(64), signed))),
  };
  globalThis.benchPrimitive = async (name, port) => {
    const t0 = performance.now();
    await primitives[name](port);
    return performance.now() - t0;
  };
  return (await webCrypto.implementation()) + ' / ' + (await signings.webcrypto.implementation());
}`;

const fixture = {
  params,
  session: SESSION,
  round: ROUND,
  me,
  weight: WEIGHT,
  values: Array.from(values),
  neighbours: neighbours.map((n) => ({
    index: n.index,
    encryptionSecret: hex(n.encryption.secretKey),
    selfMaskShare: n.sealed.selfMaskShare.toString(),
    maskKeyShare: n.sealed.maskKeyShare.toString(),
    encryptionKey: hex(n.advertisement.encryptionKey),
    maskKey: hex(n.advertisement.maskKey),
    signingKey: hex(n.advertisement.signingKey),
    signature: hex(n.advertisement.signature),
  })),
  forwarded: forwarded.map((f) => ({ index: f.index, signature: hex(f.signature) })),
};

const fmt = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1));
const total = (phases: Phases) => PHASES.reduce((sum, phase) => sum + phases[phase], 0);
const breakdown = (rounds: readonly Phases[]) => PHASES.map((phase) => `${phase} ${fmt(median(rounds.map((r) => r[phase])))}`).join(' + ');

console.log(`SecAgg+ client in Chromium vs Node, n = ${N}, d = ${D.toLocaleString('en')}: k = ${params.degree}, t = ${params.threshold}; U3 = all ${N} clients`);
const server = await startSecAggPageServer();
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage();
  await page.goto(server.url);
  const implementation = (await page.evaluate(`(${SETUP_IN_PAGE})(${JSON.stringify(fixture)})`)) as string;
  console.log(`Chromium ${browser.version()}: webCryptoKeyAgreement and webCryptoSigning run on ${implementation}`);
  type Port = 'webcrypto' | 'tweetnacl';
  const pageRound = (port: Port, seed: number | null) => page.evaluate(`globalThis.benchRound(${JSON.stringify(port)}, ${seed})`) as Promise<{ phases: Phases; outputs?: Outputs }>;

  // Correctness first: the same seeded round in all three clients, byte for byte.
  const expected = (await nodeRound(SEED)).outputs!;
  check(
    expected.reveal.length === neighbours.length + 1 && neighbours.every((n) => expected.reveal.includes(`b${n.index}:${hex(encodeShare(n.sealed.selfMaskShare))}`)),
    `the reveal holds the b_v shares the ${neighbours.length} neighbours sealed and the client's own, nothing else`,
  );
  for (const port of ['webcrypto', 'tweetnacl'] as const) {
    const { outputs } = await pageRound(port, SEED);
    for (const key of ['advertised', 'boxes', 'masked', 'confirmation', 'reveal'] as const) {
      check(JSON.stringify(outputs![key]) === JSON.stringify(expected[key]), `Chromium (${port}) and Node send the same ${key} for the same randomness`);
    }
  }

  // Timing: one warm-up round each, then ROUNDS interleaved triples (the order rotates).
  const runs: Record<'node' | Port, Phases[]> = { node: [], webcrypto: [], tweetnacl: [] };
  const order = ['node', 'webcrypto', 'tweetnacl'] as const;
  for (let iteration = 0; iteration <= ROUNDS; iteration++) {
    for (let i = 0; i < order.length; i++) {
      const which = order[(iteration + i) % order.length]!;
      const { phases } = which === 'node' ? await nodeRound() : await pageRound(which, null);
      if (iteration > 0) runs[which].push(phases);
    }
  }
  const ratios = (port: Port) => runs[port].map((phases, i) => total(phases) / total(runs.node[i]!));
  const x25519Ratios = (port: Port) => runs[port].map((phases, i) => (phases.advertise + phases.share) / (runs.node[i]!.advertise + runs.node[i]!.share));
  const spread = (xs: number[]) => `median of ${xs.length} interleaved rounds, p25–p75 ${quantile(xs, 0.25).toFixed(2)}–${quantile(xs, 0.75).toFixed(2)}`;
  const medianTotal = (rounds: readonly Phases[]) => fmt(median(rounds.map(total)));
  const nodeLine = `Node ${medianTotal(runs.node)} ms = ${breakdown(runs.node)}`;

  report(
    `SecAgg+ client round: Chromium with WebCrypto X25519 and Ed25519 (${implementation}) / Node`,
    median(ratios('webcrypto')),
    `${spread(ratios('webcrypto'))}; Chromium ${medianTotal(runs.webcrypto)} ms = ${breakdown(runs.webcrypto)}; ${nodeLine} (ms, this machine)`,
    { op: '<=', value: TARGET },
  );
  report(
    'SecAgg+ client round: Chromium with tweetnacl X25519 and Ed25519 (the fallback) / Node',
    median(ratios('tweetnacl')),
    `${spread(ratios('tweetnacl'))}; Chromium ${medianTotal(runs.tweetnacl)} ms = ${breakdown(runs.tweetnacl)}`,
  );
  report(
    'SecAgg+ client round in Chromium: WebCrypto / tweetnacl',
    median(runs.webcrypto.map((phases, i) => total(phases) / total(runs.tweetnacl[i]!))),
    `advertise + share (the X25519 steps): ${fmt(median(runs.webcrypto.map((p) => p.advertise + p.share)))} ms vs ${fmt(median(runs.tweetnacl.map((p) => p.advertise + p.share)))} ms`,
  );
  report(
    'advertise + share (2 key pairs, 2 × (k − 1) agreements): Chromium WebCrypto / Node node:crypto',
    median(x25519Ratios('webcrypto')),
    `${spread(x25519Ratios('webcrypto'))}; ${fmt(median(runs.webcrypto.map((p) => p.advertise + p.share)))} ms vs ${fmt(median(runs.node.map((p) => p.advertise + p.share)))} ms`,
  );

  // Where the round's time goes: each primitive alone, Chromium (the browser client's choice) against
  // Node (node:crypto), alternating, after one warm-up call each.
  const mine = neighbours[0]!.encryption.secretKey;
  const nodeSigner = nodeSigning.keyPair(mine);
  const nodeSigned = nodeSigning.sign(nodeSigner, new Uint8Array(64));
  const nodePrimitives = {
    x25519: () => Promise.all([nodeKeyAgreement.publicKey(mine), nodeKeyAgreement.publicKey(mine), nodeKeyAgreement.agreeMany(mine, neighbourKeys.map((n) => n.encryptionKey)), nodeKeyAgreement.agreeMany(mine, neighbourKeys.map((n) => n.maskKey))]),
    keystream: () => nodeMaskPrg.expand(mine.subarray(0, 16), D + 1),
    verify: () => Promise.all(forwarded.map(() => nodeSigning.verify(nodeSigner.publicKey, new Uint8Array(64), nodeSigned))),
  };
  const primitiveCases = [
    { name: 'x25519', port: 'webcrypto', what: `X25519 of the round (2 public keys, 2 × ${params.degree - 1} agreements): Chromium WebCrypto / Node node:crypto` },
    { name: 'x25519', port: 'tweetnacl', what: 'X25519 of the round: Chromium tweetnacl / Node node:crypto' },
    { name: 'keystream', port: 'webcrypto', what: `one mask keystream (AES-128-CTR, ${(D + 1).toLocaleString('en')} words; the round makes ${params.degree}): Chromium WebCrypto / Node node:crypto` },
    { name: 'verify', port: 'webcrypto', what: `reveal's ${params.threshold - 1} Ed25519 verifications: Chromium WebCrypto / Node node:crypto` },
    { name: 'verify', port: 'tweetnacl', what: `reveal's ${params.threshold - 1} Ed25519 verifications: Chromium tweetnacl / Node node:crypto` },
  ] as const;
  for (const { name, port, what } of primitiveCases) {
    const inPage: number[] = [];
    const inNode: number[] = [];
    for (let i = 0; i <= sized(9, 1); i++) {
      const pageMs = (await page.evaluate(`globalThis.benchPrimitive(${JSON.stringify(name)}, ${JSON.stringify(port)})`)) as number;
      const t0 = performance.now();
      await nodePrimitives[name]();
      const nodeMs = performance.now() - t0;
      if (i === 0) continue; // warm-up
      inPage.push(pageMs);
      inNode.push(nodeMs);
    }
    report(what, median(inPage) / median(inNode), `${fmt(median(inPage))} ms vs ${median(inNode).toFixed(3)} ms (medians of ${inPage.length}, this machine; page timer resolution 0.1 ms)`);
  }
  await page.close();
} finally {
  await browser.close();
  await server.close();
}
exitOnFailedChecks();
