import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import type { NeighbourKeys } from '@shoal/protocol';
import { FIELD_PRIME, SHARE_BOX_BYTES, SecAggClient, deriveSecAggParams, keyPairFromSecret, naclKeyAgreement, openShares, roundConfig, sealShares, shareBoxKey } from '../src/index.js';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '../src/node.js';
import { SECAGG_LIMITS } from '@shoal/protocol';
import { seededRandomBytes } from './harness.js';

const random = seededRandomBytes('share-crypto');
const alice = keyPairFromSecret(random(32));
const bob = keyPairFromSecret(random(32));
const carol = keyPairFromSecret(random(32));
const agreed = (a: typeof alice, b: typeof alice) => naclKeyAgreement.agreeMany(a.secretKey, [b.publicKey])[0]!;
const context = { sessionId: 'session-a', round: 7 };
const shares = { selfMaskShare: 123456789n, maskKeyShare: FIELD_PRIME - 1n };
const address = { ...context, sender: 1, recipient: 2 };

function seal(over: Partial<typeof address> = {}, key = shareBoxKey(agreed(alice, bob), { ...context, ...over })): Uint8Array {
  return sealShares(key, random(24), { ...address, ...over }, shares);
}

describe('share boxes', () => {
  it('open at the recipient with the key it derives from its own secret, and fit the protocol limit', () => {
    const box = seal();
    expect(box).toHaveLength(SHARE_BOX_BYTES);
    expect(SHARE_BOX_BYTES).toBeLessThanOrEqual(SECAGG_LIMITS.maxBoxBytes);
    const bobKey = shareBoxKey(agreed(bob, alice), context);
    expect(openShares(bobKey, box, address)).toEqual({ ok: true, shares });
  });

  it('carry the nonce they were sealed with in front: the same shares under two nonces seal to different boxes', () => {
    const nonce = random(24);
    const box = sealShares(shareBoxKey(agreed(alice, bob), context), nonce, address, shares);
    expect(box.subarray(0, 24)).toEqual(nonce);
    expect(Buffer.from(seal()).equals(Buffer.from(seal()))).toBe(false);
  });

  it('reject any flipped bit (nonce, MAC or ciphertext)', () => {
    const box = seal();
    const key = shareBoxKey(agreed(bob, alice), context);
    for (let bit = 0; bit < box.length * 8; bit += 7) {
      const tampered = box.slice();
      tampered[bit >> 3]! ^= 1 << (bit & 7);
      expect(openShares(key, tampered, address)).toMatchObject({ ok: false, reason: expect.stringMatching(/does not decrypt/) });
    }
  });

  it('reject a box replayed from the next round, even under the same key pair', () => {
    // Same X25519 keys, round + 1: the derived key differs, so it does not even decrypt.
    const box = seal();
    const nextRound = { ...context, round: context.round + 1 };
    expect(openShares(shareBoxKey(agreed(bob, alice), nextRound), box, { ...address, ...nextRound })).toMatchObject({ ok: false });
    // And if a key were ever reused across rounds, the bound round still gives it away.
    const sameKey = shareBoxKey(agreed(bob, alice), context);
    expect(openShares(sameKey, box, { ...address, round: 8 })).toEqual({ ok: false, reason: 'is for round 7, not 8' });
  });

  it('reject a box for another recipient, a box bounced back to its sender, and another session', () => {
    const key = shareBoxKey(agreed(bob, alice), context);
    const box = seal();
    expect(openShares(key, box, { ...address, recipient: 3 })).toEqual({ ok: false, reason: 'names recipient 2, not 3' });
    // Alice → Bob bounced back to Alice "from Bob": same pair key, but the names are swapped.
    expect(openShares(key, box, { ...address, sender: 2, recipient: 1 })).toEqual({ ok: false, reason: 'names sender 1, not 2' });
    expect(openShares(key, box, { ...address, sessionId: 'session-b' })).toEqual({ ok: false, reason: 'is for another session' });
  });

  it('reject a box sealed for someone else (Carol cannot open Alice → Bob)', () => {
    const carolKey = shareBoxKey(agreed(carol, alice), context);
    expect(openShares(carolKey, seal(), { ...address, recipient: 3 })).toMatchObject({ ok: false, reason: expect.stringMatching(/does not decrypt/) });
  });

  it('reject truncated or padded boxes without throwing', () => {
    const key = shareBoxKey(agreed(bob, alice), context);
    const box = seal();
    expect(openShares(key, box.subarray(0, 100), address)).toEqual({ ok: false, reason: `has 100 bytes, not ${SHARE_BOX_BYTES}` });
    expect(openShares(key, new Uint8Array(0), address)).toMatchObject({ ok: false });
    expect(openShares(key, new Uint8Array([...box, 0]), address)).toMatchObject({ ok: false });
  });

  it('reject a well-authenticated box whose plaintext has another format version or a share outside the field', () => {
    const key = shareBoxKey(agreed(alice, bob), context);
    const box = seal({}, key);
    const nonce = box.subarray(0, 24);
    const plaintext = nacl.secretbox.open(box.subarray(24), nonce, key)!;
    const reseal = (edit: (bytes: Uint8Array) => void) => {
      const edited = plaintext.slice();
      edit(edited);
      return new Uint8Array([...nonce, ...nacl.secretbox(edited, nonce, key)]);
    };
    expect(openShares(key, reseal((bytes) => (bytes[0] = 2)), address)).toEqual({ ok: false, reason: 'has format version 2, not 1' });
    expect(openShares(key, reseal((bytes) => bytes.fill(0xff, 33, 66)), address)).toEqual({ ok: false, reason: 'holds a share outside the field' });
    expect(openShares(key, reseal(() => {}), address)).toEqual({ ok: true, shares });
  });

  it('seal only field elements (a caller bug otherwise)', () => {
    const key = shareBoxKey(agreed(alice, bob), context);
    expect(() => sealShares(key, random(24), address, { ...shares, maskKeyShare: FIELD_PRIME })).toThrow(RangeError);
    expect(() => sealShares(key, random(23), address, shares)).toThrow(RangeError);
  });
});

