import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BUILTIN_MODELS,
  PROTOCOL_VERSION,
  builtinTopology,
  closeCodeOf,
  decodeClientMessage,
  decodeCoordinatorMessage,
  decodeFrame,
  encodeFrame,
  manifestOfSequential,
  numParams as countParams,
} from '../src/index.js';
import type { ClientMessage, CoordinatorMessage, Decoded } from '../src/index.js';

const NUM_PARAMS = 16;

/** Holds for every decoder answer: no throw (checked by reaching here), and a valid close code. */
function expectWellFormedAnswer(result: Decoded<unknown>): void {
  if (result.ok) return;
  const closeCode = closeCodeOf(result.code);
  expect(closeCode).toBeGreaterThanOrEqual(4000);
  expect(closeCode).toBeLessThanOrEqual(4999);
  expect(result.reason).not.toMatch(/^internal/); // a checker crashed: a bug in validate.ts
}

function decodeBoth(bytes: Uint8Array): void {
  expectWellFormedAnswer(decodeClientMessage(bytes, { numParams: NUM_PARAMS }));
  expectWellFormedAnswer(decodeCoordinatorMessage(bytes, { numParams: NUM_PARAMS }));
  expectWellFormedAnswer(decodeCoordinatorMessage(bytes));
}

// ---- arbitraries for valid messages ----

/** Doubles msgpack carries exactly (it writes -0 as the integer 0). */
const finiteDouble = (min: number, max: number) =>
  fc.double({ min, max, noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : x));
const text = (maxLength: number, minLength = 1) =>
  fc.string({ unit: 'grapheme', minLength, maxLength }).filter((s) => s.length >= minLength && s.length <= maxLength);
const count = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const vector = (length: number) =>
  fc.float32Array({ minLength: length, maxLength: length, noNaN: true, noDefaultInfinity: true });
const metricsArbitrary = fc.record({ loss: finiteDouble(-1e300, 1e300), accuracy: finiteDouble(0, 1), trainMs: finiteDouble(0, 1e12) });
// SecAgg pieces: indices are Shamir x-coordinates in [1, 100000]; lists name each index at most once.
const secaggIndex = fc.integer({ min: 1, max: 100_000 });
const key = fc.uint8Array({ minLength: 32, maxLength: 32 });
const signature = fc.uint8Array({ minLength: 64, maxLength: 64 });
const box = fc.uint8Array({ minLength: 1, maxLength: 192 });
const share = fc.uint8Array({ minLength: 1, maxLength: 64 });
const boxesTo = fc.uniqueArray(fc.record({ to: secaggIndex, box }), { selector: (entry) => entry.to, maxLength: 8 });
const boxesFrom = fc.uniqueArray(fc.record({ from: secaggIndex, box }), { selector: (entry) => entry.from, maxLength: 8 });
const sharesOf = fc.uniqueArray(fc.record({ of: secaggIndex, share }), { selector: (entry) => entry.of, maxLength: 8 });

/** Valid values for each field of each client message, shared by the valid and the noisy generators. */
const CLIENT_FIELDS = {
  hello: {
    protocolVersion: fc.constant(PROTOCOL_VERSION),
    numExamples: count,
    capabilities: fc.array(text(64), { maxLength: 32 }),
    resumeToken: text(256),
    modelVersion: text(256),
    identityKey: key,
  },
  update: {
    round: count,
    modelVersion: text(256),
    numExamples: count,
    delta: vector(NUM_PARAMS),
    metrics: metricsArbitrary,
  },
  decline: { round: count, reason: text(1024, 0) },
  advertise: { round: count, encryptionKey: key, maskKey: key, signingKey: key, signature },
  shares: { round: count, ciphertexts: boxesTo },
  masked: {
    round: count,
    modelVersion: text(256),
    masked: fc.uint32Array({ minLength: NUM_PARAMS + 1, maxLength: NUM_PARAMS + 1 }),
    metrics: metricsArbitrary,
  },
  confirm: { round: count, signature },
  reveal: { round: count, selfMaskShares: sharesOf, maskKeyShares: sharesOf },
};

