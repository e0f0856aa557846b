import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SIGNATURE_BYTES, SIGNING_KEY_BYTES, SIGNING_SEED_BYTES, naclSigning } from '../src/index.js';
import type { Signing } from '../src/index.js';
import { nodeSigning } from '../src/node.js';

// Ed25519 is deterministic (RFC 8032), so tweetnacl and node:crypto must agree byte for byte:
// a client signing with one and a coordinator checking with the other see the same signatures.

const hex = (text: string) => Uint8Array.from(Buffer.from(text, 'hex'));
const implementations: [string, Signing][] = [
  ['tweetnacl', naclSigning],
  ['node:crypto', nodeSigning],
];
const seedArbitrary = fc.uint8Array({ minLength: SIGNING_SEED_BYTES, maxLength: SIGNING_SEED_BYTES });
const messageArbitrary = fc.uint8Array({ maxLength: 300 });

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = bytes.slice();
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

describe('nodeSigning and naclSigning', () => {
  it('give the RFC 8032 test vector 1 (empty message)', () => {
    const seed = hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
    const publicKey = hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    const signature = hex('e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b');
    for (const [, signing] of implementations) {
      const keyPair = signing.keyPair(seed);
      expect(keyPair.publicKey).toEqual(publicKey);
      expect(signing.sign(keyPair, new Uint8Array(0))).toEqual(signature);
      expect(signing.verify(publicKey, new Uint8Array(0), signature)).toBe(true);
    }
  });

  it('give identical public keys and signatures for random seeds and messages, and each verifies the other\'s (property)', () => {
    fc.assert(
      fc.property(seedArbitrary, messageArbitrary, (seed, message) => {
        const nacl = naclSigning.keyPair(seed);
        const node = nodeSigning.keyPair(seed);
        expect(node.publicKey).toEqual(nacl.publicKey);
        const byNacl = naclSigning.sign(nacl, message);
        const byNode = nodeSigning.sign(node, message);
        expect(byNode).toEqual(byNacl);
        expect(byNode).toHaveLength(SIGNATURE_BYTES);
        expect(naclSigning.verify(node.publicKey, message, byNode)).toBe(true);
        expect(nodeSigning.verify(nacl.publicKey, message, byNacl)).toBe(true);
      }),
      { numRuns: 25, seed: 8032 },
    );
  });

  it.each(implementations)('%s rejects a tampered message, a tampered signature and another key (property)', (_name, signing) => {
    fc.assert(
      fc.property(seedArbitrary, seedArbitrary, messageArbitrary, fc.nat(), (seed, otherSeed, message, bit) => {
        fc.pre(seed.some((byte, i) => byte !== otherSeed[i]));
        const keyPair = signing.keyPair(seed);
        const signature = signing.sign(keyPair, message);
        const longer = Uint8Array.from([...message, 0]);
        if (message.length > 0) expect(signing.verify(keyPair.publicKey, flipBit(message, bit % (8 * message.length)), signature)).toBe(false);
        expect(signing.verify(keyPair.publicKey, longer, signature)).toBe(false);
        expect(signing.verify(keyPair.publicKey, message, flipBit(signature, bit % (8 * SIGNATURE_BYTES)))).toBe(false);
        expect(signing.verify(signing.keyPair(otherSeed).publicKey, message, signature)).toBe(false);
      }),
      { numRuns: 15, seed: 25519 },
    );
  });

  it.each(implementations)('%s: verify says false, without throwing, for wrong lengths and for keys that are not curve points', (_name, signing) => {
    const keyPair = signing.keyPair(new Uint8Array(SIGNING_SEED_BYTES).fill(7));
    const message = new TextEncoder().encode('survivors');
    const signature = signing.sign(keyPair, message);
    expect(signing.verify(keyPair.publicKey.subarray(0, SIGNING_KEY_BYTES - 1), message, signature)).toBe(false);
    expect(signing.verify(Uint8Array.from([...keyPair.publicKey, 0]), message, signature)).toBe(false);
    expect(signing.verify(keyPair.publicKey, message, signature.subarray(0, SIGNATURE_BYTES - 1))).toBe(false);
    expect(signing.verify(keyPair.publicKey, message, Uint8Array.from([...signature, 0]))).toBe(false);
    expect(signing.verify(new Uint8Array(0), message, new Uint8Array(0))).toBe(false);
    // y = 2 has no x on the curve (x² = (y² − 1)/(d·y² + 1) is not a square mod 2^255 − 19).
    const notAPoint = new Uint8Array(SIGNING_KEY_BYTES);
    notAPoint[0] = 2;
    expect(signing.verify(notAPoint, message, signature)).toBe(false);
  });

  it.each(implementations)('%s: a seed of the wrong length is a caller bug (RangeError)', (_name, signing) => {
    expect(() => signing.keyPair(new Uint8Array(SIGNING_SEED_BYTES - 1))).toThrow(RangeError);
    expect(() => signing.keyPair(new Uint8Array(SIGNING_SEED_BYTES + 1))).toThrow(RangeError);
    const keyPair = signing.keyPair(new Uint8Array(SIGNING_SEED_BYTES));
    expect(() => signing.sign({ ...keyPair, seed: keyPair.seed.subarray(1) }, new Uint8Array(1))).toThrow(RangeError);
  });
});