/**
 * The nonces the client really seals with in a round (SecAggClient.share), not ones a test hands
 * to sealShares: each box must carry 24 bytes drawn from the client's randomness for that box.
 */
describe('the share stage of a SecAgg client', () => {
  const params = deriveSecAggParams({ mode: 'secagg', cohortSize: 5, numParams: 8, bound: 1, maxWeight: 10, maxDropout: 0.2 });
  const ROUND = 3;

  /** A randomness source that can switch streams mid-round and records every draw while `recording`. */
  function switchableRandom(seed: string) {
    let source = seededRandomBytes(seed);
    const draws: Uint8Array[] = [];
    let recording = false;
    return {
      randomBytes: (n: number) => {
        const bytes = source(n);
        if (recording) draws.push(bytes.slice());
        return bytes;
      },
      continueWith(nextSeed: string) {
        source = seededRandomBytes(nextSeed);
        recording = true;
      },
      draws,
    };
  }

  function client(index: number, randomBytes: (n: number) => Uint8Array): SecAggClient {
    const config = roundConfig(params, index, context.sessionId);
    return new SecAggClient({ config, round: ROUND, numParams: params.numParams, randomBytes, prg: nodeMaskPrg, agreement: nodeKeyAgreement, signing: nodeSigning });
  }

  const neighbours: NeighbourKeys[] = [2, 3, 4, 5].map((index) => ({ index, ...client(index, seededRandomBytes(`neighbour-${index}`)).advertise() }));
  const nonceOf = (box: Uint8Array) => Buffer.from(box.subarray(0, 24)).toString('hex');

  it('seals each box with its own 24 bytes from the client\'s randomness, drawn during the share stage', () => {
    const random = switchableRandom('sealer');
    const sealer = client(1, random.randomBytes);
    sealer.advertise();
    random.continueWith('sealer-share-stage');
    const { ciphertexts } = sealer.share(neighbours);
    expect(ciphertexts.map((c) => c.to)).toEqual([2, 3, 4, 5]);
    const nonces = ciphertexts.map((c) => nonceOf(c.box));
    expect(new Set(nonces).size).toBe(ciphertexts.length);
    const drawnNonces = random.draws.filter((draw) => draw.length === 24).map((draw) => Buffer.from(draw).toString('hex'));
    for (const nonce of nonces) expect(drawnNonces).toContain(nonce);
  });

  it('never repeats a nonce under one key: the same keys, neighbour and round sealed twice give two nonces', () => {
    // Two runs of client 1 with the same key pairs (the same randomness through advertise), so
    // every box key is the same; the share stage's randomness then differs, as a retried round's would.
    const [first, second] = ['run-a', 'run-b'].map((run) => {
      const random = switchableRandom('same-keys');
      const sealer = client(1, random.randomBytes);
      const advertised = sealer.advertise();
      random.continueWith(run);
      return { advertised, boxes: sealer.share(neighbours).ciphertexts };
    });
    expect(first!.advertised.encryptionKey).toEqual(second!.advertised.encryptionKey);
    for (const [i, box] of first!.boxes.entries()) {
      expect(second!.boxes[i]!.to).toBe(box.to);
      expect(nonceOf(second!.boxes[i]!.box)).not.toBe(nonceOf(box.box));
    }
  });
});
