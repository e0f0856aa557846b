import { describe, expect, it } from 'vitest';
import {
  PROTOCOL_VERSION,
  decodeClientMessage,
  decodeCoordinatorMessage,
  encodeFrame,
  maxClientPayloadBytes,
} from '../src/index.js';
import { NUM_PARAMS, REMOVE, expectRejected, fromClient, fromCoordinator, validMessages, withField } from './fixtures.js';

const valid = validMessages();

describe('round trips', () => {
  it.each([
    ['hello', valid.hello],
    ['hello with resume token and model version', valid.helloResuming],
    ['hello with a pinned identity key', valid.helloIdentity],
    ['hello without numExamples (the SDK no longer sends it)', (({ numExamples: _omitted, ...hello }) => hello)(valid.hello)],
    ['update', valid.update],
    ['decline', valid.decline],
  ])('a valid %s from a client decodes to an equal message', (_name, message) => {
    const result = fromClient(message);
    expect(result).toEqual({ ok: true, message });
  });

  it.each([
    ['welcome (shoal-sequential)', valid.welcome],
    ['welcome (tfjs-layers)', valid.welcomeTfjs],
    ['train with weights', valid.train],
    ['train without weights', valid.trainCached],
    ['committed result', valid.result],
    ['aborted result with reason', valid.resultAborted],
  ])('a valid %s from the coordinator decodes to an equal message', (_name, message) => {
    expect(fromCoordinator(message, NUM_PARAMS)).toEqual({ ok: true, message });
  });

  it('returns vectors as Float32Arrays that own an aligned buffer, not views into the frame', () => {
    const frame = encodeFrame(valid.update);
    const result = decodeClientMessage(frame, { numParams: NUM_PARAMS });
    if (!result.ok || result.message.type !== 'update') throw new Error(`expected an update, got ${JSON.stringify(result)}`);
    const delta = result.message.delta;
    expect(delta).toBeInstanceOf(Float32Array);
    expect(delta.byteOffset).toBe(0);
    expect(delta.buffer.byteLength).toBe(NUM_PARAMS * 4);
    expect(delta.buffer).not.toBe(frame.buffer);
    expect(Array.from(delta)).toEqual(Array.from(valid.update.delta));
    frame.fill(0); // the caller may reuse the frame's memory
    expect(Array.from(delta)).toEqual(Array.from(valid.update.delta));

    const train = decodeCoordinatorMessage(encodeFrame(valid.train));
    if (!train.ok || train.message.type !== 'train') throw new Error('expected a train message');
    expect(train.message.weights?.byteOffset).toBe(0);
    expect(train.message.weights?.buffer.byteLength).toBe(NUM_PARAMS * 4);
  });

  it('returns a fresh object holding only schema fields, and treats an undefined optional as absent', () => {
    const result = fromClient({ ...valid.hello, resumeToken: undefined });
    expect(result).toEqual({ ok: true, message: valid.hello });
    if (result.ok) expect(Object.keys(result.message as object)).not.toContain('resumeToken');
  });

  it('accepts train.weights of any length while numParams is not yet known', () => {
    expect(fromCoordinator(withField(valid.train, 'weights', new Float32Array(3)))).toMatchObject({ ok: true });
    expectRejected(fromCoordinator(withField(valid.train, 'weights', new Float32Array(3)), NUM_PARAMS), 'LENGTH_MISMATCH');
  });
});

describe('MALFORMED_MESSAGE', () => {
  it.each([
    ['empty bytes', new Uint8Array(0)],
    ['a reserved msgpack byte', new Uint8Array([0xc1])],
    ['a truncated map', new Uint8Array([0x82, 0xa4, 0x74, 0x79, 0x70, 0x65])],
    ['trailing bytes after a message', new Uint8Array([...encodeFrame(valid.decline), 0xc0])],
    ['a number', encodeFrame(5 as unknown as object)],
    ['nil', encodeFrame(null as unknown as object)],
    ['an array', encodeFrame(['hello'])],
    ['a string', encodeFrame('hello' as unknown as object)],
    ['a Date', encodeFrame(new Date(0))],
    ['a Float32Array', encodeFrame(new Float32Array(4))],
    ['an object without type', encodeFrame({ round: 1 })],
    ['an object with a numeric type', encodeFrame({ type: 1 })],
  ])('%s', (_name, bytes) => {
    expectRejected(decodeClientMessage(bytes, { numParams: NUM_PARAMS }), 'MALFORMED_MESSAGE');
    expectRejected(decodeCoordinatorMessage(bytes), 'MALFORMED_MESSAGE');
  });
});

