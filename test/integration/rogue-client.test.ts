/**
 * A rogue peer throws 1,000 generated bad frames at a real coordinator over real WebSockets, one
 * fresh connection each, while three honest peers hold a round open. Every rogue connection must
 * be closed with a Shoal close code (4000–4999, the exact one where the case is deterministic),
 * and afterwards the coordinator must still serve and both honest rounds must commit.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { builtinInitialModel, recordingLogger, startCoordinator, type CoordinatorHandle } from '@shoal/coordinator';
import { PROTOCOL_VERSION, closeCodeOf, encodeFrame, maxClientPayloadBytes, numParams, type ErrorCode } from '@shoal/protocol';
import { fedAvg } from '@shoal/strategy';
import { WsPeer, gate, healthz, startScriptedPeer, validHello, type CloseInfo, type ScriptedPeer } from '@shoal/testkit';

const TOKEN = 'rogue-test-token';
const MODEL = builtinInitialModel('logreg', [4], 3);
const NUM_PARAMS = numParams(MODEL.descriptor.manifest); // 4·3 + 3 = 15
const MAX_PAYLOAD = maxClientPayloadBytes(NUM_PARAMS);
const RUNS = 1_000;

/** What the rogue sends: a Shoal message (encoded at send time), raw bytes, text, or a huge frame. */
type RogueFrame =
  | { readonly message: unknown }
  | { readonly bytes: Uint8Array }
  | { readonly text: string }
  | { readonly oversizedBytes: number; readonly fill: number };

interface RogueCase {
  readonly kind: string;
  /** Send a valid hello (and wait for welcome) before the bad frame. */
  readonly helloFirst: boolean;
  readonly frame: RogueFrame;
  /** The exact close code, where the case determines it. */
  readonly expected?: ErrorCode;
}

// ---- valid building blocks ----

const shortString = fc.string({ minLength: 1, maxLength: 20 });
const finiteDouble = fc.double({ noNaN: true, noDefaultInfinity: true });
const validDelta = fc.float32Array({ minLength: NUM_PARAMS, maxLength: NUM_PARAMS, noNaN: true, noDefaultInfinity: true });
const validMetrics = fc.record({
  loss: finiteDouble,
  accuracy: fc.double({ min: 0, max: 1, noNaN: true }),
  trainMs: fc.double({ min: 0, max: 1e9, noNaN: true }),
});
const validHelloArb = fc.record(
  {
    type: fc.constant('hello'),
    protocolVersion: fc.constant(PROTOCOL_VERSION),
    numExamples: fc.nat(),
    capabilities: fc.array(fc.string({ minLength: 1, maxLength: 10 }), { maxLength: 4 }),
    identityKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  },
  { requiredKeys: ['type', 'protocolVersion', 'numExamples', 'capabilities'] },
);
const validUpdate = fc.record({
  type: fc.constant('update'),
  round: fc.nat(),
  modelVersion: shortString,
  numExamples: fc.nat(),
  delta: validDelta,
  metrics: validMetrics,
});
const validDecline = fc.record({ type: fc.constant('decline'), round: fc.nat(), reason: fc.string({ maxLength: 30 }) });

// ---- values of the wrong type for a field ----

const someObject = fc.dictionary(fc.string({ maxLength: 8 }), fc.integer(), { maxKeys: 3 });
const notNumber = fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), someObject);
const notString = fc.oneof(fc.integer(), finiteDouble, fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), someObject);
const notStringArray = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), someObject, fc.array(notString, { minLength: 1, maxLength: 3 }));
const notVector = fc.oneof(
  fc.array(finiteDouble, { minLength: NUM_PARAMS, maxLength: NUM_PARAMS }), // a list, not a Float32Array
  fc.float64Array({ minLength: NUM_PARAMS, maxLength: NUM_PARAMS, noNaN: true, noDefaultInfinity: true }),
  // (A typed array of a kind no message uses, e.g. Int32Array, is refused by the decoder itself
  // with MALFORMED_MESSAGE: packages/protocol/test/codec.property.test.ts.)
  fc.uint8Array({ minLength: 4 * NUM_PARAMS, maxLength: 4 * NUM_PARAMS }),
  fc.string(),
  fc.integer(),
  fc.constant(null),
);
const notMetrics = fc.oneof(
  notNumber.filter((value) => typeof value !== 'object' || value === null || Array.isArray(value)),
  fc.tuple(validMetrics, fc.constantFrom('loss', 'accuracy', 'trainMs'), notNumber).map(([metrics, key, bad]) => ({ ...metrics, [key]: bad })),
  validMetrics.map((metrics) => ({ ...metrics, extra: 1 })), // unknown field
);