const helloArbitrary: fc.Arbitrary<ClientMessage> = fc.record(
  { type: fc.constant('hello' as const), ...CLIENT_FIELDS.hello },
  { requiredKeys: ['type', 'protocolVersion', 'capabilities'] },
);
const updateArbitrary: fc.Arbitrary<ClientMessage> = fc.record({ type: fc.constant('update' as const), ...CLIENT_FIELDS.update });
const declineArbitrary: fc.Arbitrary<ClientMessage> = fc.record({ type: fc.constant('decline' as const), ...CLIENT_FIELDS.decline });
const secaggClientArbitraries: fc.Arbitrary<ClientMessage>[] = [
  fc.record({ type: fc.constant('advertise' as const), ...CLIENT_FIELDS.advertise }),
  fc.record({ type: fc.constant('shares' as const), ...CLIENT_FIELDS.shares }),
  fc.record({ type: fc.constant('masked' as const), ...CLIENT_FIELDS.masked }),
  fc.record({ type: fc.constant('confirm' as const), ...CLIENT_FIELDS.confirm }),
  fc.record({ type: fc.constant('reveal' as const), ...CLIENT_FIELDS.reveal }),
];
const clientMessageArbitrary = fc.oneof(helloArbitrary, updateArbitrary, declineArbitrary, ...secaggClientArbitraries);

const welcomeArbitrary: fc.Arbitrary<CoordinatorMessage> = fc
  .record({
    name: fc.constantFrom(...BUILTIN_MODELS),
    side: fc.integer({ min: 8, max: 32 }),
    numClasses: fc.integer({ min: 2, max: 20 }),
    clientId: text(256),
    resumeToken: text(256),
    heartbeatIntervalMs: finiteDouble(1e-3, 1e9),
  })
  .map(({ name, side, numClasses, clientId, resumeToken, heartbeatIntervalMs }) => {
    const topology = builtinTopology(name, name === 'cnn' ? [side, side, 1] : [side * side], numClasses);
    if (topology.format !== 'shoal-sequential') throw new Error('built-in models are shoal-sequential');
    const model = { topology, manifest: manifestOfSequential(topology) };
    return { type: 'welcome', protocolVersion: PROTOCOL_VERSION, clientId, resumeToken, model, heartbeatIntervalMs } as const;
  });

const trainArbitrary: fc.Arbitrary<CoordinatorMessage> = fc.record(
  {
    type: fc.constant('train' as const),
    round: count,
    modelVersion: text(256),
    weights: vector(NUM_PARAMS),
    config: fc.record({
      epochs: fc.integer({ min: 1, max: 1000 }),
      batchSize: fc.integer({ min: 1, max: 1 << 20 }),
      learningRate: finiteDouble(1e-12, 1e3).filter((x) => x > 0),
      optimizer: fc.constantFrom('sgd' as const, 'adam' as const),
      proximalMu: finiteDouble(0, 1e3),
    }),
    deadlineMs: finiteDouble(1e-3, 1e9),
    secagg: fc
      .record({
        mode: fc.constantFrom('secagg' as const, 'secagg+' as const),
        index: secaggIndex,
        degree: fc.integer({ min: 2, max: 100_000 }),
        thresholdFraction: fc.double({ min: 0, max: 1, noNaN: true }),
        bound: finiteDouble(1e-6, 1e6).filter((x) => x > 0),
        scale: finiteDouble(1e-6, 1e9).filter((x) => x > 0),
        maxWeight: fc.integer({ min: 1, max: 2 ** 32 - 1 }),
        sessionId: text(256),
      })
      .map(({ thresholdFraction, ...config }) => ({ ...config, threshold: 2 + Math.floor(thresholdFraction * (config.degree - 2)) })),
  },
  { requiredKeys: ['type', 'round', 'modelVersion', 'config', 'deadlineMs'] },
);

const resultArbitrary: fc.Arbitrary<CoordinatorMessage> = fc.record(
  {
    type: fc.constant('result' as const),
    round: count,
    status: fc.constantFrom('committed' as const, 'aborted' as const),
    modelVersion: text(256),
    reason: text(1024, 0),
  },
  { requiredKeys: ['type', 'round', 'status', 'modelVersion'] },
);

