// X25519 on WebCrypto (x25519-webcrypto.ts) in Node, and the SecAgg client's asynchronous steps.
// Node 20 may or may not have WebCrypto X25519: every test passes on either path, and the suite's
// name says which one ran. The fallback is also forced (no `subtle`, a refusing one, a lying one),
// so tweetnacl's path runs here whatever this Node has. The same checks run in real Chromium in
// test/browser/x25519-webcrypto.test.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NeighbourKeys } from '@shoal/protocol';
import { SecAggClient, SecAggError, deriveSecAggParams, isSmallOrder, keyPairFromSecret, naclKeyAgreement, roundConfig, webCryptoKeyAgreement } from '../src/index.js';
import type { AsyncKeyAgreement, KeyAgreement } from '../src/index.js';
import { nodeMaskPrg, nodeSigning } from '../src/node.js';
import { seededRandomBytes } from './harness.js';
import { DH_VECTOR, SCALAR_MULT_VECTORS, SMALL_ORDER_POINTS_HEX, fromHex } from './x25519-vectors.js';

const hex = fromHex;
const DH = DH_VECTOR;
/** Small-order points and their non-canonical encodings: every agreement gives all zero. */
const SMALL_ORDER_POINTS = SMALL_ORDER_POINTS_HEX.map(fromHex);

/** The top bit set (X25519 ignores it), u = p + 2 ≥ p = 2^255 − 19 (reduced), and the base point 9. */
const EDGE_PUBLIC_KEYS = [
  'f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  'efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0900000000000000000000000000000000000000000000000000000000000000',
].map(hex);

type Subtle = typeof globalThis.crypto.subtle;
const subtle: Subtle = globalThis.crypto.subtle;

const webCrypto = webCryptoKeyAgreement();
const implementation = await webCrypto.implementation();

describe(`webCryptoKeyAgreement in Node ${process.version} (runs on ${implementation})`, () => {
  it('reports the path this Node takes, and WebCrypto only when this Node derives X25519 bits', async () => {
    const hasX25519 = await subtle
      .generateKey({ name: 'X25519' }, false, ['deriveBits'])
      .then(() => true)
      .catch(() => false);
    console.info(`x25519-webcrypto: Node ${process.version} ${hasX25519 ? 'has' : 'lacks'} WebCrypto X25519; webCryptoKeyAgreement runs on ${implementation}`);
    expect(implementation).toBe(hasX25519 ? 'webcrypto' : 'tweetnacl');
  });

  it('computes RFC 7748 §5.2 and §6.1', async () => {
    for (const { scalar, u, out } of SCALAR_MULT_VECTORS) expect(await webCrypto.agreeMany(hex(scalar), [hex(u)])).toEqual([hex(out)]);
    expect(await webCrypto.publicKey(hex(DH.alice.secret))).toEqual(hex(DH.alice.public));
    expect(await webCrypto.publicKey(hex(DH.bob.secret))).toEqual(hex(DH.bob.public));
    expect(await webCrypto.agreeMany(hex(DH.alice.secret), [hex(DH.bob.public)])).toEqual([hex(DH.shared)]);
    expect(await webCrypto.agreeMany(hex(DH.bob.secret), [hex(DH.alice.public)])).toEqual([hex(DH.shared)]);
  });

  it('gives tweetnacl’s bytes for random keys (any bits set) and edge-case encodings', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { minLength: 1, maxLength: 6 }), async (secretKey, publicKeys) => {
        const all = [...publicKeys, ...EDGE_PUBLIC_KEYS];
        expect(await webCrypto.agreeMany(secretKey, all)).toEqual(naclKeyAgreement.agreeMany(secretKey, all));
        expect(await webCrypto.publicKey(secretKey)).toEqual(keyPairFromSecret(secretKey).publicKey);
      }),
      { seed: 7, numRuns: 60 },
    );
  });

  it('derives the same public keys as tweetnacl for secrets whose clamped bits differ from the raw bytes', async () => {
    for (const secretKey of [new Uint8Array(32), new Uint8Array(32).fill(0xff)]) expect(await webCrypto.publicKey(secretKey)).toEqual(keyPairFromSecret(secretKey).publicKey);
  });

  it('answers null for every small-order public key, amid ordinary ones', async () => {
    const random = seededRandomBytes('x25519-webcrypto/small-order');
    const ordinary = keyPairFromSecret(random(32)).publicKey;
    const secretKey = random(32);
    const results = await webCrypto.agreeMany(secretKey, [ordinary, ...SMALL_ORDER_POINTS, ordinary]);
    expect(results.slice(1, -1)).toEqual(SMALL_ORDER_POINTS.map(() => null));
    expect(results[0]).toEqual(naclKeyAgreement.agreeMany(secretKey, [ordinary])[0]);
    expect(results.at(-1)).toEqual(results[0]);
  });

  it('refuses keys of the wrong length as caller bugs', async () => {
    await expect(webCrypto.publicKey(new Uint8Array(31))).rejects.toThrow(RangeError);
    await expect(webCrypto.agreeMany(new Uint8Array(33), [])).rejects.toThrow(RangeError);
    await expect(webCrypto.agreeMany(new Uint8Array(32), [new Uint8Array(32), new Uint8Array(31)])).rejects.toThrow(RangeError);
  });
});

