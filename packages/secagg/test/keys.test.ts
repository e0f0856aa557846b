import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { deriveKey, isSmallOrder, keyPairFromSecret, naclKeyAgreement } from '../src/index.js';
import { nodeKeyAgreement } from '../src/node.js';
import { seededRandomBytes } from './harness.js';
import { SMALL_ORDER_POINTS_HEX, fromHex } from './x25519-vectors.js';

const random = seededRandomBytes('keys');
const context = { sessionId: 'session-a', round: 3 };

const SMALL_ORDER_POINTS = SMALL_ORDER_POINTS_HEX.map(fromHex);

describe('X25519 agreement', () => {
  it('key pairs are tweetnacl box key pairs, and agreement is symmetric', () => {
    const a = keyPairFromSecret(random(32));
    const b = keyPairFromSecret(random(32));
    expect(a.publicKey).toEqual(nacl.scalarMult.base(a.secretKey));
    const [ab] = naclKeyAgreement.agreeMany(a.secretKey, [b.publicKey]);
    const [ba] = naclKeyAgreement.agreeMany(b.secretKey, [a.publicKey]);
    expect(ab).toEqual(ba);
    expect(ab).toHaveLength(32);
  });

  it.each([
    ['tweetnacl', naclKeyAgreement],
    ['node:crypto', nodeKeyAgreement],
  ])('%s rejects every small-order public key (an all-zero shared secret) with null', (_name, agreement) => {
    const secretKey = random(32);
    const results = agreement.agreeMany(secretKey, SMALL_ORDER_POINTS);
    expect(results).toEqual(SMALL_ORDER_POINTS.map(() => null));
    for (const point of SMALL_ORDER_POINTS) expect(isSmallOrder(point, agreement)).toBe(true);
    expect(isSmallOrder(keyPairFromSecret(random(32)).publicKey, agreement)).toBe(false);
  });

  it('node:crypto gives the same bytes as tweetnacl, for random keys and edge-case encodings', () => {
    const publicKeys = Array.from({ length: 40 }, () => random(32));
    // The top bit is ignored by X25519; u ≥ p = 2^255 − 19 is reduced; 9 is the base point.
    publicKeys.push(
      Uint8Array.from(Buffer.from('f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff', 'hex')),
      Uint8Array.from(Buffer.from('efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex')),
      Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 9 : 0)),
    );
    for (let trial = 0; trial < 5; trial++) {
      const secretKey = random(32);
      expect(nodeKeyAgreement.agreeMany(secretKey, publicKeys)).toEqual(naclKeyAgreement.agreeMany(secretKey, publicKeys));
    }
  });

  it('derives the same public keys on node:crypto and tweetnacl, clamping bits included', () => {
    // All-zero and all-one secrets: the clamped bits (the low three, the top two) differ from the raw bytes.
    const secrets = [new Uint8Array(32), new Uint8Array(32).fill(0xff), ...Array.from({ length: 20 }, () => random(32))];
    for (const secretKey of secrets) {
      const expected = keyPairFromSecret(secretKey).publicKey;
      expect(nodeKeyAgreement.publicKey(secretKey)).toEqual(expected);
      expect(naclKeyAgreement.publicKey(secretKey)).toEqual(expected);
    }
  });

  it('refuses keys of the wrong length as caller bugs', () => {
    expect(() => nodeKeyAgreement.publicKey(new Uint8Array(31))).toThrow(RangeError);
    expect(() => naclKeyAgreement.publicKey(new Uint8Array(33))).toThrow(RangeError);
    expect(() => keyPairFromSecret(new Uint8Array(31))).toThrow(RangeError);
    expect(() => naclKeyAgreement.agreeMany(new Uint8Array(32), [new Uint8Array(33)])).toThrow(RangeError);
    expect(() => nodeKeyAgreement.agreeMany(new Uint8Array(31), [])).toThrow(RangeError);
  });
});

describe('deriveKey', () => {
  const secret = random(32);

  it('is deterministic and pinned (SHA-512 over the documented encoding)', () => {
    expect(deriveKey('enc', context, secret, 32)).toEqual(deriveKey('enc', context, secret, 32));
    // Recompute the documented input by hand for one case.
    const label = Buffer.from('shoal/secagg/v1/mask/pair');
    const session = Buffer.from(context.sessionId);
    const input = Buffer.concat([
      u32(label.length), label, u32(session.length), session, u32(0), u32(context.round), u32(2), u32(4), u32(9), u32(secret.length), secret,
    ]);
    expect(deriveKey('mask/pair', context, secret, 16, [4, 9])).toEqual(nacl.hash(input).slice(0, 16));
  });

  it('separates purposes, sessions, rounds, indices and secrets', () => {
    const keys = [
      deriveKey('enc', context, secret, 16),
      deriveKey('mask/self', context, secret, 16),
      deriveKey('mask/pair', context, secret, 16),
      deriveKey('mask/pair', context, secret, 16, [1, 2]),
      deriveKey('mask/pair', context, secret, 16, [1, 3]),
      deriveKey('session', context, secret, 16),
      deriveKey('enc', { ...context, sessionId: 'session-b' }, secret, 16),
      deriveKey('enc', { ...context, round: 4 }, secret, 16),
      deriveKey('enc', { ...context, round: 3 + 2 ** 32 }, secret, 16),
      deriveKey('enc', context, random(32), 16),
      // Length prefixes keep field boundaries apart: "ab" + "c" is not "a" + "bc".
      deriveKey('enc', { ...context, sessionId: 'ab' }, Uint8Array.of(99), 16),
      deriveKey('enc', { ...context, sessionId: 'a' }, Uint8Array.of(98, 99), 16),
    ];
    expect(new Set(keys.map((key) => Buffer.from(key).toString('hex'))).size).toBe(keys.length);
  });

  it('refuses lengths above 64, bad rounds and bad indices', () => {
    expect(() => deriveKey('enc', context, secret, 65)).toThrow(RangeError);
    expect(() => deriveKey('enc', { ...context, round: -1 }, secret, 16)).toThrow(RangeError);
    expect(() => deriveKey('enc', { ...context, round: 1.5 }, secret, 16)).toThrow(RangeError);
    expect(() => deriveKey('mask/pair', context, secret, 16, [2 ** 32])).toThrow(RangeError);
  });
});

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}
