import { describe, expect, it } from 'vitest';
import { SECAGG_LIMITS, decodeClientMessage, encodeFrame, maxClientPayloadBytes } from '../src/index.js';
import { NUM_PARAMS, REMOVE, bytes, expectRejected, fromClient, fromCoordinator, validMessages, withField } from './fixtures.js';

// Validation of the secure-aggregation messages (docs/protocol.md, "Secure aggregation").
const valid = validMessages();

describe('SecAgg round trips', () => {
  it.each([
    ['advertise', valid.advertise],
    ['shares', valid.shares],
    ['masked', valid.masked],
    ['confirm', valid.confirm],
    ['reveal', valid.reveal],
    ['reveal with no shares', valid.revealEmpty],
  ])('a valid %s from a client decodes to an equal message', (_name, message) => {
    expect(fromClient(message)).toEqual({ ok: true, message });
  });

  it.each([
    ['train with secagg', valid.trainSecAgg],
    ['train with secagg asking for metrics', { ...valid.trainSecAgg, secagg: { ...valid.trainSecAgg.secagg, shareMetrics: true } }],
    ['keys', valid.keys],
    ['inbox', valid.inbox],
    ['survivors', valid.survivors],
    ['survivors, empty (the client refuses it, the decoder need not)', { ...valid.survivors, survivors: [] }],
    ['unmask', valid.unmask],
    ['unmask with no signatures', valid.unmaskEmpty],
  ])('a valid %s from the coordinator decodes to an equal message', (_name, message) => {
    expect(fromCoordinator(message, NUM_PARAMS)).toEqual({ ok: true, message });
  });

  it('accepts bytes sent as msgpack bin (a Buffer in Node) and returns a fresh plain Uint8Array', () => {
    const asBuffer = { ...valid.advertise, encryptionKey: Buffer.from(valid.advertise.encryptionKey) };
    const frame = encodeFrame(asBuffer);
    const result = decodeClientMessage(frame, { numParams: NUM_PARAMS });
    if (!result.ok || result.message.type !== 'advertise') throw new Error(`expected an advertise, got ${JSON.stringify(result)}`);
    expect(Object.getPrototypeOf(result.message.encryptionKey)).toBe(Uint8Array.prototype);
    expect(result.message.encryptionKey).toEqual(valid.advertise.encryptionKey);
    frame.fill(0); // the caller may reuse the frame's memory
    expect(result.message.encryptionKey).toEqual(valid.advertise.encryptionKey);
    expect(result.message.maskKey).toEqual(valid.advertise.maskKey);
  });

  it('returns masked words as a Uint32Array that owns its buffer', () => {
    const frame = encodeFrame(valid.masked);
    const result = decodeClientMessage(frame, { numParams: NUM_PARAMS });
    if (!result.ok || result.message.type !== 'masked') throw new Error('expected a masked message');
    expect(result.message.masked).toBeInstanceOf(Uint32Array);
    expect(result.message.masked.byteOffset).toBe(0);
    expect(result.message.masked.buffer.byteLength).toBe((NUM_PARAMS + 1) * 4);
    frame.fill(0);
    expect(Array.from(result.message.masked)).toEqual(Array.from(valid.masked.masked));
  });
});