describe('webCryptoKeyAgreement falls back to tweetnacl', () => {
  /** Node's WebCrypto with one method replaced. */
  function alteredSubtle(change: Partial<Pick<Subtle, 'importKey' | 'deriveBits'>>): Subtle {
    return Object.assign(Object.create(subtle) as Subtle, {
      importKey: subtle.importKey.bind(subtle),
      deriveBits: subtle.deriveBits.bind(subtle),
      ...change,
    });
  }
  const refusing = alteredSubtle({ importKey: () => Promise.reject(new DOMException('Unrecognized name.', 'NotSupportedError')) });
  // A wrong answer (one bit flipped): the probe catches it, so this "WebCrypto" is never used.
  const lying = alteredSubtle({
    deriveBits: async (...args: Parameters<Subtle['deriveBits']>) => {
      const bits = new Uint8Array(await subtle.deriveBits(...args));
      bits[0]! ^= 1;
      return bits.buffer;
    },
  });

  it.each([
    ['no WebCrypto (e.g. an insecure context)', null],
    ['a WebCrypto without X25519', refusing],
    ['a WebCrypto that gets the RFC 7748 vector wrong', lying],
  ] as const)('%s: tweetnacl, with tweetnacl’s bytes and nulls', async (_name, candidate) => {
    const agreement = webCryptoKeyAgreement(candidate);
    expect(await agreement.implementation()).toBe('tweetnacl');
    const random = seededRandomBytes('x25519-webcrypto/fallback');
    const secretKey = random(32);
    const publicKeys = [random(32), random(32), ...SMALL_ORDER_POINTS.slice(0, 2)];
    expect(await agreement.agreeMany(secretKey, publicKeys)).toEqual(naclKeyAgreement.agreeMany(secretKey, publicKeys));
    expect(await agreement.publicKey(secretKey)).toEqual(keyPairFromSecret(secretKey).publicKey);
  });

  it('probes once per agreement object, however many calls run at the same time', async () => {
    let probes = 0;
    const counting = alteredSubtle({
      importKey: ((...args: Parameters<Subtle['importKey']>) => {
        if (args[0] === 'pkcs8') probes++;
        return (subtle.importKey as (...a: Parameters<Subtle['importKey']>) => ReturnType<Subtle['importKey']>)(...args);
      }) as Subtle['importKey'],
    });
    const agreement = webCryptoKeyAgreement(counting);
    const random = seededRandomBytes('x25519-webcrypto/once');
    const secrets = [random(32), random(32), random(32)];
    await Promise.all(secrets.map((secret) => agreement.publicKey(secret)));
    // One pkcs8 import per call, plus one for the probe when it reached WebCrypto's X25519 at all.
    expect(probes).toBe((await agreement.implementation()) === 'webcrypto' ? secrets.length + 1 : 1);
  });
});

