/**
 * Ed25519 on WebCrypto in real Chromium (playwright-core, /usr/bin/chromium): `webCryptoSigning`
 * runs in a page on `@shoal/secagg` bundled for browsers (secagg-page.ts) and must give exactly
 * tweetnacl's bytes, computed here in Node on the same inputs: RFC 8032's vectors, public keys and
 * signatures of random seeds and messages, and the same verdicts on valid and forged signatures;
 * and a round of five SecAgg clients whose asynchronous steps on WebCrypto send the bytes of their
 * synchronous steps on tweetnacl. The suite's name says which path the page took (WebCrypto, or
 * the tweetnacl fallback in a Chromium without Ed25519): it passes on either.
 *
 * Run with `npx vitest run --config vitest.browser.config.ts test/browser/ed25519-webcrypto.test.ts`.
 */
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSeededRandom } from '@shoal/protocol';
import { naclSigning } from '@shoal/secagg';
import { CHROMIUM, evaluateInSecAggPage } from './secagg-page.js';
import { ED25519_VECTORS } from '../../packages/secagg/test/ed25519-vectors.js';

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env['SHOAL_REQUIRE_BROWSER']) {
  throw new Error(`Chromium is required (SHOAL_REQUIRE_BROWSER is set) but ${CHROMIUM} is missing: apt-get install -y chromium`);
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const bytes = (text: string) => Uint8Array.from(Buffer.from(text, 'hex'));

/** Random seeds and messages (seeded); each message is signed by its seed, then one bit of the signature flipped. */
const random = createSeededRandom(17);
const randomHex = (length: number) => Buffer.from(Uint8Array.from({ length }, () => random.nextInt(256))).toString('hex');
const CASES = Array.from({ length: 12 }, (_, i) => ({ seed: randomHex(32), message: randomHex(i * 23), flippedBit: random.nextInt(64 * 8) }));

/**
 * Runs in the page (source text, so nothing of the test's transpiled code leaks in). Every byte
 * string crosses as hex. The SecAgg part: five clients of one round, seeded alike twice, once all
 * asynchronous on WebCrypto and once all synchronous on tweetnacl; client 1 pins trusted identities,
 * so it checks advertisement signatures too.
 */
const IN_PAGE = `async ({ vectors, cases }) => {
  const s = await import('/secagg.js');
  const bytes = (text) => Uint8Array.from(text.match(/../g) ?? [], (b) => parseInt(b, 16));
  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  const signing = s.webCryptoSigning();
  const implementation = await signing.implementation();
  const signed = async ({ seed, message }) => {
    const keyPair = await signing.keyPair(bytes(seed));
    const signature = await signing.sign(keyPair, bytes(message));
    return { keyPair, signature };
  };
  const rfc8032 = [];
  for (const vector of vectors) {
    const { keyPair, signature } = await signed(vector);
    rfc8032.push({ publicKey: hex(keyPair.publicKey), signature: hex(signature), verifies: await signing.verify(keyPair.publicKey, bytes(vector.message), signature) });
  }
  const random = [];
  for (const c of cases) {
    const { keyPair, signature } = await signed(c);
    const forged = signature.slice();
    forged[c.flippedBit >> 3] ^= 1 << (c.flippedBit & 7);
    random.push({
      publicKey: hex(keyPair.publicKey),
      signature: hex(signature),
      verifies: await signing.verify(keyPair.publicKey, bytes(c.message), signature),
      forgedVerifies: await signing.verify(keyPair.publicKey, bytes(c.message), forged),
    });
  }

  const params = s.deriveSecAggParams({ mode: 'secagg', cohortSize: 5, numParams: 16, bound: 1, maxWeight: 10, maxDropout: 0.2 });
  const indices = [1, 2, 3, 4, 5];
  const seeded = (label) => {
    const r = s.createSeededRandom(label);
    return (n) => Uint8Array.from({ length: n }, () => r.nextInt(256));
  };
  const identity = (index) => seeded(500 + index)(32);
  const trusted = indices.map((index) => s.naclSigning.keyPair(identity(index)).publicKey);
  const round = async (sig, asynchronous) => {
    const clients = indices.map((index) => new s.SecAggClient({
      config: s.roundConfig(params, index, 'browser-ed25519'), round: 2, numParams: 16, randomBytes: seeded(1000 + index),
      prg: s.webCryptoMaskPrg(), agreement: s.naclKeyAgreement, signing: sig, identitySeed: identity(index),
      ...(index === 1 ? { trustedIdentityKeys: trusted } : {}),
    }));
    const sent = [];
    const advertised = [];
    for (const c of clients) advertised.push(asynchronous ? await c.advertiseAsync() : c.advertise());
    sent.push(...advertised.map((a) => hex(a.signature)));
    const keys = (index) => indices.filter((o) => o !== index).map((o) => ({ index: o, ...advertised[o - 1] }));
    const shared = [];
    for (const c of clients) shared.push(asynchronous ? await c.shareAsync(keys(c.index)) : c.share(keys(c.index)));
    for (const c of clients) {
      c.receiveInbox(shared.flatMap((sh, i) => sh.ciphertexts.filter((b) => b.to === c.index).map((b) => ({ from: i + 1, box: b.box }))));
      sent.push(hex(new Uint8Array((await c.mask(new Float32Array(16).fill(c.index / 10), 1)).buffer)));
    }
    const signatures = [];
    for (const c of clients) signatures.push(asynchronous ? await c.confirmAsync(indices) : c.confirm(indices));
    sent.push(...signatures.map(hex));
    for (const c of clients) {
      const forwarded = indices.filter((o) => o !== c.index).map((o) => ({ index: o, signature: signatures[o - 1] }));
      const answer = asynchronous ? await c.revealAsync(forwarded) : c.reveal(forwarded);
      sent.push(answer.selfMaskShares.map((x) => x.of + ':' + hex(x.share)).join(','));
    }
    return sent;
  };
  const secagg = { webCrypto: await round(signing, true), tweetnacl: await round(s.naclSigning, false) };
  return { implementation, rfc8032, random, secagg };
}`;

interface PageResults {
  readonly implementation: 'webcrypto' | 'tweetnacl';
  readonly rfc8032: { publicKey: string; signature: string; verifies: boolean }[];
  readonly random: { publicKey: string; signature: string; verifies: boolean; forgedVerifies: boolean }[];
  readonly secagg: { webCrypto: string[]; tweetnacl: string[] };
}

let results: PageResults;
/** The path the page took, printed by beforeAll. */
let implementation = 'not run';

beforeAll(async () => {
  if (!haveChromium) return;
  const run = await evaluateInSecAggPage<PageResults>(`(${IN_PAGE})(${JSON.stringify({ vectors: ED25519_VECTORS, cases: CASES })})`);
  results = run.value;
  implementation = results.implementation;
  console.info(`ed25519-webcrypto: Chromium ${run.chromium} runs webCryptoSigning on ${implementation}`);
});

describe.skipIf(!haveChromium)('webCryptoSigning in Chromium', () => {
  it('says which path it took: WebCrypto where Chromium has Ed25519, else tweetnacl', () => {
    expect(['webcrypto', 'tweetnacl']).toContain(implementation);
  });

  it('computes RFC 8032 §7.1 TEST 1–3', () => {
    expect(results.rfc8032).toEqual(ED25519_VECTORS.map((vector) => ({ publicKey: vector.publicKey, signature: vector.signature, verifies: true })));
  });

  it('gives tweetnacl’s public keys and signatures (computed in Node) for random seeds and messages, and refuses every forgery tweetnacl refuses', () => {
    const expected = CASES.map(({ seed, message, flippedBit }) => {
      const keyPair = naclSigning.keyPair(bytes(seed));
      const signature = naclSigning.sign(keyPair, bytes(message));
      const forged = signature.slice();
      forged[flippedBit >> 3]! ^= 1 << (flippedBit & 7);
      return { publicKey: hex(keyPair.publicKey), signature: hex(signature), verifies: true, forgedVerifies: naclSigning.verify(keyPair.publicKey, bytes(message), forged) };
    });
    expect(results.random.map(({ forgedVerifies: _, ...r }) => r)).toEqual(expected.map(({ forgedVerifies: _, ...e }) => e));
    // A flipped bit high in S can leave a non-canonical S that only tweetnacl accepts (ed25519-webcrypto.ts):
    // what WebCrypto accepts, tweetnacl accepts.
    results.random.forEach((r, i) => expect(!r.forgedVerifies || expected[i]!.forgedVerifies, `case ${i}`).toBe(true));
  });

  it('a round of SecAgg clients on it sends, step by step, the bytes of the same round on tweetnacl', () => {
    expect(results.secagg.webCrypto).toEqual(results.secagg.tweetnacl);
    expect(results.secagg.webCrypto).toHaveLength(5 + 5 + 5 + 5);
  });
});