/** A valid message of `base` with one field replaced by a value of the wrong type. */
function withWrongField(base: fc.Arbitrary<Record<string, unknown>>, fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> {
  return fc.oneof(...Object.entries(fields).map(([key, bad]) => fc.tuple(base, bad).map(([message, value]) => ({ ...message, [key]: value }))));
}

const wrongTypes = fc.oneof(
  withWrongField(validHelloArb, {
    protocolVersion: notNumber,
    numExamples: notNumber,
    capabilities: notStringArray,
    resumeToken: notString,
    modelVersion: notString,
  }),
  withWrongField(validUpdate, { round: notNumber, modelVersion: notString, numExamples: notNumber, delta: notVector, metrics: notMetrics }),
  withWrongField(validDecline, { round: notNumber, reason: notString }),
);

/**
 * The rogue's repertoire. `activeRound`/`activeVersion` name the round the honest peers are in, so
 * that a forged update can target the very round in flight.
 */
function rogueCases(activeRound: number, activeVersion: string): fc.Arbitrary<RogueCase> {
  const helloFirst = fc.boolean();
  const nonFinite = fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY);
  return fc.oneof(
    fc.record({ kind: fc.constant('random bytes'), helloFirst, frame: fc.record({ bytes: fc.uint8Array({ maxLength: 200 }) }) }),
    fc.record({
      kind: fc.constant('wrong field types'),
      helloFirst,
      frame: fc.record({ message: wrongTypes }),
      expected: fc.constant<ErrorCode>('INVALID_MESSAGE'),
    }),
    fc.record({
      kind: fc.constant('unknown type'),
      helloFirst,
      frame: fc.record({
        message: fc
          .tuple(fc.string({ unit: 'binary', maxLength: 40 }), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }))
          .filter(([type]) => !['hello', 'update', 'decline'].includes(type))
          .map(([type, rest]) => ({ ...rest, type })),
      }),
      expected: fc.constant<ErrorCode>('INVALID_MESSAGE'),
    }),
    fc.record({
      kind: fc.constant('not a message object'),
      helloFirst,
      frame: fc.record({
        message: fc.oneof(
          fc.jsonValue({ maxDepth: 2 }).filter((value) => typeof (value as { type?: unknown } | null)?.type !== 'string'),
          fc.record({ type: notString }),
          validDelta,
        ),
      }),
      expected: fc.constant<ErrorCode>('MALFORMED_MESSAGE'),
    }),
    fc.record({
      kind: fc.constant('trailing bytes after a value'),
      helloFirst,
      // Values of any kind, often multi-byte text, followed by junk: the reason names the offset.
      frame: fc.record({
        bytes: fc
          .tuple(fc.oneof(fc.string({ unit: 'binary', minLength: 30, maxLength: 120 }), fc.jsonValue({ maxDepth: 2 })), fc.uint8Array({ minLength: 1, maxLength: 8 }))
          .map(([value, trailing]) => new Uint8Array([...encodeFrame(value as object), ...trailing])),
      }),
      expected: fc.constant<ErrorCode>('MALFORMED_MESSAGE'),
    }),
    fc.record({
      kind: fc.constant('wrong protocol version'),
      helloFirst,
      frame: fc.record({
        message: fc
          .tuple(validHelloArb, fc.integer({ min: 0, max: 2 ** 31 }).filter((v) => v !== PROTOCOL_VERSION), fc.boolean())
          // A newer client may also send fields this version does not know: the version is checked first.
          .map(([hello, protocolVersion, futureField]) => ({ ...hello, protocolVersion, ...(futureField ? { futureField: true } : {}) })),
      }),
      expected: fc.constant<ErrorCode>('UNSUPPORTED_VERSION'),
    }),
    fc.record({
      kind: fc.constant('wrong vector length'),
      helloFirst,
      frame: fc.record({
        message: fc
          .tuple(validUpdate, fc.float32Array({ maxLength: 3 * NUM_PARAMS }).filter((delta) => delta.length !== NUM_PARAMS))
          .map(([update, delta]) => ({ ...update, delta })),
      }),
      expected: fc.constant<ErrorCode>('LENGTH_MISMATCH'),
    }),
    fc.record({
      kind: fc.constant('non-finite number'),
      helloFirst,
      frame: fc.record({
        message: fc.oneof(
          fc.tuple(validUpdate, fc.nat({ max: NUM_PARAMS - 1 }), nonFinite).map(([update, index, value]) => {
            const delta = update.delta.slice();
            delta[index] = value;
            return { ...update, delta };
          }),
          fc
            .tuple(validUpdate, fc.constantFrom('loss', 'accuracy', 'trainMs'), nonFinite)
            .map(([update, key, value]) => ({ ...update, metrics: { ...update.metrics, [key]: value } })),
        ),
      }),
      expected: fc.constant<ErrorCode>('NON_FINITE'),
    }),
    fc.record({
      kind: fc.constant('text frame'),
      helloFirst,
      frame: fc.record({ text: fc.oneof(fc.string({ unit: 'binary', maxLength: 100 }), fc.constant(JSON.stringify(validHello()))) }),
      expected: fc.constant<ErrorCode>('BINARY_REQUIRED'),
    }),
    fc.record({
      kind: fc.constant('oversized frame'),
      helloFirst,
      // Above Shoal's limit but within ws's maxPayload (twice it), so Shoal itself must refuse it.
      frame: fc.record({ oversizedBytes: fc.integer({ min: MAX_PAYLOAD + 1, max: 2 * MAX_PAYLOAD }), fill: fc.nat({ max: 255 }) }),
      expected: fc.constant<ErrorCode>('MESSAGE_TOO_LARGE'),
    }),
    fc.record({
      kind: fc.constant('answer for a round it was not selected for'),
      helloFirst: fc.constant(true),
      frame: fc.record({
        message: fc.oneof(
          validUpdate,
          validDecline,
          // A forged update for the round in flight, with that round's real model version.
          validUpdate.map((update) => ({ ...update, round: activeRound, modelVersion: activeVersion })),
        ),
      }),
      expected: fc.constant<ErrorCode>('ROUND_MISMATCH'),
    }),
    fc.record({
      kind: fc.constant('second hello'),
      helloFirst: fc.constant(true),
      frame: fc.record({ message: validHelloArb }),
      expected: fc.constant<ErrorCode>('UNEXPECTED_MESSAGE'),
    }),
    fc.record({
      kind: fc.constant('answer before hello'),
      helloFirst: fc.constant(false),
      frame: fc.record({ message: fc.oneof(validUpdate, validDecline) }),
      expected: fc.constant<ErrorCode>('UNEXPECTED_MESSAGE'),
    }),
  );
}