describe('SecAgg rejections', () => {
  it('keeps each direction to its own messages', () => {
    for (const message of [valid.keys, valid.inbox, valid.survivors, valid.unmask]) {
      expectRejected(fromClient(message), 'INVALID_MESSAGE', `unknown message type "${message.type}"`);
    }
    for (const message of [valid.advertise, valid.shares, valid.masked, valid.confirm, valid.reveal]) {
      expectRejected(fromCoordinator(message), 'INVALID_MESSAGE', `unknown message type "${message.type}"`);
    }
  });

  it.each<[string, object, string, unknown, string]>([
    ['31-byte key', valid.advertise, 'encryptionKey', bytes(31, 0), 'advertise.encryptionKey has 31 bytes; it must have exactly 32'],
    ['33-byte key', valid.advertise, 'maskKey', bytes(33, 0), 'advertise.maskKey has 33 bytes'],
    ['key as a number list', valid.advertise, 'maskKey', Array.from(bytes(32, 0)), 'advertise.maskKey is not a Uint8Array'],
    ['key as a Uint32Array', valid.advertise, 'maskKey', new Uint32Array(8), 'advertise.maskKey is not a Uint8Array'],
    ['key as a string', valid.advertise, 'maskKey', 'k'.repeat(32), 'advertise.maskKey is not a Uint8Array'],
    ['missing mask key', valid.advertise, 'maskKey', REMOVE, 'advertise.maskKey is missing'],
    ['unknown advertise field', valid.advertise, 'identityKey', bytes(32, 0), 'advertise has an unknown field "identityKey"'],
    ['31-byte signing key', valid.advertise, 'signingKey', bytes(31, 0), 'advertise.signingKey has 31 bytes; it must have exactly 32'],
    ['missing signing key', valid.advertise, 'signingKey', REMOVE, 'advertise.signingKey is missing'],
    ['63-byte signature', valid.advertise, 'signature', bytes(63, 0), 'advertise.signature has 63 bytes; it must have exactly 64'],
    ['65-byte signature', valid.advertise, 'signature', bytes(65, 0), 'advertise.signature has 65 bytes'],
    ['signature as a number list', valid.advertise, 'signature', Array.from(bytes(64, 0)), 'advertise.signature is not a Uint8Array'],
    ['missing signature', valid.advertise, 'signature', REMOVE, 'advertise.signature is missing'],
    ['empty confirm signature', valid.confirm, 'signature', new Uint8Array(0), 'confirm.signature has 0 bytes; it must have exactly 64'],
    ['confirm signature of 128 bytes', valid.confirm, 'signature', bytes(128, 0), 'confirm.signature has 128 bytes'],
    ['confirm signature as a string', valid.confirm, 'signature', 's'.repeat(64), 'confirm.signature is not a Uint8Array'],
    ['confirm without a signature', valid.confirm, 'signature', REMOVE, 'confirm.signature is missing'],
    ['confirm carrying the survivor set', valid.confirm, 'survivors', [1, 3], 'confirm has an unknown field "survivors"'],
    ['confirm for a negative round', valid.confirm, 'round', -1, 'confirm.round'],
    ['recipient 0', valid.shares, 'ciphertexts.0.to', 0, 'shares.ciphertexts[0].to is 0'],
    ['recipient above the index limit', valid.shares, 'ciphertexts.1.to', 100_001, 'shares.ciphertexts[1].to is 100001; it must be ≤ 100000'],
    ['fractional recipient', valid.shares, 'ciphertexts.0.to', 1.5, 'shares.ciphertexts[0].to'],
    ['repeated recipient', valid.shares, 'ciphertexts.1.to', 1, 'shares.ciphertexts[1].to repeats 1'],
    ['empty box', valid.shares, 'ciphertexts.0.box', new Uint8Array(0), 'shares.ciphertexts[0].box has 0 bytes'],
    ['box over 192 bytes', valid.shares, 'ciphertexts.0.box', bytes(193, 0), 'shares.ciphertexts[0].box has 193 bytes; it must have 1 to 192'],
    ['box entry with an extra field', valid.shares, 'ciphertexts.0.nonce', bytes(24, 0), 'shares.ciphertexts[0] has an unknown field "nonce"'],
    ['ciphertexts not a list', valid.shares, 'ciphertexts', {}, 'shares.ciphertexts is not an array'],
    ['masked as Float32Array', valid.masked, 'masked', new Float32Array(NUM_PARAMS + 1), 'masked.masked is not a Uint32Array'],
    ['masked as a number list', valid.masked, 'masked', [1, 2, 3, 4, 5, 6, 7], 'masked.masked is not a Uint32Array'],
    ['masked with metrics of the wrong shape', valid.masked, 'metrics', { loss: 1 }, 'masked.metrics'],
    ['share over 64 bytes', valid.reveal, 'selfMaskShares.0.share', bytes(65, 0), 'reveal.selfMaskShares[0].share has 65 bytes'],
    ['share of index 0', valid.reveal, 'maskKeyShares.0.of', 0, 'reveal.maskKeyShares[0].of is 0'],
    ['two shares of one client', valid.reveal, 'selfMaskShares.1.of', 3, 'reveal.selfMaskShares[1].of repeats 3'],
    ['missing maskKeyShares', valid.reveal, 'maskKeyShares', REMOVE, 'reveal.maskKeyShares is missing'],
  ])('client: %s', (_name, message, path, value, reason) => {
    expectRejected(fromClient(withField(message, path, value)), 'INVALID_MESSAGE', reason);
  });

  it('refuses masked as an Int32Array in the decoder: no message uses that typed-array kind', () => {
    expectRejected(fromClient(withField(valid.masked, 'masked', new Int32Array(NUM_PARAMS + 1))), 'MALFORMED_MESSAGE', 'typed array kind 5');
  });

  it.each<[string, object, string, unknown, string]>([
    ['neighbour key of 16 bytes', valid.keys, 'neighbours.0.encryptionKey', bytes(16, 0), 'keys.neighbours[0].encryptionKey has 16 bytes'],
    ['neighbour index 0', valid.keys, 'neighbours.1.index', 0, 'keys.neighbours[1].index is 0'],
    ['neighbour listed twice', valid.keys, 'neighbours.1.index', 1, 'keys.neighbours[1].index repeats 1'],
    ['neighbour without mask key', valid.keys, 'neighbours.0.maskKey', REMOVE, 'keys.neighbours[0].maskKey is missing'],
    ['neighbour without signing key', valid.keys, 'neighbours.1.signingKey', REMOVE, 'keys.neighbours[1].signingKey is missing'],
    ['neighbour without signature', valid.keys, 'neighbours.0.signature', REMOVE, 'keys.neighbours[0].signature is missing'],
    ['neighbour signature of 32 bytes', valid.keys, 'neighbours.1.signature', bytes(32, 0), 'keys.neighbours[1].signature has 32 bytes; it must have exactly 64'],
    ['neighbour signing key of 64 bytes', valid.keys, 'neighbours.0.signingKey', bytes(64, 0), 'keys.neighbours[0].signingKey has 64 bytes; it must have exactly 32'],
    ['neighbour with an unknown field', valid.keys, 'neighbours.0.identityKey', bytes(32, 0), 'keys.neighbours[0] has an unknown field "identityKey"'],
    ['inbox sender as a string', valid.inbox, 'ciphertexts.0.from', '1', 'inbox.ciphertexts[0].from is not a number'],
    ['inbox box of 0 bytes', valid.inbox, 'ciphertexts.0.box', new Uint8Array(0), 'inbox.ciphertexts[0].box has 0 bytes'],
    ['survivor listed twice', valid.survivors, 'survivors', [3, 1, 3], 'survivors.survivors[2] repeats 3'],
    ['survivor index above the limit', valid.survivors, 'survivors', [100_001], 'survivors.survivors[0] is 100001'],
    ['survivor index 0', valid.survivors, 'survivors', [0, 1], 'survivors.survivors[0] is 0'],
    ['survivors not a list', valid.survivors, 'survivors', 3, 'survivors.survivors is not an array'],
    ['survivors without the list', valid.survivors, 'survivors', REMOVE, 'survivors.survivors is missing'],
    ['survivors with the dropped list of version 1', valid.survivors, 'dropped', [2], 'survivors has an unknown field "dropped"'],
    ['unmask with the survivor list of version 1', valid.unmask, 'survivors', [1, 3], 'unmask has an unknown field "survivors"'],
    ['unmask without signatures', valid.unmask, 'signatures', REMOVE, 'unmask.signatures is missing'],
    ['unmask signatures not a list', valid.unmask, 'signatures', {}, 'unmask.signatures is not an array'],
    ['unmask signature of 63 bytes', valid.unmask, 'signatures.0.signature', bytes(63, 0), 'unmask.signatures[0].signature has 63 bytes; it must have exactly 64'],
    ['unmask signature as a number list', valid.unmask, 'signatures.1.signature', Array.from(bytes(64, 0)), 'unmask.signatures[1].signature is not a Uint8Array'],
    ['unmask signature from index 0', valid.unmask, 'signatures.0.index', 0, 'unmask.signatures[0].index is 0'],
    ['two unmask signatures from one client', valid.unmask, 'signatures.1.index', 3, 'unmask.signatures[1].index repeats 3'],
    ['unmask signature entry with an extra field', valid.unmask, 'signatures.0.survivors', [1], 'unmask.signatures[0] has an unknown field "survivors"'],
    ['unmask signature entry that is not a map', valid.unmask, 'signatures.0', bytes(64, 0), 'unmask.signatures[0] is not an object'],
    ['unknown secagg mode', valid.trainSecAgg, 'secagg.mode', 'secagg++', 'train.secagg.mode is not one of secagg, secagg+'],
    ['secagg index 0', valid.trainSecAgg, 'secagg.index', 0, 'train.secagg.index'],
    ['threshold 1', valid.trainSecAgg, 'secagg.threshold', 1, 'train.secagg.threshold is 1; it must be an integer ≥ 2'],
    ['threshold above degree', valid.trainSecAgg, 'secagg.threshold', 6, 'train.secagg.threshold 6 exceeds degree 5'],
    ['degree above the index limit', valid.trainSecAgg, 'secagg.degree', 100_001, 'train.secagg.degree is 100001'],
    ['zero bound', valid.trainSecAgg, 'secagg.bound', 0, 'train.secagg.bound'],
    ['negative scale', valid.trainSecAgg, 'secagg.scale', -1, 'train.secagg.scale'],
    ['fractional maxWeight', valid.trainSecAgg, 'secagg.maxWeight', 1.5, 'train.secagg.maxWeight'],
    ['maxWeight of 2^32', valid.trainSecAgg, 'secagg.maxWeight', 2 ** 32, 'train.secagg.maxWeight is 4294967296; it must be < 2^32'],
    ['empty session id', valid.trainSecAgg, 'secagg.sessionId', '', 'train.secagg.sessionId is empty'],
    ['shareMetrics that is not a boolean', valid.trainSecAgg, 'secagg.shareMetrics', 1, 'train.secagg.shareMetrics'],
    ['unknown secagg field', valid.trainSecAgg, 'secagg.clipNorm', 1, 'train.secagg has an unknown field "clipNorm"'],
    ['secagg that is not a map', valid.trainSecAgg, 'secagg', [], 'train.secagg is not an object'],
  ])('coordinator: %s', (_name, message, path, value, reason) => {
    expectRejected(fromCoordinator(withField(message, path, value), NUM_PARAMS), 'INVALID_MESSAGE', reason);
  });

  it('a masked input of any length but numParams + 1 words is LENGTH_MISMATCH', () => {
    for (const length of [0, NUM_PARAMS, NUM_PARAMS + 2]) {
      const result = fromClient(withField(valid.masked, 'masked', new Uint32Array(length)));
      expectRejected(result, 'LENGTH_MISMATCH', `masked.masked has ${length} words; it must have ${NUM_PARAMS + 1}`);
    }
  });

  it('non-finite numbers in SecAgg messages are NON_FINITE', () => {
    expectRejected(fromClient(withField(valid.shares, 'ciphertexts.0.to', NaN)), 'NON_FINITE', 'shares.ciphertexts[0].to is NaN');
    expectRejected(fromCoordinator(withField(valid.trainSecAgg, 'secagg.bound', Infinity)), 'NON_FINITE', 'train.secagg.bound is Infinity');
    expectRejected(fromClient(withField(valid.masked, 'metrics.loss', NaN)), 'NON_FINITE', 'masked.metrics.loss is NaN');
  });

  it('bounds the number of list entries', () => {
    const tooMany = Array.from({ length: SECAGG_LIMITS.maxEntries + 1 }, (_, i) => i + 1);
    expectRejected(fromCoordinator({ ...valid.survivors, survivors: tooMany }), 'INVALID_MESSAGE', 'survivors.survivors has 100001 entries; the limit is 100000');
    const signature = bytes(64, 0);
    const tooManySignatures = tooMany.map((index) => ({ index, signature }));
    expectRejected(fromCoordinator({ ...valid.unmask, signatures: tooManySignatures }), 'INVALID_MESSAGE', 'unmask.signatures has 100001 entries; the limit is 100000');
  });
});

