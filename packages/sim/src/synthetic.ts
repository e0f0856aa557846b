/**
 * FedProx's Synthetic(α, β) (Li et al., "Federated Optimization in Heterogeneous Networks",
 * MLSys 2020), generated as the paper's released code does (litian96/FedProx,
 * `data/synthetic_1_1/generate_synthetic.py`), from a seeded generator. Pure: options in, arrays out.
 *
 * Per device k, with α and β standard deviations:
 * - size n_k = ⌊lognormal(4, 2)⌋ + 50, i.e. ⌊exp(4 + 2z)⌋ + 50 with z ~ N(0, 1);
 * - u_k ~ N(0, α²), B_k ~ N(0, β²);
 * - W_k ~ N(u_k, 1) (features × classes), b_k ~ N(u_k, 1) (classes), elementwise;
 * - v_k ~ N(B_k, 1) per feature; x ~ N(v_k, Σ), Σ diagonal with Σ_jj = j^−1.2 (j from 1);
 * - y = argmax(x·W_k + b_k) (the reference takes argmax of the softmax, the same class).
 * α controls how much the devices' models differ, β how much their feature distributions do;
 * α = β = 0 still gives each device its own W_k, b_k and v_k, all drawn around 0.
 * Each device's examples are shuffled, and the first ⌊0.9·n_k⌋ are its train share, the rest its
 * test share, as the reference's `main()` does.
 *
 * Synthetic-IID (`iid: true`, the paper's IID baseline, generated as the released
 * `data/synthetic_iid/generate_iid.py` does): the same sizes n_k, but one W ~ N(0, 1) and one
 * b ~ N(0, 1) shared by every device, and x ~ N(0, Σ) on every device (the same Σ; v = 0). α and β
 * play no part.
 */
import { ShoalError, createSeededRandom, shuffled } from '@shoal/protocol';
import type { SeededRandom } from '@shoal/protocol';
import type { Dataset, TrainTest } from './datasets.js';

export interface SyntheticOptions {
  /** Std of u_k, the mean of device k's model W_k, b_k. Default 1. */
  readonly alpha?: number;
  /** Std of B_k, the mean of device k's feature means v_k. Default 1. */
  readonly beta?: number;
  /** Number of devices. Default 30. */
  readonly devices?: number;
  /** Features per example. Default 60. */
  readonly features?: number;
  /** Classes. Default 10. */
  readonly classes?: number;
  /** Synthetic-IID: every device shares one W, b and x ~ N(0, Σ); α and β are unused. Default false. */
  readonly iid?: boolean;
  /** Share of each device's examples kept for training, in (0, 1). Default 0.9. */
  readonly trainFraction?: number;
  /** Default 0. */
  readonly seed?: number;
}

/** The defaults of the paper's code. */
export const SYNTHETIC_DEFAULTS = { alpha: 1, beta: 1, iid: false, devices: 30, features: 60, classes: 10, trainFraction: 0.9, seed: 0 } as const;

/** Synthetic(α, β): the pooled train and test splits, and which train examples each device holds. */
export interface SyntheticData extends TrainTest {
  /** Per device, its examples' indices in `train` (contiguous, in device order): the natural partition. */
  readonly devices: readonly Int32Array[];
  /** Per device, its examples' indices in `test`. */
  readonly testDevices: readonly Int32Array[];
  /** Per device, its total size n_k before the train/test split. */
  readonly sizes: readonly number[];
}

/**
 * Device k's size: ⌊exp(4 + 2z)⌋ + 50, z ~ N(0, 1) (numpy's `lognormal(4, 2).astype(int) + 50`).
 * Exported so tests can check the sizes against the formula.
 */
export function syntheticDeviceSize(random: SeededRandom): number {
  return Math.floor(Math.exp(4 + 2 * random.nextGaussian())) + 50;
}

/**
 * Generates Synthetic(α, β). Draws, in this order from `createSeededRandom(seed)`: every device's
 * size, then every u_k, every B_k, every v_k, then per device W_k, b_k and its examples (the
 * reference's order), then per device a shuffle for the split. With `iid`: every device's size, then
 * W and b, then per device its examples, then the shuffles (generate_iid.py's order).
 *
 * @throws ShoalError INVALID_CONFIG when α or β is negative or not finite, or a count or
 *   trainFraction is out of range.
 */