/** Valid values for each field of each SecAgg coordinator message, shared by the valid and the noisy generators. */
const SECAGG_COORDINATOR_FIELDS = {
  keys: {
    round: count,
    neighbours: fc.uniqueArray(fc.record({ index: secaggIndex, encryptionKey: key, maskKey: key, signingKey: key, signature }), { selector: (entry) => entry.index, maxLength: 8 }),
  },
  inbox: { round: count, ciphertexts: boxesFrom },
  survivors: { round: count, survivors: fc.uniqueArray(secaggIndex, { maxLength: 16 }) },
  unmask: { round: count, signatures: fc.uniqueArray(fc.record({ index: secaggIndex, signature }), { selector: (entry) => entry.index, maxLength: 8 }) },
};
const keysArbitrary: fc.Arbitrary<CoordinatorMessage> = fc.record({ type: fc.constant('keys' as const), ...SECAGG_COORDINATOR_FIELDS.keys });
const inboxArbitrary: fc.Arbitrary<CoordinatorMessage> = fc.record({ type: fc.constant('inbox' as const), ...SECAGG_COORDINATOR_FIELDS.inbox });
const survivorsArbitrary: fc.Arbitrary<CoordinatorMessage> = fc.record({ type: fc.constant('survivors' as const), ...SECAGG_COORDINATOR_FIELDS.survivors });
const unmaskArbitrary: fc.Arbitrary<CoordinatorMessage> = fc.record({ type: fc.constant('unmask' as const), ...SECAGG_COORDINATOR_FIELDS.unmask });

const coordinatorMessageArbitrary = fc.oneof(welcomeArbitrary, trainArbitrary, resultArbitrary, keysArbitrary, inboxArbitrary, survivorsArbitrary, unmaskArbitrary);

// ---- properties ----

describe('arbitrary bytes', () => {
  it('never throw and answer ok or a 4xxx close code (small frames)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => decodeBoth(bytes)), { numRuns: 2000 });
  });

  it('never throw on frames up to 64 KiB', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1024, maxLength: 64 * 1024 }), (bytes) => decodeBoth(bytes)), { numRuns: 200 });
  });

  it('never throw on valid frames with bytes flipped, cut or appended', () => {
    const mutation = fc.record({
      index: fc.nat(),
      byte: fc.integer({ min: 0, max: 255 }),
      cut: fc.boolean(),
      append: fc.uint8Array({ maxLength: 8 }),
    });
    const message = fc.oneof(clientMessageArbitrary, coordinatorMessageArbitrary);
    fc.assert(
      fc.property(message, mutation, (value, { index, byte, cut, append }) => {
        const bytes = encodeFrame(value).slice();
        bytes[index % bytes.length] = byte;
        const mutated = cut ? bytes.subarray(0, index % bytes.length) : new Uint8Array([...bytes, ...append]);
        decodeBoth(mutated);
      }),
      { numRuns: 1000 },
    );
  });
});

const CLIENT_SCHEMA = {
  hello: { required: ['type', 'protocolVersion', 'capabilities'], optional: ['numExamples', 'resumeToken', 'modelVersion', 'identityKey'] },
  update: { required: ['type', 'round', 'modelVersion', 'numExamples', 'delta', 'metrics'], optional: ['unclipped'] },
  decline: { required: ['type', 'round', 'reason'], optional: [] },
  advertise: { required: ['type', 'round', 'encryptionKey', 'maskKey', 'signingKey', 'signature'], optional: [] },
  shares: { required: ['type', 'round', 'ciphertexts'], optional: [] },
  masked: { required: ['type', 'round', 'modelVersion', 'masked'], optional: ['metrics'] },
  confirm: { required: ['type', 'round', 'signature'], optional: [] },
  reveal: { required: ['type', 'round', 'selfMaskShares', 'maskKeyShares'], optional: [] },
} as const;

const SECAGG_COORDINATOR_SCHEMA = {
  keys: { required: ['type', 'round', 'neighbours'], optional: [] },
  inbox: { required: ['type', 'round', 'ciphertexts'], optional: [] },
  survivors: { required: ['type', 'round', 'survivors'], optional: [] },
  unmask: { required: ['type', 'round', 'signatures'], optional: [] },
} as const;

type Schema = { readonly required: readonly string[]; readonly optional: readonly string[] };

