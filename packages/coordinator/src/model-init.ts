import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  ShoalError,
  builtinTopology,
  createSeededRandom,
  manifestOfSequential,
  numParams,
  sizeOf,
  type BuiltinModelName,
  type ModelDescriptor,
  type WeightSpec,
} from '@shoal/protocol';

/** The global model a coordinator starts from. */
export interface InitialModel {
  readonly descriptor: ModelDescriptor;
  readonly weights: Float32Array;
}

/**
 * A built-in model with seeded initial weights, initialised as Keras does by default, so the
 * coordinator can create it without tfjs and every run with the same seed starts identically:
 * Glorot-uniform kernels (dense, conv and a GRU's input kernel), orthogonal recurrent kernels,
 * embeddings uniform in [−0.05, 0.05], zero biases. Drawn weight by weight in manifest order.
 */
export function builtinInitialModel(
  name: BuiltinModelName,
  inputShape: readonly number[],
  numClasses: number,
  seed = 0,
): InitialModel {
  const topology = builtinTopology(name, inputShape, numClasses);
  if (topology.format !== 'shoal-sequential') throw new Error('built-in models are shoal-sequential');
  const manifest = manifestOfSequential(topology);
  const random = createSeededRandom(seed);
  const weights = new Float32Array(numParams(manifest));
  let offset = 0;
  for (const weight of manifest) {
    const size = sizeOf(weight.shape);
    const values = weights.subarray(offset, offset + size);
    if (weight.name.endsWith('/kernel')) {
      const { fanIn, fanOut } = fans(weight);
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < size; i++) values[i] = (2 * random.next() - 1) * limit;
    } else if (weight.name.endsWith('/recurrent_kernel')) {
      values.set(orthogonal(weight.shape[0]!, weight.shape[1]!, () => random.nextGaussian()));
    } else if (weight.name.endsWith('/embeddings')) {
      for (let i = 0; i < size; i++) values[i] = (2 * random.next() - 1) * EMBEDDING_LIMIT;
    }
    offset += size;
  }
  return { descriptor: { topology, manifest }, weights };
}

/** tfjs's and Keras's default embedding initialiser: uniform in [−0.05, 0.05]. */
const EMBEDDING_LIMIT = 0.05;

/**
 * A rows × cols matrix (row-major) with orthonormal rows (rows ≤ cols) or columns, as Keras's
 * Orthogonal initialiser makes it: the Q of a Gaussian matrix's QR decomposition with R's diagonal
 * made positive, transposed when rows < cols. Here by modified Gram–Schmidt, whose R has a positive
 * diagonal by construction. Exported for tests.
 */
export function orthogonal(rows: number, cols: number, gaussian: () => number): Float32Array {
  const [tall, narrow] = rows >= cols ? [rows, cols] : [cols, rows];
  // `narrow` Gaussian vectors of length `tall`, orthonormalised one after another.
  const vectors = Array.from({ length: narrow }, () => Float64Array.from({ length: tall }, gaussian));
  vectors.forEach((vector, k) => {
    for (let j = 0; j < k; j++) {
      const previous = vectors[j]!;
      let dot = 0;
      for (let i = 0; i < tall; i++) dot += vector[i]! * previous[i]!;
      for (let i = 0; i < tall; i++) vector[i]! -= dot * previous[i]!;
    }
    let norm = 0;
    for (let i = 0; i < tall; i++) norm += vector[i]! ** 2;
    norm = Math.sqrt(norm);
    for (let i = 0; i < tall; i++) vector[i]! /= norm;
  });
  // As columns of a tall matrix, or as rows of a wide one.
  const out = new Float32Array(rows * cols);
  vectors.forEach((vector, k) => {
    for (let i = 0; i < tall; i++) out[rows >= cols ? i * cols + k : k * cols + i] = vector[i]!;
  });
  return out;
}

// Keras convention: a dense kernel [in, out]; a conv kernel [kh, kw, in, out] has receptive field kh·kw.
function fans(weight: WeightSpec): { fanIn: number; fanOut: number } {
  const shape = weight.shape;
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return { fanIn: receptive * shape[shape.length - 2]!, fanOut: receptive * shape[shape.length - 1]! };
}

interface SavedModelJson {
  modelTopology?: unknown;
  weightsManifest?: { paths: string[]; weights: { name: string; shape: number[]; dtype?: string }[] }[];
}

/**
 * Reads a tfjs Layers model saved as `model.json` plus binary weight files, without tfjs: the
 * topology goes to clients as is, the weights become the flat initial vector.
 */
export async function loadSavedModel(modelJsonPath: string): Promise<InitialModel> {
  let parsed: SavedModelJson;
  try {
    parsed = JSON.parse(await readFile(modelJsonPath, 'utf8')) as SavedModelJson;
  } catch (cause) {
    throw new ShoalError('INVALID_CONFIG', `model: cannot read tfjs model file ${modelJsonPath}: ${(cause as Error).message}`, { cause });
  }
  if (typeof parsed.modelTopology !== 'object' || parsed.modelTopology === null || !Array.isArray(parsed.weightsManifest)) {
    throw new ShoalError('INVALID_CONFIG', `model: ${modelJsonPath} is not a tfjs Layers model (needs modelTopology and weightsManifest)`);
  }
  const manifest: WeightSpec[] = [];
  const chunks: Uint8Array[] = [];
  for (const group of parsed.weightsManifest) {
    for (const path of group.paths) chunks.push(await readFile(resolve(dirname(modelJsonPath), path)));
    for (const weight of group.weights) {
      if ((weight.dtype ?? 'float32') !== 'float32') {
        throw new ShoalError('INVALID_CONFIG', `model: weight ${weight.name} has dtype ${weight.dtype}; Shoal trains float32 weights only`);
      }
      manifest.push({ name: weight.name, shape: weight.shape });
    }
  }
  const bytes = Buffer.concat(chunks);
  const expected = numParams(manifest) * 4;
  if (bytes.byteLength !== expected) {
    throw new ShoalError('INVALID_CONFIG', `model: weight files of ${modelJsonPath} hold ${bytes.byteLength} bytes; the manifest needs ${expected}`);
  }
  // Copy into a fresh, aligned buffer (Buffer views may start at any offset).
  const weights = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(weights.buffer).set(bytes);
  return { descriptor: { topology: { format: 'tfjs-layers', modelTopology: parsed.modelTopology }, manifest }, weights };
}
