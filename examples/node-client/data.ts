// The example's data: 3 classes of 4-feature points scattered around fixed centres. Every app draws
// its own examples from the same "world" (the centres are shared), but with its own seed and a
// preference for one class, so each device holds different, non-IID data, as real devices do.

/** Number of features of one example. */
export const FEATURES = 4;
/** Number of classes. */
export const CLASSES = 3;

/**
 * Class k is centred on 2·e_k with unit noise: neighbouring centres are 2.8 standard deviations
 * apart, so the classes overlap and the best possible accuracy is about 85%, not 100%.
 */
const CENTRES: readonly (readonly number[])[] = [
  [2, 0, 0, 0],
  [0, 2, 0, 0],
  [0, 0, 2, 0],
];

export interface LocalDataset {
  /** Row-major features, `size × FEATURES`. */
  readonly x: Float32Array;
  /** Integer class labels in 0..CLASSES-1. */
  readonly y: Int32Array;
  readonly featureShape: readonly number[];
}

/**
 * Draws `size` labelled examples. With `favouriteClass`, that class gets `skew` of the examples
 * (default 0.6) and the rest are uniform over all classes.
 */
export function syntheticDataset(options: { seed: number; size: number; favouriteClass?: number; skew?: number }): LocalDataset {
  const random = mulberry32(options.seed);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()); // Box–Muller
  const x = new Float32Array(options.size * FEATURES);
  const y = new Int32Array(options.size);
  for (let i = 0; i < options.size; i++) {
    const favoured = options.favouriteClass !== undefined && random() < (options.skew ?? 0.6);
    const label = favoured ? options.favouriteClass! : Math.floor(random() * CLASSES);
    y[i] = label;
    for (let f = 0; f < FEATURES; f++) x[i * FEATURES + f] = CENTRES[label]![f]! + gaussian();
  }
  return { x, y, featureShape: [FEATURES] };
}

/**
 * A small seeded generator (mulberry32), so every run of the example sees the same data. Fine for
 * making up data; never for anything secret.
 */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
