// 10,000 hostile frames from token holders against a real `shoal serve` process, one connection
// each (a bad frame closes its connection): decoder bombs built from msgpackr's structured-clone
// references, headers claiming 2^31 entries or 4 GiB, deep nesting, every extension type, typed
// arrays of every element type in every vector field, `__proto__`/`constructor` keys, random bytes,
// text frames, and each of those split into fragments. Every connection must be closed with a
// close code within a bounded time, /healthz must keep answering within 100 ms (99% of probes; none over 500 ms), the process's
// RSS must stay within a stated bound, and two honest peers must see their rounds commit.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { PROTOCOL_VERSION } from '@shoal/protocol';
import { WsPeer, expectResponsive, monitorHealth, startHeldServe, type HeldServe, type ServeProcess } from '@shoal/testkit';

const TOKEN = 'hostile-frames-token';
const NUM_PARAMS = 15; // logreg on 4 features and 3 classes
const FRAMES = 10_000;
const CONCURRENCY = 10;
/** A connection must be closed this long after its frame went out at the latest. */
const ANSWER_BOUND_MS = 2_000;
/** The coordinator's RSS may grow at most this much over the whole run (the bomb alone once took 336 MiB). */
const RSS_BOUND_BYTES = 96 * 1024 * 1024;

let held: HeldServe;
let serve: ServeProcess;
let url: string;
let health: ReturnType<typeof monitorHealth> | undefined;

beforeAll(async () => {
  held = await startHeldServe(TOKEN, { limits: { maxPendingHello: 1_000 } });
  serve = held.serve;
  url = held.url;
});

afterAll(async () => {
  await health?.stop();
  await held?.stop();
});

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

// ---- hostile frames ----

/** Plain msgpack, as `encodeFrame` writes it, for any value (not only message objects). */
const plain = new Packr({ useRecords: false, moreTypes: true });
const pack = (value: unknown): Uint8Array => plain.pack(value);
const u32 = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const TYPED_ARRAY_KINDS = 11; // msgpackr's typed-array extension 0x74 names 11 element kinds

/** msgpack bytes of a map with the given (already encoded) key/value byte pairs. */
function rawMap(entries: readonly (readonly [string, Uint8Array])[]): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.of(0x80 | entries.length)];
  for (const [key, value] of entries) parts.push(pack(key), value);
  return Buffer.concat(parts);
}

/** A typed array of element kind `kind` with `bytes` bytes, as the 0x74 extension. */
function typedArrayExt(kind: number, bytes: number): Uint8Array {
  return Uint8Array.from([0xc7, bytes + 1, 0x74, kind, ...new Uint8Array(bytes).fill(1)]);
}

/** A tree whose one subtree is referenced `fanout` times per level, `depth` levels deep: tiny when shared, huge when expanded. */
function sharedTreeBomb(depth: number, fanout: number): Uint8Array {
  let node: unknown = { leaf: 'x'.repeat(16) };
  for (let level = 0; level < depth; level++) node = Array.from({ length: fanout }, () => node);
  const bytes = new Packr({ structuredClone: true }).pack({ type: 'hello', protocolVersion: PROTOCOL_VERSION, tree: node });
  return Buffer.concat([bytes, Uint8Array.of(0xc0)]); // the trailing byte
}

const oversizedHeaders = fc.constantFrom(
  Uint8Array.from([0xdd, ...u32(2 ** 31), 0xc0]), // array32 of 2^31 entries
  Uint8Array.from([0xdf, ...u32(2 ** 31), 0xa1, 0x61, 0xc0]), // map32 of 2^31 entries
  Uint8Array.from([0xc6, ...u32(0xffffffff), 1, 2, 3]), // bin32 of 4 GiB
  Uint8Array.from([0xdb, ...u32(0xffffffff), 0x61]), // str32 of 4 GiB
  Uint8Array.from([0xc9, ...u32(0xffffffff), 0x74, 7, 0, 0]), // ext32 of 4 GiB
);

const deepNesting = fc.constantFrom(10, 1_000, 10_000, 100_000).chain((depth) =>
  fc.constantFrom(0x91, 0x81).map((container) => {
    // fixarray of one, or fixmap of one entry whose key is "a": each level one more container.
    const level = container === 0x91 ? [0x91] : [0x81, 0xa1, 0x61];
    const bytes = new Uint8Array(depth * level.length + 1);
    for (let i = 0; i < depth; i++) bytes.set(level, i * level.length);
    bytes[bytes.length - 1] = 0xc0;
    return bytes;
  }),
);

const anyExtension = fc.record({ type: fc.integer({ min: -128, max: 127 }), format: fc.constantFrom(0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xc7), payload: fc.uint8Array({ maxLength: 16 }) }).map(({ type, format, payload }) => {
  const fixed: Record<number, number> = { 0xd4: 1, 0xd5: 2, 0xd6: 4, 0xd7: 8, 0xd8: 16 };
  const size = fixed[format];
  const data = size === undefined ? payload : Uint8Array.from({ length: size }, (_, i) => payload[i] ?? 0);
  const header = size === undefined ? [0xc7, data.length, type & 0xff] : [format, type & 0xff];
  return rawMap([['type', pack('hello')], ['x', Uint8Array.from([...header, ...data])]]);
});

const bombs = fc.record({ depth: fc.integer({ min: 4, max: 12 }), fanout: fc.integer({ min: 2, max: 4 }) }).map(({ depth, fanout }) => sharedTreeBomb(depth, fanout));

