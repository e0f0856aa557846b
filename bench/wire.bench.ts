// Wire cost of the protocol's two big messages, for model sizes from tiny to the McMahan CNN.
//
// 1. Size: bytes of one encoded `update` frame (and of one `train` frame carrying the weights)
//    against the floor of 4·d bytes for d float32 values. Target: frame / (4·d) ≤ 1.01×, i.e. the
//    msgpack envelope and the typed-array framing add at most 1 %.
// 2. Speed (informative, no target): encode + validated decode of an `update` (what a client and the
//    coordinator do per update) against a bare `Float32Array.slice()` copy of the same vector, the
//    least work any transfer of d floats must do. Reported as copy time / (encode + decode) time.
// Correctness (exit 1 on failure): every frame measured decodes, validated, to the vector that was
// encoded, bit for bit, and the timed round trip returns an update.
import { decodeClientMessage, decodeCoordinatorMessage, encodeFrame, type TrainMessage } from '@shoal/protocol';
import { check, checkSame, compare, report, sized, updateMessage } from './lib.js';

const allSizes: readonly { d: number; label: string }[] = [
  { d: 1_000, label: '1,000' },
  { d: 100_000, label: '100,000' },
  { d: 1_000_000, label: '1,000,000' },
  { d: 1_663_370, label: '1,663,370 (McMahan CNN)' },
];
const sizes = sized(allSizes, allSizes.slice(0, 2));

/** Realistic values (small, varied, all finite), so no codec can shortcut on zeros. */
function vectorOf(d: number, seed: number): Float32Array {
  const v = new Float32Array(d);
  for (let i = 0; i < d; i++) v[i] = Math.sin(i * 0.37 + seed) * 0.05;
  return v;
}

function trainMessage(weights: Float32Array): TrainMessage {
  return {
    type: 'train',
    round: 123,
    modelVersion: '3f9a1c07be42:122',
    weights,
    config: { epochs: 5, batchSize: 10, learningRate: 0.05, optimizer: 'sgd', proximalMu: 0 },
    deadlineMs: 60_000,
  };
}

// ---- 1. bytes on the wire ----
for (const { d, label } of sizes) {
  const vector = vectorOf(d, 1);
  const floor = 4 * d;
  const updateBytes = encodeFrame(updateMessage(vector)).byteLength;
  const trainBytes = encodeFrame(trainMessage(vector)).byteLength;
  const update = decodeClientMessage(encodeFrame(updateMessage(vector)), { numParams: d });
  const train = decodeCoordinatorMessage(encodeFrame(trainMessage(vector)), { numParams: d });
  if (check(update.ok && update.message.type === 'update', `d = ${label}: the update frame decodes to an update`) && update.ok && update.message.type === 'update') {
    checkSame(update.message.delta, vector, `d = ${label}: the decoded update carries the encoded vector`);
  }
  if (check(train.ok && train.message.type === 'train', `d = ${label}: the train frame decodes to a train message`) && train.ok && train.message.type === 'train') {
    checkSame(train.message.weights ?? [], vector, `d = ${label}: the decoded train message carries the encoded weights`);
  }
  report(`update frame bytes / 4·d, d = ${label}`, updateBytes / floor, `${updateBytes} B vs ${floor} B, envelope ${updateBytes - floor} B`, { op: '<=', value: 1.01 });
  report(`train frame (with weights) bytes / 4·d, d = ${label}`, trainBytes / floor, `${trainBytes} B vs ${floor} B, envelope ${trainBytes - floor} B`, { op: '<=', value: 1.01 });
}

// ---- 2. encode + validated decode vs a bare copy ----
for (const { d, label } of sizes) {
  const vector = vectorOf(d, 2);
  const message = updateMessage(vector);
  let sink = 0; // read every result so no work can be dropped

  const encodeAndDecode = () => {
    const decoded = decodeClientMessage(encodeFrame(message), { numParams: d });
    if (!check(decoded.ok && decoded.message.type === 'update', `update did not round-trip: ${decoded.ok ? decoded.message.type : decoded.reason}`)) return;
    if (!decoded.ok || decoded.message.type !== 'update') return;
    sink += decoded.message.delta[d - 1]!;
  };
  const bareCopy = () => {
    sink += vector.slice()[d - 1]!;
  };

  // Small vectors take microseconds per call: batch calls so a timed sample is well above timer noise.
  const repeat = Math.max(1, Math.round(100_000 / d));
  const { candidate, baseline } = await compare(
    () => { for (let r = 0; r < repeat; r++) encodeAndDecode(); },
    () => { for (let r = 0; r < repeat; r++) bareCopy(); },
    5,
    d >= 1_000_000 ? 600 : 300,
  );
  const perCall = (ms: number) => ms / repeat;
  const gbPerSecond = (4 * d) / (perCall(candidate.medianMs) / 1000) / 1e9;
  report(
    `update encode+validated decode throughput vs Float32Array.slice(), d = ${label}`,
    baseline.medianMs / candidate.medianMs,
    `encode+decode ${formatMs(perCall(candidate.medianMs))} (${gbPerSecond.toFixed(2)} GB/s), slice ${formatMs(perCall(baseline.medianMs))}`,
  );
  check(Number.isFinite(sink), `d = ${label}: the decoded values are finite`);
}

function formatMs(ms: number): string {
  return ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(2)} ms`;
}
