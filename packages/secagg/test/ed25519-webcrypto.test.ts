// Ed25519 on WebCrypto (ed25519-webcrypto.ts) in Node, and the SecAgg client's asynchronous
// signing steps. Node 20 has WebCrypto Ed25519; the suite's name says which path ran, and the
// fallback is forced too (no `subtle`, a refusing one, a lying one), so tweetnacl's path runs here
// whatever this Node has. The same checks run in real Chromium in test/browser/ed25519-webcrypto.test.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NeighbourKeys } from '@shoal/protocol';
import { SecAggClient, SecAggError, deriveSecAggParams, naclSigning, roundConfig, webCryptoSigning } from '../src/index.js';
import type { Advertisement, AsyncSigning, Shares, Signing } from '../src/index.js';
import { nodeKeyAgreement, nodeMaskPrg } from '../src/node.js';
import { seededRandomBytes } from './harness.js';
import { ED25519_VECTORS } from './ed25519-vectors.js';
import { fromHex } from './x25519-vectors.js';

type Subtle = typeof globalThis.crypto.subtle;
const subtle: Subtle = globalThis.crypto.subtle;

const webCrypto = webCryptoSigning();
const implementation = await webCrypto.implementation();

describe(`webCryptoSigning in Node ${process.version} (runs on ${implementation})`, () => {
  it('reports the path this Node takes, and WebCrypto only when this Node signs with Ed25519', async () => {
    const hasEd25519 = await subtle
      .generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])
      .then(() => true)
      .catch(() => false);
    console.info(`ed25519-webcrypto: Node ${process.version} ${hasEd25519 ? 'has' : 'lacks'} WebCrypto Ed25519; webCryptoSigning runs on ${implementation}`);
    expect(implementation).toBe(hasEd25519 ? 'webcrypto' : 'tweetnacl');
  });

  it('computes RFC 8032 §7.1 TEST 1–3: public keys, signatures, and their verification', async () => {
    for (const vector of ED25519_VECTORS) {
      const keyPair = await webCrypto.keyPair(fromHex(vector.seed));
      expect(keyPair.publicKey).toEqual(fromHex(vector.publicKey));
      const signature = await webCrypto.sign(keyPair, fromHex(vector.message));
      expect(signature).toEqual(fromHex(vector.signature));
      expect(await webCrypto.verify(keyPair.publicKey, fromHex(vector.message), signature)).toBe(true);
    }
  });

  it('gives tweetnacl’s public keys and signatures for random seeds and messages, and agrees with it on every verification', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 300 }), fc.nat(64 * 8 - 1), async (seed, message, flippedBit) => {
        const keyPair = await webCrypto.keyPair(seed);
        expect(keyPair).toEqual(naclSigning.keyPair(seed));
        const signature = await webCrypto.sign(keyPair, message);
        expect(signature).toEqual(naclSigning.sign(keyPair, message));
        expect(await webCrypto.verify(keyPair.publicKey, message, signature)).toBe(true);
        const forged = signature.slice();
        forged[flippedBit >> 3]! ^= 1 << (flippedBit & 7);
        // A flipped bit of S may leave it non-canonical, which tweetnacl alone accepts; every forgery
        // that tweetnacl refuses, WebCrypto refuses too.
        if (!naclSigning.verify(keyPair.publicKey, message, forged)) expect(await webCrypto.verify(keyPair.publicKey, message, forged)).toBe(false);
      }),
      { seed: 11, numRuns: 60 },
    );
  });

  it('refuses a signature under another key, of another message, and of the wrong sizes', async () => {
    const random = seededRandomBytes('ed25519-webcrypto/refuse');
    const alice = await webCrypto.keyPair(random(32));
    const bob = await webCrypto.keyPair(random(32));
    const message = random(40);
    const signature = await webCrypto.sign(alice, message);
    expect(await webCrypto.verify(bob.publicKey, message, signature)).toBe(false);
    expect(await webCrypto.verify(alice.publicKey, random(40), signature)).toBe(false);
    expect(await webCrypto.verify(alice.publicKey, message, signature.subarray(0, 63))).toBe(false);
    expect(await webCrypto.verify(alice.publicKey.subarray(0, 31), message, signature)).toBe(false);
    // Not a point encoding WebCrypto imports (y ≥ p): tweetnacl decides, and refuses.
    const notAPoint = fromHex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
    expect(await webCrypto.verify(notAPoint, message, signature)).toBe(naclSigning.verify(notAPoint, message, signature));
  });

  it('refuses seeds and key pairs of the wrong length as caller bugs', async () => {
    await expect(webCrypto.keyPair(new Uint8Array(31))).rejects.toThrow(RangeError);
    await expect(webCrypto.sign({ seed: new Uint8Array(32), publicKey: new Uint8Array(31) }, new Uint8Array(1))).rejects.toThrow(RangeError);
  });
});

