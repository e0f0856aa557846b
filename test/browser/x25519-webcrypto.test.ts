/**
 * X25519 on WebCrypto in real Chromium (playwright-core, /usr/bin/chromium): `webCryptoKeyAgreement`
 * runs in a page on `@shoal/secagg` bundled for browsers (secagg-page.ts) and must give exactly
 * tweetnacl's bytes, computed here in Node on the same inputs: RFC 7748's vectors, random secrets
 * and public keys (any bits set, non-canonical encodings), `null` for every small-order key, and a
 * SecAgg client whose asynchronous steps on WebCrypto produce the bytes of its synchronous steps on
 * tweetnacl. The suite's name says which path the page took (WebCrypto, or the tweetnacl fallback
 * in a Chromium without X25519): it passes on either.
 *
 * Run with `npx vitest run --config vitest.browser.config.ts test/browser/x25519-webcrypto.test.ts`.
 */
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSeededRandom } from '@shoal/protocol';
import { keyPairFromSecret, naclKeyAgreement } from '@shoal/secagg';
import { CHROMIUM, evaluateInSecAggPage } from './secagg-page.js';
import { DH_VECTOR, SCALAR_MULT_VECTORS, SMALL_ORDER_POINTS_HEX } from '../../packages/secagg/test/x25519-vectors.js';

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env['SHOAL_REQUIRE_BROWSER']) {
  throw new Error(`Chromium is required (SHOAL_REQUIRE_BROWSER is set) but ${CHROMIUM} is missing: apt-get install -y chromium`);
}

const hex = (bytes: Uint8Array | null) => (bytes === null ? null : Buffer.from(bytes).toString('hex'));

/** RFC 7748 §5.2 (one-step scalar multiplication) and §6.1 (Alice and Bob), in the page's shape. */
const RFC7748 = {
  scalarMult: SCALAR_MULT_VECTORS.map(({ scalar, u, out }) => [scalar, u, out] as const),
  alice: [DH_VECTOR.alice.secret, DH_VECTOR.alice.public],
  bob: [DH_VECTOR.bob.secret, DH_VECTOR.bob.public],
  shared: DH_VECTOR.shared,
};

const SMALL_ORDER_POINTS = [...SMALL_ORDER_POINTS_HEX];

/** Random secrets and public keys (seeded), plus the top bit set, u = p + 2 and the base point. */
const random = createSeededRandom(13);
const randomKey = () => Buffer.from(Uint8Array.from({ length: 32 }, () => random.nextInt(256))).toString('hex');
const SECRETS = [...Array.from({ length: 8 }, randomKey), '00'.repeat(32), 'ff'.repeat(32)];
const PUBLIC_KEYS = [
  ...Array.from({ length: 24 }, randomKey),
  'f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  'efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '09' + '00'.repeat(31),
];

/**
 * Runs in the page (source text, so nothing of the test's transpiled code leaks in). Every key crosses
 * as hex. The SecAgg part: client 1 of a 5-client SecAgg round, seeded alike twice, once with
 * advertiseAsync/shareAsync on WebCrypto and once with advertise/share on tweetnacl.
 */