describe('frame size limit with SecAgg', () => {
  it('adds 256 bytes per neighbour to the model-derived limit', () => {
    expect(maxClientPayloadBytes(10, 0)).toBe(maxClientPayloadBytes(10));
    expect(maxClientPayloadBytes(10, 500) - maxClientPayloadBytes(10)).toBe(500 * 256);
  });

  it('admits the largest masked frame of a model', () => {
    const numParams = 10_000;
    const message = {
      ...valid.masked,
      round: Number.MAX_SAFE_INTEGER,
      modelVersion: '中'.repeat(256),
      masked: new Uint32Array(numParams + 1).fill(2 ** 32 - 1),
      metrics: { loss: 1 / 3, accuracy: 1 / 3, trainMs: 1 / 3 },
    };
    const frame = encodeFrame(message);
    expect(frame.byteLength).toBeLessThanOrEqual(maxClientPayloadBytes(numParams));
    expect(decodeClientMessage(frame, { numParams })).toMatchObject({ ok: true });
  });

  it('admits the largest shares and reveal frames of a full-SecAgg round of 100,000 clients, even for a tiny model', () => {
    const degree = SECAGG_LIMITS.maxIndex;
    const limits = { numParams: NUM_PARAMS, secaggDegree: degree };
    const box = bytes(SECAGG_LIMITS.maxBoxBytes, 0);
    const share = bytes(SECAGG_LIMITS.maxShareBytes, 0);
    // A client sends one box to each other client, and reveals one share of each client.
    const shares = { type: 'shares', round: Number.MAX_SAFE_INTEGER, ciphertexts: Array.from({ length: degree - 1 }, (_, i) => ({ to: i + 2, box })) };
    const half = degree / 2;
    const reveal = {
      type: 'reveal',
      round: Number.MAX_SAFE_INTEGER,
      selfMaskShares: Array.from({ length: half }, (_, i) => ({ of: i + 1, share })),
      maskKeyShares: Array.from({ length: half }, (_, i) => ({ of: half + i + 1, share })),
    };
    for (const message of [shares, reveal]) {
      const frame = encodeFrame(message);
      expect(frame.byteLength).toBeLessThanOrEqual(maxClientPayloadBytes(limits.numParams, limits.secaggDegree));
      expect(decodeClientMessage(frame, limits)).toMatchObject({ ok: true });
    }
    // Without the degree, the same shares frame is too large for a 6-parameter model.
    expectRejected(decodeClientMessage(encodeFrame(shares), { numParams: NUM_PARAMS }), 'MESSAGE_TOO_LARGE');
  });
});