describe('webCryptoSigning falls back to tweetnacl', () => {
  /** Node's WebCrypto with one method replaced. */
  function alteredSubtle(change: Partial<Pick<Subtle, 'importKey' | 'sign'>>): Subtle {
    return Object.assign(Object.create(subtle) as Subtle, {
      importKey: subtle.importKey.bind(subtle),
      exportKey: subtle.exportKey.bind(subtle),
      sign: subtle.sign.bind(subtle),
      verify: subtle.verify.bind(subtle),
      ...change,
    });
  }
  const refusing = alteredSubtle({ importKey: () => Promise.reject(new DOMException('Unrecognized name.', 'NotSupportedError')) });
  // A wrong signature (one bit flipped): the probe catches it, so this "WebCrypto" is never used.
  const lying = alteredSubtle({
    sign: async (...args: Parameters<Subtle['sign']>) => {
      const signature = new Uint8Array(await subtle.sign(...args));
      signature[0]! ^= 1;
      return signature.buffer;
    },
  });

  it.each([
    ['no WebCrypto (e.g. an insecure context)', null],
    ['a WebCrypto without Ed25519', refusing],
    ['a WebCrypto that gets RFC 8032 TEST 1 wrong', lying],
  ] as const)('%s: tweetnacl, with tweetnacl’s bytes', async (_name, candidate) => {
    const signing = webCryptoSigning(candidate);
    expect(await signing.implementation()).toBe('tweetnacl');
    const random = seededRandomBytes('ed25519-webcrypto/fallback');
    const seed = random(32);
    const message = random(50);
    const keyPair = await signing.keyPair(seed);
    expect(keyPair).toEqual(naclSigning.keyPair(seed));
    expect(await signing.sign(keyPair, message)).toEqual(naclSigning.sign(keyPair, message));
    expect(await signing.verify(keyPair.publicKey, message, naclSigning.sign(keyPair, message))).toBe(true);
  });
});

