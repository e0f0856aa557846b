// Differential privacy costs, each as a ratio against a baseline measured in the same run.
//
// 1. Accountant, 10,000 rounds over the 156 default orders, the way the coordinator uses it: one
//    compose(q, z) and one epsilon(δ) per round. Baseline: folding one client update of the
//    McMahan 2NN (199,210 parameters) into the aggregate, work every round does once per client:
//    the ratio is the accountant's per-round cost in client folds.
//    Also the cold cost of one RDP vector (paid once per distinct (q, z); the accountant caches
//    the last one), against a bare loop of Math.log calls, one per series term evaluated.
// 2. Clipping + Gaussian noise on 1M floats (one client's update) against a bare pass that scales
//    the array into a new one: what clip (a norm pass + a scaling pass) and CSPRNG noise add.
// Correctness (exit 1 on failure): composing round by round gives the ε of composing all rounds at
// once; the clipped vector's norm is ≤ C and it points the same way; the noise has the asked
// standard deviation (within 5 %: more than 7 standard errors at the quick size, 70 at the full).
import { addGaussianNoise, clipToNorm, cryptoNoise, DEFAULT_RDP_ORDERS, RdpAccountant, rdpOfStep, seededNoise } from '@shoal/dp';
import { WeightedSum } from '@shoal/strategy';
import { check, compare, report, sized, time } from './lib.js';

// ---- 1. accountant ----
const rounds = sized(10_000, 100);
const [q, z, delta] = [0.01, 1.1, 1e-5];

function accountTenThousandRounds(): number {
  const accountant = new RdpAccountant();
  let epsilon = 0;
  for (let round = 0; round < rounds; round++) {
    accountant.compose(q, z);
    epsilon = accountant.epsilon(delta).epsilon;
  }
  return epsilon;
}

const modelSize = sized(199_210, 10_000);
const update = Float32Array.from({ length: modelSize }, (_, i) => Math.sin(i) * 1e-3);
const aggregate = new WeightedSum(modelSize);
function foldOneClientUpdate(): number {
  aggregate.add(update, 1);
  return aggregate.totalWeight;
}

const accounting = await compare(accountTenThousandRounds, foldOneClientUpdate, 3, 300);
report(
  `accountant per round (compose + epsilon over ${DEFAULT_RDP_ORDERS.length} orders, averaged over ${rounds.toLocaleString('en')} rounds) vs folding one ${modelSize.toLocaleString('en')}-param client update`,
  accounting.candidate.medianMs / rounds / accounting.baseline.medianMs,
  `${rounds.toLocaleString('en')} rounds ${accounting.candidate.medianMs.toFixed(1)} ms = ${((1000 * accounting.candidate.medianMs) / rounds).toFixed(1)} µs/round, ` +
    `one fold ${accounting.baseline.medianMs.toFixed(2)} ms`,
);

// Cold: the full RDP vector for a new (q, z). Count the series terms it evaluates (integer orders:
// α + 1 terms; fractional: until the terms fall below e^-30) by timing a matching Math.log loop.
function coldRdpVector(): number {
  let total = 0;
  for (const order of DEFAULT_RDP_ORDERS) total += rdpOfStep(q, z, order);
  return total;
}
const integerTerms = DEFAULT_RDP_ORDERS.filter(Number.isInteger).reduce((sum, order) => sum + order + 1, 0);
function bareLogLoop(): number {
  let total = 0;
  for (let i = 1; i <= integerTerms; i++) total += Math.log(i);
  return total;
}
const cold = await compare(coldRdpVector, bareLogLoop, 3, 300);
report(
  `accountant: one cold RDP vector (q = ${q}, z = ${z}) vs a bare loop of ${integerTerms.toLocaleString('en')} Math.log calls (the integer orders' term count)`,
  cold.candidate.medianMs / cold.baseline.medianMs,
  `cold vector ${cold.candidate.medianMs.toFixed(2)} ms (→ ${((cold.candidate.medianMs * rounds) / 1000).toFixed(0)} s if q or z changed every one of ${rounds.toLocaleString('en')} rounds), ` +
    `log loop ${cold.baseline.medianMs.toFixed(3)} ms`,
);