const ALL_KINDS = 13;

function sendRogueFrame(peer: WsPeer, frame: RogueFrame): void {
  if ('message' in frame) peer.sendBytes(encodeFrame(frame.message as object));
  else if ('bytes' in frame) peer.sendBytes(frame.bytes);
  else if ('text' in frame) peer.sendText(frame.text);
  else peer.sendBytes(new Uint8Array(frame.oversizedBytes).fill(frame.fill));
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe('a rogue client against a real coordinator', () => {
  let coordinator: CoordinatorHandle | undefined;
  const peers: WsPeer[] = [];

  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.terminate();
    await coordinator?.close();
    coordinator = undefined;
  });

  it(`closes each of ${RUNS} bad connections with a 4xxx code while the honest rounds commit`, async () => {
    const { logger, records } = recordingLogger();
    coordinator = await startCoordinator({
      model: MODEL,
      tokens: [TOKEN],
      rounds: 2,
      minClients: 3,
      clientsPerRound: 3,
      // Round 1 stays open (the honest peers wait for the gate) for the whole rogue loop.
      roundTimeoutMs: 55_000,
      train: { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
      logger,
    });
    const { url } = coordinator;

    // Three honest peers join; round 1 selects exactly them. They answer only when the gate opens.
    const release = gate();
    const trainArrived = [gate(), gate(), gate()];
    const honest: ScriptedPeer[] = [];
    for (let i = 0; i < 3; i++) {
      const scripted = await startScriptedPeer(url, {
        token: TOKEN,
        numExamples: 10 * (i + 1),
        delta: () => new Float32Array(NUM_PARAMS).fill(0.01 * (i + 1)),
        beforeUpdate: async () => {
          trainArrived[i]!.open();
          await release.opened;
        },
      });
      honest.push(scripted);
      peers.push(scripted.peer);
    }
    await Promise.all(trainArrived.map((arrived) => arrived.opened));
    const activeTrain = honest[0]!.trains[0]!;
    expect(activeTrain.round).toBe(1);

    const kindsSeen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(rogueCases(activeTrain.round, activeTrain.modelVersion), async (rogue) => {
        const peer = await WsPeer.connect(url, { token: TOKEN });
        try {
          if (rogue.helloFirst) await peer.hello();
          sendRogueFrame(peer, rogue.frame);
          const closed: CloseInfo = await within(peer.closed, 5_000, `close after ${rogue.kind}`);
          expect(closed.code, `${rogue.kind}: ${closed.reason}`).toBeGreaterThanOrEqual(4000);
          expect(closed.code, `${rogue.kind}: ${closed.reason}`).toBeLessThanOrEqual(4999);
          if (rogue.expected !== undefined) expect(closed.code, `${rogue.kind}: ${closed.reason}`).toBe(closeCodeOf(rogue.expected));
          // WebSocket close reasons hold at most 123 bytes.
          expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
          kindsSeen.set(rogue.kind, (kindsSeen.get(rogue.kind) ?? 0) + 1);
        } finally {
          peer.terminate();
        }
      }),
      { numRuns: RUNS },
    );
    expect(kindsSeen.size).toBe(ALL_KINDS);

    // The coordinator is still up: /healthz answers and a new client is welcomed.
    expect(await healthz(url)).toBe(200);
    const probe = await WsPeer.connect(url, { token: TOKEN });
    peers.push(probe);
    const welcome = await probe.hello();
    expect(welcome.model.manifest).toEqual(MODEL.descriptor.manifest);
    // Leave by misbehaving, so the coordinator has dropped the probe before round 2 selects anyone.
    probe.send(validHello());
    expect((await probe.closed).code).toBe(closeCodeOf('UNEXPECTED_MESSAGE'));

    // The honest round was never disturbed: release it; both rounds commit with the honest three.
    release.open();
    const summary = await coordinator.finished;
    expect(summary.stoppedBy).toBe('completed');
    expect(summary.rounds.map((r) => [r.round, r.status, r.participants, r.dropouts])).toEqual([
      [1, 'committed', 3, 0],
      [2, 'committed', 3, 0],
    ]);
    for (const scripted of honest) {
      expect(scripted.trains.map((t) => t.round)).toEqual([1, 2]);
      expect((await scripted.done).code).toBe(closeCodeOf('TRAINING_COMPLETE'));
    }
    expect(await healthz(url)).toBe(200);
    // A bug in a field checker would hide behind INVALID_MESSAGE with this prefix.
    expect(records.filter(({ fields }) => fields.reason?.includes('internal validation error'))).toEqual([]);
  });

  it('keeps a close reason that quotes multi-byte peer text within 123 bytes', async () => {
    // The decoder's duplicate-key error quotes the key (shortened to 24 characters): 24 CJK
    // characters make a reason of ~140 UTF-8 bytes, which ws.close() refuses with a throw inside the
    // message handler (an uncaught exception that left the connection open) unless the edge cuts it.
    coordinator = await startCoordinator({
      model: MODEL,
      tokens: [TOKEN],
      rounds: 1,
      train: { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 },
      strategy: fedAvg(),
    });
    const peer = await WsPeer.connect(coordinator.url, { token: TOKEN });
    peers.push(peer);
    const key = new TextEncoder().encode('日本語'.repeat(40)); // 360 bytes: a str16
    const entry = [0xda, key.length >> 8, key.length & 0xff, ...key, 0x01];
    peer.sendBytes(new Uint8Array([0x82, ...entry, ...entry]));
    const closed = await within(peer.closed, 5_000, 'close after a frame with a duplicate key');
    expect(closed.code).toBe(closeCodeOf('MALFORMED_MESSAGE'));
    expect(closed.reason).toMatch(/^frame is not msgpack: duplicate map key "日本語/);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
    expect(await healthz(coordinator.url)).toBe(200);
  });
});