describe('SecAggClient with an asynchronous X25519', () => {
  const params = deriveSecAggParams({ mode: 'secagg', cohortSize: 5, numParams: 8, bound: 1, maxWeight: 10, maxDropout: 0.2 });
  const SESSION = 'session-async';
  const ROUND = 4;

  function makeClient(index: number, agreement: KeyAgreement | AsyncKeyAgreement, seed = `client-${index}`): SecAggClient {
    return new SecAggClient({ config: roundConfig(params, index, SESSION), round: ROUND, numParams: params.numParams, randomBytes: seededRandomBytes(seed), prg: nodeMaskPrg, agreement, signing: nodeSigning });
  }

  /** Clients 2..5 advertised with tweetnacl: client 1's neighbours. */
  function neighbourKeys(): NeighbourKeys[] {
    return [2, 3, 4, 5].map((index) => ({ index, ...makeClient(index, naclKeyAgreement).advertise() }));
  }

  it('advertiseAsync + shareAsync + mask give the bytes of advertise + share + mask with tweetnacl, for the same randomness', async () => {
    const neighbours = neighbourKeys();
    const synchronous = makeClient(1, naclKeyAgreement);
    const asynchronous = makeClient(1, webCrypto);
    const advertised = synchronous.advertise();
    const advertising = asynchronous.advertiseAsync();
    expect(asynchronous.stage).toBe('advertising');
    expect(await advertising).toEqual(advertised);
    const shared = synchronous.share(neighbours);
    const sharing = asynchronous.shareAsync(neighbours);
    expect(asynchronous.stage).toBe('sharing');
    expect(await sharing).toEqual(shared);
    // The pairwise mask secrets agree too: with no inbox expected from anyone but these four, the masked words match.
    const inbox = [2, 3, 4, 5].map((index) => {
      const neighbour = makeClient(index, naclKeyAgreement);
      neighbour.advertise();
      const boxes = neighbour.share([{ index: 1, ...advertised }, ...neighbours.filter((n) => n.index !== index)]).ciphertexts;
      return { from: index, box: boxes.find((box) => box.to === 1)!.box };
    });
    synchronous.receiveInbox(inbox);
    asynchronous.receiveInbox(inbox);
    const values = Float32Array.from({ length: params.numParams }, (_, i) => Math.sin(i) / 2);
    expect(await asynchronous.mask(values, 3)).toEqual(await synchronous.mask(values, 3));
  });

  it('refuses a small-order neighbour key in shareAsync, as share does', async () => {
    const neighbours = neighbourKeys();
    neighbours[1] = { ...neighbours[1]!, maskKey: SMALL_ORDER_POINTS[4]! };
    expect(isSmallOrder(neighbours[1].maskKey)).toBe(true);
    const client = makeClient(1, webCrypto);
    await client.advertiseAsync();
    await expect(client.shareAsync(neighbours)).rejects.toMatchObject({ code: 'REFUSED', message: expect.stringMatching(/neighbour 3 has a small-order key/) });
    expect(client.stage).toBe('failed');
  });

  it('throws INVALID_INPUT from advertise()/share() given an asynchronous X25519, and the client takes no further part', async () => {
    const client = makeClient(1, webCrypto);
    const thrown = (() => {
      try {
        client.advertise();
      } catch (error) {
        return error;
      }
    })();
    expect(thrown).toBeInstanceOf(SecAggError);
    expect(thrown).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/call advertiseAsync\(\)/) });
    expect(client.stage).toBe('failed');

    const second = makeClient(1, webCrypto);
    await second.advertiseAsync();
    expect(() => second.share(neighbourKeys())).toThrow(/call shareAsync\(\)/);
    expect(second.stage).toBe('failed');
  });

  it('a call out of turn while X25519 is pending throws UNEXPECTED_STAGE and leaves the step running', async () => {
    const client = makeClient(1, webCrypto);
    const advertising = client.advertiseAsync();
    await expect(client.advertiseAsync()).rejects.toMatchObject({ code: 'UNEXPECTED_STAGE' });
    expect(() => client.share([])).toThrow(/called in stage advertising/);
    await advertising;
    expect(client.stage).toBe('share');
  });
});