const IN_PAGE = `async ({ vectors, smallOrder, secrets, publicKeys }) => {
  const s = await import('/secagg.js');
  const bytes = (text) => Uint8Array.from(text.match(/../g), (b) => parseInt(b, 16));
  const hex = (b) => (b === null ? null : Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(''));
  const webCrypto = s.webCryptoKeyAgreement();
  const implementation = await webCrypto.implementation();
  const scalarMult = [];
  for (const [scalar, u] of vectors.scalarMult) scalarMult.push(hex((await webCrypto.agreeMany(bytes(scalar), [bytes(u)]))[0]));
  const dh = {
    alicePublic: hex(await webCrypto.publicKey(bytes(vectors.alice[0]))),
    bobPublic: hex(await webCrypto.publicKey(bytes(vectors.bob[0]))),
    aliceShared: hex((await webCrypto.agreeMany(bytes(vectors.alice[0]), [bytes(vectors.bob[1])]))[0]),
    bobShared: hex((await webCrypto.agreeMany(bytes(vectors.bob[0]), [bytes(vectors.alice[1])]))[0]),
  };
  const agreed = [];
  for (const secret of secrets) {
    agreed.push({
      publicKey: hex(await webCrypto.publicKey(bytes(secret))),
      shared: (await webCrypto.agreeMany(bytes(secret), publicKeys.map(bytes))).map(hex),
      smallOrder: (await webCrypto.agreeMany(bytes(secret), smallOrder.map(bytes))).map(hex),
    });
  }

  const params = s.deriveSecAggParams({ mode: 'secagg', cohortSize: 5, numParams: 64, bound: 1, maxWeight: 10, maxDropout: 0.2 });
  const client = (index, agreement) => {
    const random = s.createSeededRandom(1000 + index);
    const randomBytes = (n) => Uint8Array.from({ length: n }, () => random.nextInt(256));
    return new s.SecAggClient({ config: s.roundConfig(params, index, 'browser-x25519'), round: 3, numParams: 64, randomBytes, prg: s.webCryptoMaskPrg(), agreement, signing: s.naclSigning });
  };
  const neighbours = [2, 3, 4, 5].map((index) => ({ index, ...client(index, s.naclKeyAgreement).advertise() }));
  const steps = async (c, asynchronous) => {
    const advertised = asynchronous ? await c.advertiseAsync() : c.advertise();
    const shared = asynchronous ? await c.shareAsync(neighbours) : c.share(neighbours);
    return { encryptionKey: hex(advertised.encryptionKey), maskKey: hex(advertised.maskKey), signature: hex(advertised.signature), boxes: shared.ciphertexts.map((b) => b.to + ':' + hex(b.box)) };
  };
  const secagg = { webCrypto: await steps(client(1, webCrypto), true), tweetnacl: await steps(client(1, s.naclKeyAgreement), false) };
  return { implementation, scalarMult, dh, agreed, secagg };
}`;

interface PageResults {
  readonly implementation: 'webcrypto' | 'tweetnacl';
  readonly scalarMult: string[];
  readonly dh: { alicePublic: string; bobPublic: string; aliceShared: string; bobShared: string };
  readonly agreed: { publicKey: string; shared: (string | null)[]; smallOrder: (string | null)[] }[];
  readonly secagg: { webCrypto: unknown; tweetnacl: unknown };
}

let results: PageResults;
/** The path the page took, printed by beforeAll. */
let implementation = 'not run';

beforeAll(async () => {
  if (!haveChromium) return;
  const run = await evaluateInSecAggPage<PageResults>(`(${IN_PAGE})(${JSON.stringify({ vectors: RFC7748, smallOrder: SMALL_ORDER_POINTS, secrets: SECRETS, publicKeys: PUBLIC_KEYS })})`);
  results = run.value;
  implementation = results.implementation;
  console.info(`x25519-webcrypto: Chromium ${run.chromium} runs webCryptoKeyAgreement on ${implementation}`);
});

describe.skipIf(!haveChromium)('webCryptoKeyAgreement in Chromium', () => {
  it('says which path it took: WebCrypto where Chromium has X25519, else tweetnacl', () => {
    expect(['webcrypto', 'tweetnacl']).toContain(implementation);
    console.info(`x25519-webcrypto: path taken in the page: ${implementation}`);
  });

  it('computes RFC 7748 §5.2 and §6.1', () => {
    expect(results.scalarMult).toEqual(RFC7748.scalarMult.map(([, , out]) => out));
    expect(results.dh).toEqual({ alicePublic: RFC7748.alice[1], bobPublic: RFC7748.bob[1], aliceShared: RFC7748.shared, bobShared: RFC7748.shared });
  });

  it('gives tweetnacl’s bytes (computed in Node) for random and edge-case keys, and null for every small-order key', () => {
    const bytes = (text: string) => Uint8Array.from(Buffer.from(text, 'hex'));
    const expected = SECRETS.map((secret) => ({
      publicKey: hex(keyPairFromSecret(bytes(secret)).publicKey),
      shared: naclKeyAgreement.agreeMany(bytes(secret), PUBLIC_KEYS.map(bytes)).map(hex),
      smallOrder: SMALL_ORDER_POINTS.map(() => null),
    }));
    expect(results.agreed).toEqual(expected);
  });

  it('a SecAgg client’s advertiseAsync/shareAsync on it equal advertise/share on tweetnacl, byte for byte', () => {
    expect(results.secagg.webCrypto).toEqual(results.secagg.tweetnacl);
    expect((results.secagg.webCrypto as { boxes: string[] }).boxes).toHaveLength(4);
  });
});
