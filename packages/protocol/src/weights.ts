/** One named weight tensor of a model, in the order the model lists its weights. */
export interface WeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

/** The layout of a model's flat parameter vector: weights in order, each row-major. */
export type WeightManifest = readonly WeightSpec[];

/** Weights as one flat vector plus the manifest that says how to cut it. */
export interface WeightSet {
  readonly manifest: WeightManifest;
  readonly data: Float32Array;
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

export function numParams(manifest: WeightManifest): number {
  return manifest.reduce((total, weight) => total + sizeOf(weight.shape), 0);
}

/** Views (not copies) of each weight's slice of `data`, in manifest order. */
export function splitWeights(manifest: WeightManifest, data: Float32Array): Float32Array[] {
  const expected = numParams(manifest);
  if (data.length !== expected) {
    throw new RangeError(`weight vector has ${data.length} values; the manifest needs ${expected}`);
  }
  const parts: Float32Array[] = [];
  let offset = 0;
  for (const weight of manifest) {
    const size = sizeOf(weight.shape);
    parts.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return parts;
}

/** Concatenates per-weight arrays (manifest order) into one flat vector. */
export function joinWeights(manifest: WeightManifest, parts: readonly ArrayLike<number>[]): Float32Array {
  if (parts.length !== manifest.length) {
    throw new RangeError(`got ${parts.length} weight arrays; the manifest lists ${manifest.length}`);
  }
  const data = new Float32Array(numParams(manifest));
  let offset = 0;
  manifest.forEach((weight, index) => {
    const part = parts[index]!;
    const size = sizeOf(weight.shape);
    if (part.length !== size) {
      throw new RangeError(`weight ${weight.name} has ${part.length} values; its shape [${weight.shape.join(', ')}] needs ${size}`);
    }
    data.set(part, offset);
    offset += size;
  });
  return data;
}
