// Folding client updates: WeightedSum.add (weighted, Float64 accumulation, with its argument checks)
// against the cheapest possible fold, a bare `acc[i] += x[i]` loop into a Float64Array, over the
// same data in the same run. Target: WeightedSum reaches ≥ 0.5× the bare loop's throughput.
// Correctness (exit 1 on failure): the WeightedSum equals, bit for bit, a weighted bare loop that
// adds in the same order, and its total weight and count are right.
import { WeightedSum } from '@shoal/strategy';
import { check, checkSame, compare, report, sized } from './lib.js';

const numParams = sized(1_000_000, 10_000);
const numUpdates = sized(100, 10);
// 10 distinct updates reused cyclically: 100 adds of real data while holding ~40 MB, not 400 MB.
const distinctUpdates = 10;

const updates = Array.from({ length: distinctUpdates }, (_, u) => {
  const delta = new Float32Array(numParams);
  for (let i = 0; i < numParams; i++) delta[i] = Math.sin(i * 0.001 + u) * 0.01;
  return delta;
});
const weights = Array.from({ length: distinctUpdates }, (_, u) => 50 + u * 10);

function foldWithWeightedSum(): number {
  const sum = new WeightedSum(numParams);
  for (let k = 0; k < numUpdates; k++) sum.add(updates[k % distinctUpdates]!, weights[k % distinctUpdates]!);
  return sum.totalWeight;
}

function foldWithBareLoop(): number {
  const acc = new Float64Array(numParams);
  for (let k = 0; k < numUpdates; k++) {
    const x = updates[k % distinctUpdates]!;
    for (let i = 0; i < numParams; i++) acc[i]! += x[i]!;
  }
  return acc[numParams - 1]!; // read the result so the loop cannot be dropped
}

// The result, before timing: the same sum as `acc[i] += w·x[i]` in the same order, exactly.
const folded = new WeightedSum(numParams);
const expected = new Float64Array(numParams);
let expectedWeight = 0;
for (let k = 0; k < numUpdates; k++) {
  const [x, w] = [updates[k % distinctUpdates]!, weights[k % distinctUpdates]!];
  folded.add(x, w);
  for (let i = 0; i < numParams; i++) expected[i] = expected[i]! + w * x[i]!;
  expectedWeight += w;
}
const aggregate = folded.result();
checkSame(aggregate.weightedSum, expected, 'WeightedSum equals the weighted bare loop bit for bit');
check(aggregate.totalWeight === expectedWeight && aggregate.count === numUpdates, `WeightedSum holds weight ${aggregate.totalWeight} of ${aggregate.count} updates; expected ${expectedWeight} of ${numUpdates}`);

const { candidate, baseline } = await compare(foldWithWeightedSum, foldWithBareLoop, 5, 300);
const ratio = baseline.medianMs / candidate.medianMs;
const gbPerSecond = (numUpdates * numParams * 4) / (candidate.medianMs / 1000) / 1e9;
report(
  `WeightedSum fold of ${numUpdates} × ${numParams.toLocaleString('en')} floats vs bare Float64Array loop`,
  ratio,
  `WeightedSum ${candidate.medianMs.toFixed(1)} ms (${gbPerSecond.toFixed(2)} GB/s of updates), bare loop ${baseline.medianMs.toFixed(1)} ms`,
  { op: '>=', value: 0.5 },
);