// ---- 2. clip + noise on 1M floats ----
const n = sized(1_000_000, 10_000);
const big = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.01));
// Like clipToNorm, the baseline returns a new array, so the ratio shows the extra work, not allocation.
function bareScalingPass(): number {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = big[i]! * 0.5;
  return out[n - 1]!;
}
const noise = cryptoNoise();

// ---- correctness of what is timed ----
const allAtOnce = new RdpAccountant();
allAtOnce.compose(q, z, rounds);
const roundByRound = accountTenThousandRounds();
const atOnce = allAtOnce.epsilon(delta).epsilon;
check(Number.isFinite(roundByRound) && Math.abs(roundByRound - atOnce) <= 1e-9 * atOnce, `ε composed round by round (${roundByRound}) equals ε composed at once (${atOnce})`);
const clipped = clipToNorm(big, 1).clipped;
const clippedNorm = Math.sqrt(clipped.reduce((sum, x) => sum + x * x, 0));
const cosine = clipped.reduce((sum, x, i) => sum + x * big[i]!, 0) / (clippedNorm * Math.sqrt(big.reduce((sum, x) => sum + x * x, 0)));
check(clippedNorm <= 1 && clippedNorm > 0.999 && cosine > 1 - 1e-6, `clipToNorm(v, 1) has norm ${clippedNorm} (≤ 1) and points along v (cosine ${cosine})`);
for (const [name, source] of [['cryptoNoise', noise], ['seededNoise', seededNoise(2)]] as const) {
  const sample = addGaussianNoise(new Float32Array(n), 0.01, source);
  const mean = sample.reduce((sum, x) => sum + x, 0) / n;
  const std = Math.sqrt(sample.reduce((sum, x) => sum + (x - mean) ** 2, 0) / (n - 1));
  check(Math.abs(std / 0.01 - 1) < 0.05 && Math.abs(mean) < (5 * 0.01) / Math.sqrt(n), `${name}: Gaussian noise of std 0.01 has sample std ${std} and mean ${mean} over ${n} values`);
}
const clipOnly = await compare(() => clipToNorm(big, 1).clipped[0], bareScalingPass, 5, 300);
report(
  'clipToNorm of 1M floats vs a bare scale-into-new-array pass',
  clipOnly.candidate.medianMs / clipOnly.baseline.medianMs,
  `clip ${clipOnly.candidate.medianMs.toFixed(2)} ms, bare pass ${clipOnly.baseline.medianMs.toFixed(2)} ms`,
);
const clipAndNoise = await compare(() => addGaussianNoise(clipToNorm(big, 1).clipped, 0.01, noise)[0], bareScalingPass, 5, 300);
report(
  'clipToNorm + Gaussian noise (cryptoNoise) on 1M floats vs a bare scale-into-new-array pass',
  clipAndNoise.candidate.medianMs / clipAndNoise.baseline.medianMs,
  `clip + noise ${clipAndNoise.candidate.medianMs.toFixed(1)} ms, bare pass ${clipAndNoise.baseline.medianMs.toFixed(2)} ms`,
);
const seeded = seededNoise(1);
const csprngCost = await compare(() => addGaussianNoise(big, 0.01, noise)[0], () => addGaussianNoise(big, 0.01, seeded)[0], 3, 300);
report(
  'Gaussian noise on 1M floats: cryptoNoise (WebCrypto) vs seededNoise (xoshiro, tests only)',
  csprngCost.candidate.medianMs / csprngCost.baseline.medianMs,
  `crypto ${csprngCost.candidate.medianMs.toFixed(1)} ms, seeded ${csprngCost.baseline.medianMs.toFixed(1)} ms`,
);
// For context: the ε this schedule reaches, and one epsilon() call on its own.
const single = new RdpAccountant();
single.compose(q, z, rounds);
const epsilonCall = await time(() => single.epsilon(delta), 200);
console.log(`(ε after ${rounds.toLocaleString('en')} rounds at q = ${q}, z = ${z}, δ = ${delta}: ${single.epsilon(delta).epsilon.toFixed(4)}; one epsilon() call ${(1000 * epsilonCall.medianMs).toFixed(1)} µs)`);
