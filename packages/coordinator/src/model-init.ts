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
 * A built-in model with seeded Glorot-uniform kernels and zero biases (tfjs's own defaults), so
 * the coordinator can create it without tfjs and every run with the same seed starts identically.
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
    if (weight.name.endsWith('/kernel')) {
      const { fanIn, fanOut } = fans(weight);
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < size; i++) weights[offset + i] = (2 * random.next() - 1) * limit;
    }
    offset += size;
  }
  return { descriptor: { topology, manifest }, weights };
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