export function generateSynthetic(options: SyntheticOptions = {}): SyntheticData {
  const { alpha, beta, iid, devices, features, classes, trainFraction, seed } = { ...SYNTHETIC_DEFAULTS, ...options };
  const check = (ok: boolean, what: string): void => {
    if (!ok) throw new ShoalError('INVALID_CONFIG', `synthetic: ${what}`);
  };
  check(Number.isFinite(alpha) && alpha >= 0, `alpha must be a finite number ≥ 0, got ${alpha}`);
  check(Number.isFinite(beta) && beta >= 0, `beta must be a finite number ≥ 0, got ${beta}`);
  check(Number.isInteger(devices) && devices >= 1, `devices must be a positive integer, got ${devices}`);
  check(Number.isInteger(features) && features >= 1, `features must be a positive integer, got ${features}`);
  check(Number.isInteger(classes) && classes >= 2, `classes must be an integer ≥ 2, got ${classes}`);
  check(trainFraction > 0 && trainFraction < 1, `trainFraction must be in (0, 1), got ${trainFraction}`);

  const random = createSeededRandom(seed);
  const gaussian = (mean: number, std: number): number => mean + std * random.nextGaussian();
  const sizes = Array.from({ length: devices }, () => syntheticDeviceSize(random));
  const featureStds = Float64Array.from({ length: features }, (_, j) => Math.sqrt((j + 1) ** -1.2)); // √Σ_jj
  // Device k's labelling model (W row-major features × classes, b) and feature means v, drawn when
  // its examples are: W_k and b_k just before them, as the reference does.
  let modelOf: (device: number) => { weights: Float64Array; bias: Float64Array; means: Float64Array };
  if (iid) {
    const shared = {
      weights: Float64Array.from({ length: features * classes }, () => gaussian(0, 1)),
      bias: Float64Array.from({ length: classes }, () => gaussian(0, 1)),
      means: new Float64Array(features),
    };
    modelOf = () => shared;
  } else {
    const modelMeans = Array.from({ length: devices }, () => gaussian(0, alpha)); // u_k
    const featureMeanMeans = Array.from({ length: devices }, () => gaussian(0, beta)); // B_k
    const featureMeans = featureMeanMeans.map((centre) => Float64Array.from({ length: features }, () => gaussian(centre, 1))); // v_k
    modelOf = (device) => ({
      weights: Float64Array.from({ length: features * classes }, () => gaussian(modelMeans[device]!, 1)),
      bias: Float64Array.from({ length: classes }, () => gaussian(modelMeans[device]!, 1)),
      means: featureMeans[device]!,
    });
  }

  const total = sizes.reduce((sum, size) => sum + size, 0);
  const x = new Float32Array(total * features);
  const y = new Int32Array(total);
  const logits = new Float64Array(classes);
  let row = 0;
  for (let device = 0; device < devices; device++) {
    const { weights, bias, means } = modelOf(device);
    for (let i = 0; i < sizes[device]!; i++, row++) {
      logits.set(bias);
      for (let j = 0; j < features; j++) {
        const value = gaussian(means[j]!, featureStds[j]!);
        x[row * features + j] = value;
        for (let c = 0; c < classes; c++) logits[c]! += value * weights[j * classes + c]!;
      }
      y[row] = argmax(logits);
    }
  }

  // Per device: shuffle, first ⌊trainFraction·n_k⌋ to train, the rest to test.
  const trainIndices: number[] = [];
  const testIndices: number[] = [];
  const deviceTrain: Int32Array[] = [];
  const deviceTest: Int32Array[] = [];
  let start = 0;
  for (const size of sizes) {
    const order = shuffled(Array.from({ length: size }, (_, i) => start + i), random);
    const trainCount = Math.floor(trainFraction * size);
    deviceTrain.push(Int32Array.from({ length: trainCount }, (_, i) => trainIndices.length + i));
    deviceTest.push(Int32Array.from({ length: size - trainCount }, (_, i) => testIndices.length + i));
    trainIndices.push(...order.slice(0, trainCount));
    testIndices.push(...order.slice(trainCount));
    start += size;
  }
  const pick = (indices: readonly number[]): Dataset => {
    const picked = new Float32Array(indices.length * features);
    const labels = new Int32Array(indices.length);
    indices.forEach((index, i) => {
      picked.set(x.subarray(index * features, (index + 1) * features), i * features);
      labels[i] = y[index]!;
    });
    return { name: 'synthetic', x: picked, y: labels, featureShape: [features], numClasses: classes, length: indices.length };
  };
  return { train: pick(trainIndices), test: pick(testIndices), devices: deviceTrain, testDevices: deviceTest, sizes };
}

function argmax(values: Float64Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