describe('SecAggClient with an asynchronous Ed25519', () => {
  const params = deriveSecAggParams({ mode: 'secagg', cohortSize: 5, numParams: 8, bound: 1, maxWeight: 10, maxDropout: 0.2 });
  const SESSION = 'session-async-signing';
  const ROUND = 6;
  const INDICES = [1, 2, 3, 4, 5];

  function makeClient(index: number, signing: Signing | AsyncSigning, trusted?: readonly Uint8Array[]): SecAggClient {
    return new SecAggClient({
      config: roundConfig(params, index, SESSION),
      round: ROUND,
      numParams: params.numParams,
      randomBytes: seededRandomBytes(`signing-client-${index}`),
      prg: nodeMaskPrg,
      agreement: nodeKeyAgreement,
      signing,
      identitySeed: seededRandomBytes(`identity-${index}`)(32),
      ...(trusted ? { trustedIdentityKeys: trusted } : {}),
    });
  }

  /**
   * A whole round of five clients, all synchronous on tweetnacl or all asynchronous on `signing`
   * (client 1 pinned to trusted identities, so it verifies advertisements too): every message each
   * client sends, in order.
   */
  async function round(signing: Signing | AsyncSigning, asynchronous: boolean): Promise<unknown[]> {
    const trusted = INDICES.map((index) => naclSigning.keyPair(seededRandomBytes(`identity-${index}`)(32)).publicKey);
    const clients = INDICES.map((index) => makeClient(index, signing, index === 1 ? trusted : undefined));
    const sent: unknown[] = [];
    const advertised: Advertisement[] = [];
    for (const client of clients) advertised.push(asynchronous ? await client.advertiseAsync() : client.advertise());
    sent.push(advertised);
    const keys = (index: number): NeighbourKeys[] => INDICES.filter((other) => other !== index).map((other) => ({ index: other, ...advertised[other - 1]! }));
    const shared: Shares[] = [];
    for (const client of clients) shared.push(asynchronous ? await client.shareAsync(keys(client.index)) : client.share(keys(client.index)));
    sent.push(shared);
    for (const client of clients) {
      client.receiveInbox(shared.flatMap((s, i) => s.ciphertexts.filter((box) => box.to === client.index).map((box) => ({ from: i + 1, box: box.box }))));
      sent.push(await client.mask(new Float32Array(params.numParams).fill(client.index / 10), 1));
    }
    const signatures: Uint8Array[] = [];
    for (const client of clients) signatures.push(asynchronous ? await client.confirmAsync(INDICES) : client.confirm(INDICES));
    sent.push(signatures);
    for (const client of clients) {
      const forwarded = INDICES.filter((other) => other !== client.index).map((other) => ({ index: other, signature: signatures[other - 1]! }));
      sent.push(asynchronous ? await client.revealAsync(forwarded) : client.reveal(forwarded));
    }
    return sent;
  }

  it('a round of asynchronous steps on WebCrypto sends the bytes of the synchronous steps on tweetnacl; the asynchronous steps take a synchronous Signing too', async () => {
    const expected = await round(naclSigning, false);
    expect(await round(webCrypto, true)).toEqual(expected);
    expect(await round(naclSigning, true)).toEqual(expected);
  });

  it('confirmAsync and revealAsync are in confirming and revealing while they wait; confirm() needs confirmAsync(); revealAsync refuses a forged signature', async () => {
    const clients = INDICES.map((index) => makeClient(index, webCrypto));
    const advertised = await Promise.all(clients.map((client) => client.advertiseAsync()));
    const shared = await Promise.all(clients.map((client) => client.shareAsync(INDICES.filter((other) => other !== client.index).map((other) => ({ index: other, ...advertised[other - 1]! })))));
    for (const client of clients) {
      client.receiveInbox(shared.flatMap((s, i) => s.ciphertexts.filter((box) => box.to === client.index).map((box) => ({ from: i + 1, box: box.box }))));
      await client.mask(new Float32Array(params.numParams), 1);
    }
    expect(() => clients[4]!.confirm(INDICES)).toThrow(/call confirmAsync\(\)/);
    expect(clients[4]!.stage).toBe('failed');
    const confirming = clients.slice(0, 4).map((client) => client.confirmAsync(INDICES));
    expect(clients[0]!.stage).toBe('confirming');
    const signatures = await Promise.all(confirming);
    const forged = signatures[1]!.slice();
    forged[5]! ^= 0x10;
    expect(() => clients[3]!.reveal([1, 2, 3].map((index) => ({ index, signature: signatures[index - 1]! })))).toThrow(/call revealAsync\(\)/);
    const revealing = clients[0]!.revealAsync([{ index: 2, signature: forged }, ...[3, 4].map((index) => ({ index, signature: signatures[index - 1]! }))]);
    expect(clients[0]!.stage).toBe('revealing');
    await expect(revealing).rejects.toMatchObject({ code: 'REFUSED', message: expect.stringMatching(/signature of 2 does not verify/) });
    expect(clients[0]!.stage).toBe('failed');
  });

  it('shareAsync refuses a neighbour whose advertisement does not carry its trusted identity’s signature', async () => {
    const trusted = INDICES.map((index) => naclSigning.keyPair(seededRandomBytes(`identity-${index}`)(32)).publicKey);
    const client = makeClient(1, webCrypto, trusted);
    await client.advertiseAsync();
    const neighbours = [2, 3, 4, 5].map((index) => ({ index, ...makeClient(index, naclSigning).advertise() }));
    const signature = neighbours[2]!.signature.slice();
    signature[0]! ^= 1;
    neighbours[2] = { ...neighbours[2]!, signature };
    await expect(client.shareAsync(neighbours)).rejects.toMatchObject({ code: 'REFUSED', message: expect.stringMatching(/advertisement of neighbour 4 does not carry its signature/) });
  });

  it('throws INVALID_INPUT from advertise() given an asynchronous Ed25519, naming advertiseAsync(), and the client takes no further part', async () => {
    const thrown = (step: () => unknown) => {
      try {
        step();
      } catch (error) {
        return error;
      }
    };
    const first = makeClient(1, webCrypto);
    const error = thrown(() => first.advertise());
    expect(error).toBeInstanceOf(SecAggError);
    expect(error).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/call advertiseAsync\(\)/) });
    expect(first.stage).toBe('failed');
  });
});