/** update.delta and masked.masked with every element kind and a few lengths. */
const wrongTypedArrays = fc.record({ kind: fc.integer({ min: 0, max: TYPED_ARRAY_KINDS - 1 }), field: fc.constantFrom('update', 'masked'), elements: fc.constantFrom(NUM_PARAMS, NUM_PARAMS + 1, 3) }).map(({ kind, field, elements }) => {
  const elementBytes = [1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8][kind]!;
  const vector = typedArrayExt(kind, elementBytes * elements);
  if (field === 'update') {
    return rawMap([
      ['type', pack('update')],
      ['round', pack(0)],
      ['modelVersion', pack('v')],
      ['numExamples', pack(1)],
      ['delta', vector],
      ['metrics', pack({ loss: 1, accuracy: 0.5, trainMs: 1 })],
    ]);
  }
  return rawMap([
    ['type', pack('masked')],
    ['round', pack(0)],
    ['modelVersion', pack('v')],
    ['masked', vector],
  ]);
});

const prototypeKeys = fc.record({ key: fc.constantFrom('__proto__', 'constructor', 'prototype'), where: fc.constantFrom('top', 'metrics') }).map(({ key, where }) => {
  const poison = pack({ polluted: true });
  if (where === 'top') return rawMap([['type', pack('hello')], ['protocolVersion', pack(PROTOCOL_VERSION)], [key, poison]]);
  const metrics = rawMap([['loss', pack(1)], [key, poison]]);
  return rawMap([['type', pack('update')], ['round', pack(0)], ['metrics', metrics]]);
});

/** A valid message the sender may not send here: never-assigned rounds, or a second hello. */
const outOfPlace = fc.constantFrom(
  pack({ type: 'decline', round: 7, reason: 'no' }),
  pack({ type: 'update', round: 0, modelVersion: 'v', numExamples: 1, delta: new Float32Array(NUM_PARAMS), metrics: { loss: 1, accuracy: 0.5, trainMs: 1 } }),
  pack({ type: 'advertise', round: 3, encryptionKey: new Uint8Array(32), maskKey: new Uint8Array(32) }),
);

interface FrameCase {
  readonly bytes: Uint8Array | string; // a string goes as a text frame
  /** Send `hello` first, so the frame reaches a ready connection rather than one awaiting hello. */
  readonly helloFirst: boolean;
  /** Split into this many WebSocket fragments (1: one frame). */
  readonly fragments: number;
}

const frameCase: fc.Arbitrary<FrameCase> = fc.record({
  bytes: fc.oneof(
    { arbitrary: bombs, weight: 2 },
    { arbitrary: oversizedHeaders, weight: 1 },
    { arbitrary: deepNesting, weight: 1 },
    { arbitrary: anyExtension, weight: 3 },
    { arbitrary: wrongTypedArrays, weight: 3 },
    { arbitrary: prototypeKeys, weight: 2 },
    { arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }), weight: 2 },
    { arbitrary: fc.string({ maxLength: 40 }), weight: 1 },
    { arbitrary: outOfPlace, weight: 1 },
  ),
  helloFirst: fc.boolean(),
  fragments: fc.constantFrom(1, 1, 2, 3),
});

/** Sends one case on a fresh connection; resolves with the close code and how long after the send it came. */
async function play(testCase: FrameCase): Promise<{ code: number; afterMs: number }> {
  const peer = await WsPeer.connect(url, { token: TOKEN });
  if (testCase.helloFirst) await peer.hello({ numExamples: 1 });
  const sentAt = performance.now();
  const { bytes, fragments } = testCase;
  const binary = typeof bytes !== 'string';
  const payload = binary ? bytes : Buffer.from(bytes);
  const cut = Math.ceil(payload.length / fragments);
  for (let i = 0; i < fragments; i++) {
    const piece = payload.subarray(i * cut, Math.min(payload.length, (i + 1) * cut));
    peer.ws.send(piece, { binary, fin: i === fragments - 1 });
  }
  const timer = setTimeout(() => peer.ws.terminate(), ANSWER_BOUND_MS * 5);
  const closed = await peer.closed;
  clearTimeout(timer);
  return { code: closed.code, afterMs: performance.now() - sentAt };
}

describe('shoal serve against 10,000 hostile frames', () => {
  it('closes every connection with a close code within the bound, stays responsive and bounded in memory, and the honest rounds commit', async () => {
    health = monitorHealth(new URL(url).hostname, Number(new URL(url).port));
    const rssBefore = await rssBytes(serve.child.pid!);
    const cases = fc.sample(frameCase, { numRuns: FRAMES, seed: 42 });
    const results: { code: number; afterMs: number }[] = [];
    let rssPeak = rssBefore;
    for (let start = 0; start < cases.length; start += CONCURRENCY) {
      results.push(...(await Promise.all(cases.slice(start, start + CONCURRENCY).map(play))));
      if (start % 1_000 === 0) rssPeak = Math.max(rssPeak, await rssBytes(serve.child.pid!));
    }
    rssPeak = Math.max(rssPeak, await rssBytes(serve.child.pid!));

    const unexplained = results.filter((r) => !(r.code >= 4000 && r.code <= 4999) && r.code !== 1009);
    expect(unexplained.slice(0, 5), 'closes without a Shoal code (or ws\'s 1009 for frames past its own limit)').toEqual([]);
    expect(Math.max(...results.map((r) => r.afterMs))).toBeLessThan(ANSWER_BOUND_MS);
    expect(rssPeak - rssBefore).toBeLessThan(RSS_BOUND_BYTES);
    expect(serve.child.exitCode).toBeNull();

    // Stopped before the rounds finish: `serve` closes its HTTP server once training is complete.
    expectResponsive(await health.stop());

    held.release();
    await serve.line((line) => line['event'] === 'finished');
    const rounds = serve.lines.filter((line) => 'status' in line).map((line) => [line['round'], line['status'], line['participants']]);
    expect(rounds).toEqual([
      [1, 'committed', 2],
      [2, 'committed', 2],
    ]);
  }, 300_000);
});
