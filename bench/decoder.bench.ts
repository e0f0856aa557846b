// The strict wire decoder (`decodeFrame`), on a big legitimate frame and on hostile ones.
//
// 1. Speed: decodeFrame of an `update` frame of 1,000,000 float32 values, against msgpackr's own
//    `unpack` of the same frame (the decoder it replaced, configured as `encodeFrame` is).
//    Target: ≤ 1.1×. For context, also against one `slice()` of the frame (a bare memcpy).
// 2. Work bounded by the frame: hostile frames of 512 KiB in the shapes that cost a decoder most
//    per byte (a JS value or a buffer per byte or two; nesting at the limit). For each:
//    - time per byte against time per byte of the update frame (informative: a JS object per
//      byte costs far more than a memcpy'd byte, but a constant factor more);
//    - time against msgpackr's unpack of the same frame (informative: no regression);
//    - time per byte at 2 MiB against the same shape at 512 KiB. Linear work keeps this near 1
//      (target ≤ 2×; quadratic work would show 4×). Both sizes outgrow V8's young generation, so
//      the garbage collector costs the same per object at both (at 64 KiB it is far cheaper).
// 3. The ~500-byte structured-clone bomb (2^30 shared leaves, one trailing byte): refused at its
//    first reference marker. Time per byte against the update frame, and msgpackr's unpack on
//    the same shape with only 16 levels, for contrast (30 levels do not finish).
import { Packr, Unpackr } from 'msgpackr';
import { ShoalError, decodeFrame, encodeFrame, type UpdateMessage } from '@shoal/protocol';
import { check, checkSame, compare, report, sized, updateMessage } from './lib.js';

const d = sized(1_000_000, 100_000);
const delta = new Float32Array(d);
for (let i = 0; i < d; i++) delta[i] = Math.sin(i * 0.37) * 0.05;
const update = updateMessage(delta);
// encodeFrame returns a Node Buffer viewing msgpackr's reused memory: copy it into a plain
// Uint8Array (Buffer's own slice() would make a view, not a copy, and spoil the memcpy baseline).
const updateFrame = new Uint8Array(encodeFrame(update));
const msgpackr = new Unpackr({ useRecords: false, moreTypes: true });

// ---- correctness: a failed check (lib.ts) makes the process exit 1 ----

function refusalOf(bytes: Uint8Array): string {
  try {
    decodeFrame(bytes);
  } catch (error) {
    check(error instanceof ShoalError && error.code === 'MALFORMED_MESSAGE', `expected MALFORMED_MESSAGE, got ${String(error)}`);
    return (error as ShoalError).message;
  }
  throw new Error('decoder bench: a hostile frame was accepted');
}

const decoded = decodeFrame(updateFrame) as UpdateMessage;
check(decoded.delta instanceof Float32Array && decoded.delta.length === d, 'update.delta is a Float32Array of d values');
checkSame(decoded.delta, delta, 'update.delta is what was encoded');
check(decoded.metrics.loss === update.metrics.loss && decoded.modelVersion === update.modelVersion, 'the update envelope is what was encoded');

// ---- 1. speed on the big legitimate frame ----

let sink = 0;
const ours = () => {
  sink += (decodeFrame(updateFrame) as UpdateMessage).delta[d - 1]!;
};
const theirs = () => {
  sink += (msgpackr.unpack(updateFrame) as UpdateMessage).delta[d - 1]!;
};
const memcpy = () => {
  sink += updateFrame.slice()[updateFrame.length - 1]!;
};

const vsMsgpackr = await compare(ours, theirs, 5, 300);
report(
  `decodeFrame of an update of 1,000,000 floats (${updateFrame.length.toLocaleString('en')} B) vs msgpackr unpack`,
  vsMsgpackr.candidate.medianMs / vsMsgpackr.baseline.medianMs,
  `decodeFrame ${ms(vsMsgpackr.candidate.medianMs)}, msgpackr ${ms(vsMsgpackr.baseline.medianMs)}`,
  { op: '<=', value: 1.1 },
);
const vsMemcpy = await compare(ours, memcpy, 3, 300);
report(
  'decodeFrame of the same update vs one slice() of the frame (memcpy)',
  vsMemcpy.candidate.medianMs / vsMemcpy.baseline.medianMs,
  `decodeFrame ${ms(vsMemcpy.candidate.medianMs)}, slice ${ms(vsMemcpy.baseline.medianMs)}`,
);

// ---- 2. hostile frames: time per byte, and how it scales ----

/** An array32 of `count` copies of `item`. */
function arrayOf(item: readonly number[], count: number): Uint8Array {
  const bytes = new Uint8Array(5 + item.length * count);
  bytes[0] = 0xdd;
  new DataView(bytes.buffer).setUint32(1, count);
  for (let i = 0; i < count; i++) bytes.set(item, 5 + i * item.length);
  return bytes;
}

/** 63 nested one-element arrays around nil: with the outer array, 64 levels, the most accepted; about one array per byte. */
const NESTED_ITEM = [...new Array<number>(63).fill(0x91), 0xc0];

const shapes: readonly { name: string; item: readonly number[] }[] = [
  { name: 'nested 64 deep (the limit), repeated', item: NESTED_ITEM },
  { name: 'small maps {"a": 1}', item: [0x81, 0xa1, 0x61, 0x01] },
  { name: 'small ints (1 byte each)', item: [0x01] },
  { name: 'empty bins (2 bytes each)', item: [0xc4, 0x00] },
  { name: 'empty Uint8Arrays, ext 0x74 (4 bytes each)', item: [0xc7, 0x01, 0x74, 0x01] },
];