describe('INVALID_MESSAGE', () => {
  it('rejects unknown types and messages sent in the wrong direction', () => {
    expectRejected(fromClient({ type: 'goodbye' }), 'INVALID_MESSAGE', 'unknown message type "goodbye"');
    expectRejected(fromClient(valid.train), 'INVALID_MESSAGE', 'unknown message type "train"');
    expectRejected(fromCoordinator(valid.update), 'INVALID_MESSAGE', 'unknown message type "update"');
    expectRejected(fromClient({ type: 'x'.repeat(10_000) }), 'INVALID_MESSAGE');
    const long = fromClient({ type: 'x'.repeat(10_000) });
    if (!long.ok) expect(long.reason.length).toBeLessThan(100); // close reasons hold 123 bytes
  });

  it.each<[string, object, string, unknown, string]>([
    ['missing field', valid.update, 'metrics', REMOVE, 'update.metrics is missing'],
    ['missing nested field', valid.update, 'metrics.trainMs', REMOVE, 'update.metrics.trainMs is missing'],
    ['unknown field', valid.update, 'extra', 1, 'update has an unknown field "extra"'],
    ['unknown nested field', valid.update, 'metrics.f1', 0.5, 'update.metrics has an unknown field "f1"'],
    ['string for a number', valid.update, 'round', '3', 'update.round is not a number'],
    ['number for a string', valid.update, 'modelVersion', 3, 'update.modelVersion is not a string'],
    ['null for an object', valid.update, 'metrics', null, 'update.metrics is not an object'],
    ['array for an object', valid.update, 'metrics', [1, 2, 3], 'update.metrics is not an object'],
    ['64-bit round beyond safe integers', valid.update, 'round', 2n ** 60n, 'update.round'],
    ['negative round', valid.update, 'round', -1, 'update.round'],
    ['fractional round', valid.update, 'round', 1.5, 'update.round'],
    ['round beyond safe integers', valid.update, 'round', 2 ** 60, 'update.round'],
    ['negative numExamples', valid.update, 'numExamples', -5, 'update.numExamples'],
    ['fractional numExamples', valid.update, 'numExamples', 10.5, 'update.numExamples'],
    ['accuracy above 1', valid.update, 'metrics.accuracy', 1.5, 'update.metrics.accuracy'],
    ['negative trainMs', valid.update, 'metrics.trainMs', -1, 'update.metrics.trainMs'],
    ['plain array delta', valid.update, 'delta', [0, 0, 0, 0, 0, 0], 'update.delta is not a Float32Array'],
    ['Float64Array delta', valid.update, 'delta', new Float64Array(NUM_PARAMS), 'update.delta is not a Float32Array'],
    ['Uint8Array delta', valid.update, 'delta', new Uint8Array(NUM_PARAMS * 4), 'update.delta is not a Float32Array'],
    ['empty modelVersion', valid.update, 'modelVersion', '', 'update.modelVersion is empty'],
    ['modelVersion of 257 chars', valid.update, 'modelVersion', 'v'.repeat(257), 'update.modelVersion has 257 characters'],
    ['decline reason of 1025 chars', valid.decline, 'reason', 'r'.repeat(1025), 'decline.reason has 1025 characters'],
    ['33 capabilities', valid.hello, 'capabilities', Array.from({ length: 33 }, (_, i) => `c${i}`), 'hello.capabilities has 33 entries'],
    ['capability of 65 chars', valid.hello, 'capabilities', ['c'.repeat(65)], 'hello.capabilities[0] has 65 characters'],
    ['non-string capability', valid.hello, 'capabilities', ['ok', 7], 'hello.capabilities[1] is not a string'],
    ['resumeToken of 257 chars', valid.hello, 'resumeToken', 't'.repeat(257), 'hello.resumeToken'],
    ['null optional field', valid.hello, 'modelVersion', null, 'hello.modelVersion is not a string'],
    ['negative hello.numExamples', valid.hello, 'numExamples', -1, 'hello.numExamples'],
    ['31-byte identity key', valid.helloIdentity, 'identityKey', new Uint8Array(31), 'hello.identityKey has 31 bytes; it must have exactly 32'],
    ['64-byte identity key (a whole secret key)', valid.helloIdentity, 'identityKey', new Uint8Array(64), 'hello.identityKey has 64 bytes'],
    ['identity key as a number list', valid.helloIdentity, 'identityKey', Array.from(new Uint8Array(32)), 'hello.identityKey is not a Uint8Array'],
    ['identity key as a hex string', valid.helloIdentity, 'identityKey', 'ab'.repeat(32), 'hello.identityKey is not a Uint8Array'],
  ])('client: %s', (_name, message, path, value, reason) => {
    expectRejected(fromClient(withField(message, path, value)), 'INVALID_MESSAGE', reason);
  });

  it.each<[string, object, string, unknown, string]>([
    ['welcome: empty clientId', valid.welcome, 'clientId', '', 'welcome.clientId is empty'],
    ['welcome: zero heartbeat interval', valid.welcome, 'heartbeatIntervalMs', 0, 'welcome.heartbeatIntervalMs'],
    ['welcome: unknown topology format', valid.welcome, 'model.topology.format', 'onnx', 'welcome.model.topology.format'],
    ['welcome: tfjs-layers topology that is an array', valid.welcomeTfjs, 'model.topology.modelTopology', [], 'modelTopology is not an object'],
    ['welcome: tfjs-layers topology with sequential fields', valid.welcomeTfjs, 'model.topology.layers', [], 'unknown field "layers"'],
    ['welcome: empty input shape', valid.welcome, 'model.topology.inputShape', [], 'inputShape needs at least 1'],
    ['welcome: zero input dimension', valid.welcome, 'model.topology.inputShape', [0], 'inputShape[0]'],
    ['welcome: unknown layer type', valid.welcome, 'model.topology.layers', [{ type: 'lstm' }], 'layers[0].type is not one of'],
    ['welcome: layer that is not an object', valid.welcome, 'model.topology.layers', ['dense'], 'layers[0] is not an object'],
    ['welcome: bad activation', valid.welcome, 'model.topology.layers', [{ type: 'dense', units: 2, activation: 'gelu' }], 'layers[0].activation'],
    ['welcome: zero units', valid.welcome, 'model.topology.layers', [{ type: 'dense', units: 0, activation: 'relu' }], 'layers[0].units'],
    ['welcome: conv2d without padding', valid.welcome, 'model.topology.layers', [{ type: 'conv2d', filters: 2, kernelSize: 3, activation: 'relu' }], 'layers[0].padding is missing'],
    ['welcome: pool with extra field', valid.welcome, 'model.topology.layers', [{ type: 'maxPool2d', poolSize: 2, strides: 2 }], 'unknown field "strides"'],
    ['welcome: manifest entry without name', valid.welcome, 'model.manifest', [{ shape: [2] }], 'manifest[0].name is missing'],
    ['welcome: manifest shape with a zero', valid.welcome, 'model.manifest', [{ name: 'w', shape: [2, 0] }], 'manifest[0].shape[1]'],
    ['welcome: manifest shape that is not an array', valid.welcome, 'model.manifest', [{ name: 'w', shape: 4 }], 'manifest[0].shape is not an array'],
    ['train: zero epochs', valid.train, 'config.epochs', 0, 'train.config.epochs'],
    ['train: fractional batch size', valid.train, 'config.batchSize', 1.5, 'train.config.batchSize'],
    ['train: zero learning rate', valid.train, 'config.learningRate', 0, 'train.config.learningRate'],
    ['train: negative learning rate', valid.train, 'config.learningRate', -0.1, 'train.config.learningRate'],
    ['train: unknown optimizer', valid.train, 'config.optimizer', 'rmsprop', 'train.config.optimizer is not one of sgd, adam'],
    ['train: negative proximal mu', valid.train, 'config.proximalMu', -0.01, 'train.config.proximalMu'],
    ['train: missing proximal mu', valid.train, 'config.proximalMu', REMOVE, 'train.config.proximalMu is missing'],
    ['train: unknown config key', valid.train, 'config.momentum', 0.9, 'train.config has an unknown field "momentum"'],
    ['train: zero deadline', valid.train, 'deadlineMs', 0, 'train.deadlineMs'],
    ['train: Float64Array weights', valid.train, 'weights', new Float64Array(NUM_PARAMS), 'train.weights is not a Float32Array'],
    ['result: unknown status', valid.result, 'status', 'done', 'result.status is not one of committed, aborted'],
    ['result: reason of 1025 chars', valid.resultAborted, 'reason', 'r'.repeat(1025), 'result.reason'],
  ])('coordinator: %s', (_name, message, path, value, reason) => {
    expectRejected(fromCoordinator(withField(message, path, value), NUM_PARAMS), 'INVALID_MESSAGE', reason);
  });

  it('rejects a __proto__ key instead of letting it reach the prototype', () => {
    // {"type":"decline","round":1,"reason":"x","__proto__":{"polluted":1}} written byte by byte.
    const text = (s: string) => [0xa0 | s.length, ...Buffer.from(s)];
    const bytes = new Uint8Array([
      0x84, ...text('type'), ...text('decline'), ...text('round'), 0x01, ...text('reason'), ...text('x'),
      ...text('__proto__'), 0x81, ...text('polluted'), 0x01,
    ]);
    expectRejected(decodeClientMessage(bytes, { numParams: NUM_PARAMS }), 'MALFORMED_MESSAGE', '__proto__');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('NON_FINITE', () => {
  it.each<[string, object, string, unknown, string]>([
    ['NaN loss', valid.update, 'metrics.loss', NaN, 'update.metrics.loss is NaN'],
    ['infinite accuracy', valid.update, 'metrics.accuracy', Infinity, 'update.metrics.accuracy is Infinity'],
    ['NaN round', valid.update, 'round', NaN, 'update.round is NaN'],
    ['-Infinity numExamples', valid.update, 'numExamples', -Infinity, 'update.numExamples is -Infinity'],
    ['NaN in delta', valid.update, 'delta', new Float32Array([0, 0, NaN, 0, 0, 0]), 'update.delta[2] is NaN'],
    ['Infinity in delta', valid.update, 'delta', new Float32Array([0, 0, 0, 0, 0, Infinity]), 'update.delta[5] is Infinity'],
    ['NaN decline round', valid.decline, 'round', NaN, 'decline.round is NaN'],
  ])('client: %s', (_name, message, path, value, reason) => {
    expectRejected(fromClient(withField(message, path, value)), 'NON_FINITE', reason);
  });

  it.each<[string, object, string, unknown, string]>([
    ['infinite learning rate', valid.train, 'config.learningRate', Infinity, 'train.config.learningRate is Infinity'],
    ['NaN proximal mu', valid.train, 'config.proximalMu', NaN, 'train.config.proximalMu is NaN'],
    ['NaN deadline', valid.train, 'deadlineMs', NaN, 'train.deadlineMs is NaN'],
    ['-Infinity in weights', valid.train, 'weights', new Float32Array([-Infinity, 0, 0, 0, 0, 0]), 'train.weights[0] is -Infinity'],
    ['NaN heartbeat interval', valid.welcome, 'heartbeatIntervalMs', NaN, 'welcome.heartbeatIntervalMs is NaN'],
  ])('coordinator: %s', (_name, message, path, value, reason) => {
    expectRejected(fromCoordinator(withField(message, path, value), NUM_PARAMS), 'NON_FINITE', reason);
  });
});

describe('LENGTH_MISMATCH', () => {
  it('rejects a delta one value short or long, and an empty delta', () => {
    for (const length of [NUM_PARAMS - 1, NUM_PARAMS + 1, 0]) {
      const result = fromClient(withField(valid.update, 'delta', new Float32Array(length)));
      expectRejected(result, 'LENGTH_MISMATCH', `update.delta has ${length} values; the model has ${NUM_PARAMS}`);
    }
  });

  it('checks the length against the numParams it is given', () => {
    expectRejected(fromClient(valid.update, NUM_PARAMS + 1), 'LENGTH_MISMATCH');
    expectRejected(fromCoordinator(valid.train, NUM_PARAMS - 1), 'LENGTH_MISMATCH', 'train.weights');
  });
});

describe('UNSUPPORTED_VERSION', () => {
  it('rejects another protocol version in hello, before looking at fields a newer version may add', () => {
    expectRejected(fromClient(withField(valid.hello, 'protocolVersion', PROTOCOL_VERSION + 1)), 'UNSUPPORTED_VERSION', `hello.protocolVersion is ${PROTOCOL_VERSION + 1}; this peer speaks ${PROTOCOL_VERSION}`);
    expectRejected(fromClient({ ...valid.hello, protocolVersion: PROTOCOL_VERSION + 1, newField: true }), 'UNSUPPORTED_VERSION');
    expectRejected(fromClient(withField(valid.hello, 'protocolVersion', 0)), 'UNSUPPORTED_VERSION');
  });

  it('rejects a non-numeric version as invalid, and another version in welcome as unsupported', () => {
    expectRejected(fromClient(withField(valid.hello, 'protocolVersion', '1')), 'INVALID_MESSAGE', 'hello.protocolVersion is not a number');
    expectRejected(fromCoordinator(withField(valid.welcome, 'protocolVersion', PROTOCOL_VERSION + 1)), 'UNSUPPORTED_VERSION', 'welcome.protocolVersion');
  });
});

describe('MESSAGE_TOO_LARGE and maxClientPayloadBytes', () => {
  it('is 4 bytes per parameter plus a 16 KiB envelope allowance', () => {
    expect(maxClientPayloadBytes(0)).toBe(16_384);
    expect(maxClientPayloadBytes(199_210)).toBe(4 * 199_210 + 16_384);
  });

  it('rejects a frame one byte over the limit before decoding it', () => {
    const limit = maxClientPayloadBytes(NUM_PARAMS);
    expectRejected(decodeClientMessage(new Uint8Array(limit + 1), { numParams: NUM_PARAMS }), 'MESSAGE_TOO_LARGE', `${limit + 1} bytes`);
    // At the limit the frame is decoded (and these zero bytes are then not a message object).
    expectRejected(decodeClientMessage(new Uint8Array(limit), { numParams: NUM_PARAMS }), 'MALFORMED_MESSAGE');
  });

  it('leaves room for the largest valid hello, decline and update', () => {
    // Three UTF-8 bytes per UTF-16 code unit is the worst case ('中' is one unit, three bytes).
    const wide = (length: number) => '中'.repeat(length);
    const hello = {
      ...valid.helloIdentity,
      numExamples: Number.MAX_SAFE_INTEGER,
      capabilities: Array.from({ length: 32 }, () => wide(64)),
      resumeToken: wide(256),
      modelVersion: wide(256),
    };
    const decline = { ...valid.decline, round: Number.MAX_SAFE_INTEGER, reason: wide(1024) };
    const numParams = 1000;
    const update = {
      ...valid.update,
      round: Number.MAX_SAFE_INTEGER,
      numExamples: Number.MAX_SAFE_INTEGER,
      modelVersion: wide(256),
      delta: new Float32Array(numParams).fill(0.1),
      metrics: { loss: 1 / 3, accuracy: 1 / 3, trainMs: 1 / 3 },
    };
    for (const message of [hello, decline, update]) {
      const bytes = encodeFrame(message);
      const result = decodeClientMessage(bytes, { numParams });
      expect(result.ok, JSON.stringify(result)).toBe(true);
      expect(bytes.byteLength).toBeLessThanOrEqual(maxClientPayloadBytes(message === update ? numParams : 0));
    }
  });
});