describe('arbitrary objects with a real type', () => {
  // Noise: values of every kind, some with the right type but a wrong value.
  const noise = fc.oneof(
    fc.jsonValue(),
    fc.constantFrom(0, 1, -1, 0.5, NaN, Infinity, PROTOCOL_VERSION + 1, '', 'v1', [], ['cap'], null),
    fc.float32Array({ maxLength: 2 * NUM_PARAMS }),
    fc.float64Array({ maxLength: 4 }),
    fc.record({ loss: fc.double(), accuracy: fc.double(), trainMs: fc.double() }),
    fc.uint8Array({ maxLength: 40 }),
    fc.uint8Array({ minLength: 60, maxLength: 68 }), // around a signature's 64 bytes
    fc.uint32Array({ maxLength: NUM_PARAMS + 2 }),
    fc.array(fc.integer({ min: -1, max: 4 }), { maxLength: 4 }), // index lists with 0, -1 and repeats
    fc.array(fc.record({ index: fc.integer({ min: -1, max: 3 }), signature: fc.uint8Array({ minLength: 62, maxLength: 66 }) }), { maxLength: 3 }),
    fc.array(fc.record({ to: fc.integer({ min: -1, max: 3 }), box: fc.uint8Array({ maxLength: 4 }) }), { maxLength: 3 }),
    fc.array(fc.record({ of: fc.integer({ min: -1, max: 3 }), share: fc.uint8Array({ maxLength: 4 }) }), { maxLength: 3 }),
  );
  /** Each schema field is absent, valid or noise; sometimes an unknown field is added. */
  const noisyObject = (type: string, schemaFields: Record<string, fc.Arbitrary<unknown>>) => {
    const fields = Object.fromEntries(
      Object.entries(schemaFields).map(([key, valid]) => [
        key,
        fc.option(fc.oneof({ weight: 4, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: noise }), { freq: 8, nil: undefined }),
      ]),
    );
    const unknown = fc.option(fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), noise, { minKeys: 1, maxKeys: 2 }), { freq: 4, nil: undefined });
    return fc.record({ fields: fc.record(fields), unknown }).map(({ fields, unknown }) => {
      const value: Record<string, unknown> = { ...unknown, type };
      for (const [key, fieldValue] of Object.entries(fields)) if (fieldValue !== undefined) value[key] = fieldValue;
      return value;
    });
  };
  const noisyObjects = (table: Record<string, Record<string, fc.Arbitrary<unknown>>>) =>
    fc.oneof(...Object.entries(table).map(([type, fields]) => noisyObject(type, fields)));

  /**
   * Decodes noisy objects with `decode`: none throws, any that misses a required field or has an
   * unknown one is refused, and an accepted one is exactly what was on the wire.
   */
  const checkNoisy = (objects: fc.Arbitrary<Record<string, unknown>>, schemas: Record<string, Schema>, decode: (frame: Uint8Array) => Decoded<unknown>, numRuns: number) => {
    const outcomes = new Map<string, number>();
    fc.assert(
      fc.property(objects, (value) => {
        const frame = encodeFrame(value);
        const result = decode(frame);
        expectWellFormedAnswer(result);
        const outcome = result.ok ? 'accepted' : result.code;
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        const schema = schemas[value.type as string]!;
        const keys = Object.keys(value);
        const known: readonly string[] = [...schema.required, ...schema.optional];
        const breaksSchema = schema.required.some((key) => !keys.includes(key)) || keys.some((key) => !known.includes(key));
        if (breaksSchema) expect(result.ok).toBe(false);
        if (result.ok) {
          // An accepted message is exactly what was on the wire: nothing was dropped or coerced.
          expect(result.message).toEqual(decodeFrame(frame));
          expect(decode(encodeFrame(result.message as object))).toEqual(result);
        }
      }),
      { numRuns },
    );
    return outcomes;
  };

  it('never throw; reject any object missing a required field or with an unknown one; accept only fixed points', () => {
    const outcomes = checkNoisy(noisyObjects(CLIENT_FIELDS), CLIENT_SCHEMA, (frame) => decodeClientMessage(frame, { numParams: NUM_PARAMS }), 1500);
    // The generator must exercise both sides, or the property above proves little.
    // About 8% are accepted. NON_FINITE and LENGTH_MISMATCH are too rare here to require; the
    // corrupted-update properties below cover them.
    expect(outcomes.get('accepted')).toBeGreaterThan(10);
    expect(outcomes.get('INVALID_MESSAGE')).toBeGreaterThan(10);
  });

  it('the same for the SecAgg messages from the coordinator (keys, inbox, survivors, unmask)', () => {
    const outcomes = checkNoisy(noisyObjects(SECAGG_COORDINATOR_FIELDS), SECAGG_COORDINATOR_SCHEMA, (frame) => decodeCoordinatorMessage(frame), 1000);
    expect(outcomes.get('accepted')).toBeGreaterThan(10);
    expect(outcomes.get('INVALID_MESSAGE')).toBeGreaterThan(10);
  });

  it('never throw on arbitrary values of any shape', () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 3, withTypedArray: true, withBoxedValues: false }), (value) => {
        let bytes: Uint8Array;
        try {
          bytes = encodeFrame(value as object);
        } catch {
          return; // not every JavaScript value has a msgpack encoding
        }
        decodeBoth(bytes);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('valid generated messages', () => {
  it('client messages round-trip and are accepted', () => {
    fc.assert(
      fc.property(clientMessageArbitrary, (message) => {
        expect(decodeClientMessage(encodeFrame(message), { numParams: NUM_PARAMS })).toEqual({ ok: true, message });
      }),
      { numRuns: 300 },
    );
  });

  it('coordinator messages round-trip and are accepted', () => {
    fc.assert(
      fc.property(coordinatorMessageArbitrary, (message) => {
        expect(decodeCoordinatorMessage(encodeFrame(message), { numParams: NUM_PARAMS })).toEqual({ ok: true, message });
        if (message.type === 'welcome') expect(countParams(message.model.manifest)).toBeGreaterThan(0);
      }),
      { numRuns: 200 },
    );
  });
});

describe('corrupted updates', () => {
  const update = updateArbitrary as fc.Arbitrary<Extract<ClientMessage, { type: 'update' }>>;

  it('one NaN or ±Infinity at any index is NON_FINITE and names the index', () => {
    const bad = fc.constantFrom(NaN, Infinity, -Infinity);
    fc.assert(
      fc.property(update, fc.nat({ max: NUM_PARAMS - 1 }), bad, (message, index, value) => {
        const delta = message.delta.slice();
        delta[index] = value;
        const result = decodeClientMessage(encodeFrame({ ...message, delta }), { numParams: NUM_PARAMS });
        expect(result).toEqual({ ok: false, code: 'NON_FINITE', reason: `update.delta[${index}] is ${value}` });
      }),
      { numRuns: 300 },
    );
  });

  it('any other length is LENGTH_MISMATCH', () => {
    const wrongLength = fc.nat({ max: 4 * NUM_PARAMS }).filter((length) => length !== NUM_PARAMS);
    fc.assert(
      fc.property(update, wrongLength, (message, length) => {
        const result = decodeClientMessage(encodeFrame({ ...message, delta: new Float32Array(length) }), { numParams: NUM_PARAMS });
        expect(result).toMatchObject({ ok: false, code: 'LENGTH_MISMATCH' });
      }),
      { numRuns: 300 },
    );
  });
});

describe('corrupted SecAgg messages', () => {
  it('a masked input of any length but numParams + 1 is LENGTH_MISMATCH', () => {
    const masked = fc.record({ type: fc.constant('masked' as const), ...CLIENT_FIELDS.masked });
    const wrongLength = fc.nat({ max: 4 * NUM_PARAMS }).filter((length) => length !== NUM_PARAMS + 1);
    fc.assert(
      fc.property(masked, wrongLength, (message, length) => {
        const result = decodeClientMessage(encodeFrame({ ...message, masked: new Uint32Array(length) }), { numParams: NUM_PARAMS });
        expect(result).toMatchObject({ ok: false, code: 'LENGTH_MISMATCH' });
      }),
      { numRuns: 200 },
    );
  });

  it('a key of any length but 32 bytes is INVALID_MESSAGE', () => {
    const advertise = fc.record({ type: fc.constant('advertise' as const), ...CLIENT_FIELDS.advertise });
    const wrongKey = fc.uint8Array({ maxLength: 64 }).filter((bytes) => bytes.length !== 32);
    fc.assert(
      fc.property(advertise, wrongKey, (message, maskKey) => {
        const result = decodeClientMessage(encodeFrame({ ...message, maskKey }), { numParams: NUM_PARAMS });
        expect(result).toMatchObject({ ok: false, code: 'INVALID_MESSAGE' });
      }),
      { numRuns: 200 },
    );
  });

  /** A message from `message` with `bytes` at the field `set` chooses; each must be refused as INVALID_MESSAGE naming `path`. */
  const BYTE_FIELDS = [
    { what: 'hello.identityKey', length: 32, side: 'client', message: fc.record({ type: fc.constant('hello' as const), ...CLIENT_FIELDS.hello }), set: (m: object, b: Uint8Array) => ({ ...m, identityKey: b }) },
    { what: 'advertise.signingKey', length: 32, side: 'client', message: fc.record({ type: fc.constant('advertise' as const), ...CLIENT_FIELDS.advertise }), set: (m: object, b: Uint8Array) => ({ ...m, signingKey: b }) },
    { what: 'advertise.signature', length: 64, side: 'client', message: fc.record({ type: fc.constant('advertise' as const), ...CLIENT_FIELDS.advertise }), set: (m: object, b: Uint8Array) => ({ ...m, signature: b }) },
    { what: 'confirm.signature', length: 64, side: 'client', message: fc.record({ type: fc.constant('confirm' as const), ...CLIENT_FIELDS.confirm }), set: (m: object, b: Uint8Array) => ({ ...m, signature: b }) },
    {
      what: 'keys.neighbours[0].signature',
      length: 64,
      side: 'coordinator',
      message: fc.record({ type: fc.constant('keys' as const), round: count, neighbours: SECAGG_COORDINATOR_FIELDS.keys.neighbours.filter((list) => list.length > 0) }),
      set: (m: object, b: Uint8Array) => {
        const keys = m as { neighbours: object[] };
        return { ...keys, neighbours: [{ ...keys.neighbours[0], signature: b }, ...keys.neighbours.slice(1)] };
      },
    },
    {
      what: 'keys.neighbours[0].signingKey',
      length: 32,
      side: 'coordinator',
      message: fc.record({ type: fc.constant('keys' as const), round: count, neighbours: SECAGG_COORDINATOR_FIELDS.keys.neighbours.filter((list) => list.length > 0) }),
      set: (m: object, b: Uint8Array) => {
        const keys = m as { neighbours: object[] };
        return { ...keys, neighbours: [{ ...keys.neighbours[0], signingKey: b }, ...keys.neighbours.slice(1)] };
      },
    },
    {
      what: 'unmask.signatures[0].signature',
      length: 64,
      side: 'coordinator',
      message: fc.record({ type: fc.constant('unmask' as const), round: count, signatures: SECAGG_COORDINATOR_FIELDS.unmask.signatures.filter((list) => list.length > 0) }),
      set: (m: object, b: Uint8Array) => {
        const unmask = m as { signatures: object[] };
        return { ...unmask, signatures: [{ ...unmask.signatures[0], signature: b }, ...unmask.signatures.slice(1)] };
      },
    },
  ] as const;

  it.each(BYTE_FIELDS.map((field) => [field.what, field] as const))('%s of any length but its own is INVALID_MESSAGE naming the field', (_what, field) => {
    const wrongLength = fc.uint8Array({ maxLength: 2 * field.length + 1 }).filter((bytes) => bytes.length !== field.length);
    fc.assert(
      fc.property(field.message as fc.Arbitrary<object>, wrongLength, (message, wrong) => {
        const frame = encodeFrame(field.set(message, wrong));
        const result = field.side === 'client' ? decodeClientMessage(frame, { numParams: NUM_PARAMS }) : decodeCoordinatorMessage(frame);
        expect(result).toEqual({ ok: false, code: 'INVALID_MESSAGE', reason: `${field.what} has ${wrong.length} bytes; it must have exactly ${field.length}` });
      }),
      { numRuns: 100 },
    );
  });

  it('a survivor set or signature list naming one client twice is INVALID_MESSAGE', () => {
    const list = fc.uniqueArray(secaggIndex, { minLength: 1, maxLength: 16 });
    fc.assert(
      fc.property(list, fc.nat(), count, (survivors, pick, round) => {
        const repeated = survivors[pick % survivors.length]!;
        const twice = [...survivors, repeated];
        expect(decodeCoordinatorMessage(encodeFrame({ type: 'survivors', round, survivors: twice }))).toEqual({
          ok: false,
          code: 'INVALID_MESSAGE',
          reason: `survivors.survivors[${survivors.length}] repeats ${repeated}`,
        });
        const signatures = twice.map((index) => ({ index, signature: new Uint8Array(64) }));
        expect(decodeCoordinatorMessage(encodeFrame({ type: 'unmask', round, signatures }))).toMatchObject({ ok: false, code: 'INVALID_MESSAGE' });
      }),
      { numRuns: 200 },
    );
  });
});