const SIZE = sized(512, 64) * 1024;
const LARGER = 4 * SIZE;
for (const { name, item } of shapes) {
  const frame = arrayOf(item, Math.floor(SIZE / item.length));
  const larger = arrayOf(item, Math.floor(LARGER / item.length));
  const decodedShape = decodeFrame(frame);
  check(Array.isArray(decodedShape) && decodedShape.length === Math.floor(SIZE / item.length), `${name} decodes to an array of its ${Math.floor(SIZE / item.length)} items`);
  const decodeOne = () => {
    sink += (decodeFrame(frame) as unknown[]).length;
  };
  const decodeLarger = () => {
    sink += (decodeFrame(larger) as unknown[]).length;
  };
  const msgpackrOne = () => {
    sink += (msgpackr.unpack(frame) as unknown[]).length;
  };

  const vsUpdate = await compare(decodeOne, ours, 2, 100);
  const msPerByte = vsUpdate.candidate.medianMs / frame.length;
  const updateMsPerByte = vsUpdate.baseline.medianMs / updateFrame.length;
  report(
    `${name}: time per byte at 512 KiB vs the update frame`,
    msPerByte / updateMsPerByte,
    `${ms(vsUpdate.candidate.medianMs)} for ${frame.length.toLocaleString('en')} B (${ns(msPerByte)}/B), update ${ns(updateMsPerByte)}/B`,
  );
  const vsOld = await compare(decodeOne, msgpackrOne, 2, 100);
  report(
    `${name}: decodeFrame vs msgpackr unpack of the same 512 KiB`,
    vsOld.candidate.medianMs / vsOld.baseline.medianMs,
    `decodeFrame ${ms(vsOld.candidate.medianMs)}, msgpackr ${ms(vsOld.baseline.medianMs)}`,
  );
  const scaling = await compare(decodeLarger, decodeOne, 2, 100);
  const largerMsPerByte = scaling.candidate.medianMs / larger.length;
  report(
    `${name}: time per byte at 2 MiB vs at 512 KiB`,
    largerMsPerByte / (scaling.baseline.medianMs / frame.length),
    `${ns(largerMsPerByte)}/B vs ${ns(scaling.baseline.medianMs / frame.length)}/B`,
    { op: '<=', value: 2 },
  );
}

// ---- 3. the structured-clone bomb ----

function structuredCloneBomb(levels: number): Uint8Array {
  let shared: unknown = { loss: 1 };
  for (let level = 0; level < levels; level++) shared = [shared, shared];
  const message = { type: 'update', round: 1, modelVersion: 'v', numExamples: 1, delta: new Float32Array(6), metrics: shared };
  const encoded = new Packr({ structuredClone: true, useRecords: false }).pack(message);
  const bytes = new Uint8Array(encoded.length + 1);
  bytes.set(encoded);
  bytes[encoded.length] = 0xc0; // the trailing byte that made msgpackr stringify the whole tree
  return bytes;
}

const bomb = structuredCloneBomb(30);
check(bomb.length < 500, `the bomb is under 500 bytes (${bomb.length})`);
const firstMarker = bomb.findIndex((byte, i) => byte === 0xd6 && bomb[i + 1] === 0x69);
check(refusalOf(bomb).includes(`ext type 0x69 at offset ${firstMarker}`), 'the bomb is refused at its first reference marker');

// One refusal takes about a microsecond: time batches of them.
const BATCH = sized(10_000, 100);
const refuseBomb = () => {
  for (let i = 0; i < BATCH; i++) sink += refusalOf(bomb).length;
};
const bombVsUpdate = await compare(refuseBomb, ours, 3, 300);
const bombMsPerByte = bombVsUpdate.candidate.medianMs / BATCH / bomb.length;
report(
  `structured-clone bomb (${bomb.length} B, 2^30 leaves if expanded): time per byte vs the update frame`,
  bombMsPerByte / (bombVsUpdate.baseline.medianMs / updateFrame.length),
  `${us(bombVsUpdate.candidate.medianMs / BATCH)} per refusal (${ns(bombMsPerByte)}/B), update ${ns(bombVsUpdate.baseline.medianMs / updateFrame.length)}/B`,
);

const smallBomb = structuredCloneBomb(16);
const refuseSmallBomb = () => {
  for (let i = 0; i < BATCH; i++) sink += refusalOf(smallBomb).length;
};
const msgpackrOnSmallBomb = () => {
  try {
    msgpackr.unpack(smallBomb);
  } catch (error) {
    sink += String(error).length; // "Data read, but end of buffer not reached" after stringifying the tree
  }
};
const smallBombs = await compare(msgpackrOnSmallBomb, refuseSmallBomb, 3, 300);
report(
  `msgpackr unpack vs decodeFrame on a 16-level bomb (${smallBomb.length} B, 65,536 leaves)`,
  smallBombs.candidate.medianMs / (smallBombs.baseline.medianMs / BATCH),
  `msgpackr ${ms(smallBombs.candidate.medianMs)}, decodeFrame ${us(smallBombs.baseline.medianMs / BATCH)}; each level doubles msgpackr's time`,
);

check(Number.isFinite(sink), 'every decoded value read is finite');

function ms(value: number): string {
  return value < 1 ? `${(value * 1000).toFixed(1)} µs` : `${value.toFixed(2)} ms`;
}
function us(value: number): string {
  return `${(value * 1000).toFixed(2)} µs`;
}
function ns(msValue: number): string {
  return `${(msValue * 1e6).toFixed(3)} ns`;
}
