/**
 * The bundled datasets (MNIST, scikit-learn digits, iris, tiny Shakespeare) as flat typed arrays.
 *
 * The parsers are pure functions over bytes or text, so they can be tested and fuzzed without files;
 * `loadDataset()` is the only function here that touches the file system.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DATASET_SHAPES, datasetsDir, type DatasetName } from '@shoal/datasets';
import { ShoalError, createSeededRandom, shuffled } from '@shoal/protocol';
import type { SeededRandom } from '@shoal/protocol';
import { generateSynthetic } from './synthetic.js';
import { shakespeareExamples, type ShakespeareData } from './shakespeare.js';

/** Features as a row-major Float32Array of numExamples × prod(featureShape), labels as Int32Array of class ids. */
export interface Dataset {
  readonly name: string;
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly featureShape: readonly number[];
  readonly numClasses: number;
  readonly length: number;
}

export interface TrainTest {
  readonly train: Dataset;
  readonly test: Dataset;
}

/** The bundled datasets' names, from @shoal/datasets, which also knows their shapes. */
export type { DatasetName };

export interface LoadDatasetOptions {
  /** Folder holding `mnist/`, `sklearn/` and `shakespeare/`. Default: the `data/` folder of the `@shoal/datasets` package. */
  dataDir?: string;
  /** Seed of the train/test split of digits and iris, and of the order of shakespeare's test split. Default 0. MNIST keeps its own split. */
  seed?: number;
  /** Share of each class held out for testing (digits and iris), in (0, 1). Default 0.2. Shakespeare always holds out the last 20 % of each speaker's windows. */
  testFraction?: number;
}

const IDX_IMAGES_MAGIC = 2051;
const IDX_LABELS_MAGIC = 2049;
const DIGITS_FEATURES = 64;
const DIGITS_MAX_VALUE = 16;
const DIGITS_CLASSES = 10;
const MNIST_CLASSES = 10;

/**
 * Loads a bundled dataset from `dataDir` (default: `datasetsDir` of `@shoal/datasets`, the package
 * that ships the files). Caches nothing globally: every call reads the files again.
 *
 * - `mnist`: its own 60,000 / 10,000 split, pixels scaled to [0, 1], featureShape [28, 28, 1].
 * - `digits`: 1,797 examples, values scaled by 1/16, featureShape [64], seeded stratified split.
 * - `iris`: 150 examples, 3 classes, features standardised with the train split's mean and
 *   standard deviation, featureShape [4], seeded stratified split.
 * - `synthetic`: FedProx's Synthetic(1, 1) with its defaults, generated from `seed` (nothing is
 *   read; `dataDir` and `testFraction` do not apply): each device's 90 / 10 train / test split,
 *   pooled. `generateSynthetic()` gives other α, β and which device holds which example.
 * - `shakespeare`: next-character windows of 40 character ids (featureShape [40], 65 classes), the
 *   first 80 % of each speaker's windows train, the rest test (`loadShakespeare` also says which
 *   speaker holds which example; `shakespeare.ts` documents the recipe).
 *
 * @throws ShoalError INVALID_DATA when the folder or a file is missing or malformed;
 *   INVALID_CONFIG for an unknown name or a `testFraction` outside (0, 1).
 */
export function loadDataset(name: DatasetName, options: LoadDatasetOptions = {}): TrainTest {
  const dataDir = options.dataDir ?? datasetsDir;
  const seed = options.seed ?? 0;
  const testFraction = options.testFraction ?? 0.2;
  if (!(testFraction > 0 && testFraction < 1)) {
    throw new ShoalError('INVALID_CONFIG', `testFraction must be in (0, 1), got ${testFraction}`);
  }
  if (name === 'synthetic') {
    const { train, test } = generateSynthetic({ seed });
    return { train, test };
  }
  checkDataDir(dataDir);
  switch (name) {
    case 'mnist':
      return loadMnist(dataDir);
    case 'digits': {
      const file = join(dataDir, 'sklearn', 'digits.csv.gz');
      const { x, y } = parseDigitsCsv(gunzipFile(file).toString('utf8'), file);
      for (let i = 0; i < x.length; i++) x[i] = x[i]! / DIGITS_MAX_VALUE;
      const all = makeDataset('digits', x, y, [DIGITS_FEATURES], DIGITS_CLASSES);
      return splitTrainTest(all, createSeededRandom(seed), testFraction);
    }
    case 'iris': {
      const file = join(dataDir, 'sklearn', 'iris.csv');
      const { x, y, classNames } = parseIrisCsv(readDataFile(file).toString('utf8'), file);
      const all = makeDataset('iris', x, y, [x.length / y.length], classNames.length);
      const split = splitTrainTest(all, createSeededRandom(seed), testFraction);
      return standardise(split);
    }
    case 'shakespeare': {
      const { train, test } = loadShakespeare({ dataDir, seed });
      return { train, test };
    }
    default:
      throw new ShoalError('INVALID_CONFIG', `unknown dataset ${JSON.stringify(name)}; expected mnist, digits, iris, synthetic or shakespeare`);
  }
}

/**
 * The `shakespeare` dataset with its speakers (who holds which example): `shakespeare/tinyshakespeare.txt`
 * of `dataDir`, windows of 40 characters as DATASET_SHAPES promises.
 * @throws ShoalError INVALID_DATA when the file is missing or malformed, or its vocabulary is not
 *   the 65 characters the built-in model is shaped for.
 */
export function loadShakespeare(options: Pick<LoadDatasetOptions, 'dataDir' | 'seed'> = {}): ShakespeareData {
  const dataDir = options.dataDir ?? datasetsDir;
  checkDataDir(dataDir);
  const file = join(dataDir, 'shakespeare', 'tinyshakespeare.txt');
  const { featureShape, numClasses } = DATASET_SHAPES.shakespeare;
  const data = shakespeareExamples(readDataFile(file).toString('utf8'), { sequenceLength: featureShape[0]!, seed: options.seed ?? 0 }, file);
  if (data.vocabulary.length !== numClasses) {
    throw new ShoalError('INVALID_DATA', `${file}: ${data.vocabulary.length} distinct characters where the shakespeare dataset promises ${numClasses} (its model's classes); use the bundled tiny-Shakespeare text`);
  }
  return data;
}

function checkDataDir(dataDir: string): void {
  if (!existsSync(dataDir)) {
    throw new ShoalError(
      'INVALID_DATA',
      `dataset folder ${dataDir} does not exist; pass dataDir pointing at a folder with mnist/, sklearn/ and shakespeare/ (see the README of @shoal/datasets)`,
    );
  }
}

function loadMnist(dataDir: string): TrainTest {
  const mnistDir = join(dataDir, 'mnist');
  const load = (imagesFile: string, imagesBytes: Uint8Array, labelsFile: string): Dataset => {
    const images = parseIdxImages(imagesBytes, imagesFile);
    const labels = parseIdxLabels(gunzipFile(labelsFile), labelsFile);
    if (labels.length !== images.count) {
      throw new ShoalError('INVALID_DATA', `count mismatch: ${imagesFile} has ${images.count} images but ${labelsFile} has ${labels.length} labels`);
    }
    const y = new Int32Array(labels.length);
    for (let i = 0; i < labels.length; i++) {
      const label = labels[i]!;
      if (label >= MNIST_CLASSES) throw new ShoalError('INVALID_DATA', `${labelsFile}: label ${label} at index ${i} is out of range 0..${MNIST_CLASSES - 1}`);
      y[i] = label;
    }
    const x = new Float32Array(images.pixels.length);
    const pixels = images.pixels;
    for (let i = 0; i < pixels.length; i++) x[i] = pixels[i]! / 255;
    return makeDataset('mnist', x, y, [images.rows, images.cols, 1], MNIST_CLASSES);
  };
  const trainImages = readMnistTrainImages(mnistDir);
  const train = load(trainImages.file, trainImages.bytes, join(mnistDir, 'train-labels-idx1-ubyte.gz'));
  const testImagesFile = join(mnistDir, 't10k-images-idx3-ubyte.gz');
  const test = load(testImagesFile, gunzipFile(testImagesFile), join(mnistDir, 't10k-labels-idx1-ubyte.gz'));
  return { train, test };
}

/** The train images ship as `.part0`, `.part1`, … (each under 4 MiB); an unsplit file is used when present. */
function readMnistTrainImages(mnistDir: string): { file: string; bytes: Buffer } {
  const whole = join(mnistDir, 'train-images-idx3-ubyte.gz');
  if (existsSync(whole)) return { file: whole, bytes: gunzipFile(whole) };
  const prefix = 'train-images-idx3-ubyte.gz.part';
  const partNumbers = listDir(mnistDir)
    .filter((entry) => entry.startsWith(prefix) && /^\d+$/.test(entry.slice(prefix.length)))
    .map((entry) => Number(entry.slice(prefix.length)))
    .sort((a, b) => a - b);
  if (partNumbers.length === 0) {
    throw new ShoalError('INVALID_DATA', `${mnistDir} has neither train-images-idx3-ubyte.gz nor its parts ${prefix}0, ${prefix}1, …`);
  }
  partNumbers.forEach((partNumber, i) => {
    if (partNumber !== i) throw new ShoalError('INVALID_DATA', `${mnistDir}: ${prefix}${i} is missing (found part ${partNumber} instead)`);
  });
  const parts = partNumbers.map((partNumber) => readDataFile(join(mnistDir, `${prefix}${partNumber}`)));
  const file = join(mnistDir, `${prefix}0..${partNumbers.length - 1}`);
  return { file, bytes: gunzipBytes(Buffer.concat(parts), file) };
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (cause) {
    throw new ShoalError('INVALID_DATA', `cannot list dataset folder ${dir}: ${(cause as Error).message}`, { cause });
  }
}

function readDataFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (cause) {
    throw new ShoalError('INVALID_DATA', `cannot read dataset file ${file}: ${(cause as Error).message}`, { cause });
  }
}

function gunzipFile(file: string): Buffer {
  return gunzipBytes(readDataFile(file), file);
}

function gunzipBytes(bytes: Buffer, file: string): Buffer {
  try {
    return gunzipSync(bytes);
  } catch (cause) {
    throw new ShoalError('INVALID_DATA', `${file} is not valid gzip: ${(cause as Error).message}`, { cause });
  }
}

// ---------------------------------------------------------------------------------------------
// Pure parsers. `source` names the file in error messages.

/**
 * Parses an IDX3 unsigned-byte image file (already gunzipped): big-endian magic 2051, count, rows,
 * cols, then count × rows × cols pixel bytes, row-major. `pixels` is a view into `bytes`, not a copy.
 * @throws ShoalError INVALID_DATA on a short header, bad magic, zero dimensions or a body whose
 *   length is not count × rows × cols.
 */
export function parseIdxImages(bytes: Uint8Array, source = 'IDX images'): { count: number; rows: number; cols: number; pixels: Uint8Array } {
  const header = readIdxHeader(bytes, IDX_IMAGES_MAGIC, 4, source);
  const [count, rows, cols] = header as [number, number, number, number];
  if (rows === 0 || cols === 0) throw new ShoalError('INVALID_DATA', `${source}: image dimensions ${rows}×${cols} must be positive`);
  const pixels = readIdxBody(bytes, 16, count * rows * cols, `${count} images of ${rows}×${cols}`, source);
  return { count, rows, cols, pixels };
}

/**
 * Parses an IDX1 unsigned-byte label file (already gunzipped): big-endian magic 2049, count, then
 * one byte per label. Returns a view into `bytes`, not a copy.
 * @throws ShoalError INVALID_DATA on a short header, bad magic or a body of the wrong length.
 */
export function parseIdxLabels(bytes: Uint8Array, source = 'IDX labels'): Uint8Array {
  const [count] = readIdxHeader(bytes, IDX_LABELS_MAGIC, 2, source) as [number, number];
  return readIdxBody(bytes, 8, count, `${count} labels`, source);
}

/** Reads `words` big-endian uint32s (the magic first), checks the magic, returns the rest. */
function readIdxHeader(bytes: Uint8Array, magic: number, words: number, source: string): number[] {
  const headerBytes = words * 4;
  if (bytes.length < headerBytes) {
    throw new ShoalError('INVALID_DATA', `${source}: truncated header, ${bytes.length} bytes where the IDX header needs ${headerBytes}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes);
  const found = view.getUint32(0, false);
  if (found !== magic) throw new ShoalError('INVALID_DATA', `${source}: bad magic number ${found}, expected ${magic}`);
  const values: number[] = [];
  for (let word = 1; word < words; word++) values.push(view.getUint32(word * 4, false));
  return values;
}

function readIdxBody(bytes: Uint8Array, offset: number, expected: number, what: string, source: string): Uint8Array {
  const actual = bytes.length - offset;
  if (actual < expected) {
    throw new ShoalError('INVALID_DATA', `${source}: truncated body, header promises ${what} (${expected} bytes) but only ${actual} bytes follow`);
  }
  if (actual > expected) {
    throw new ShoalError('INVALID_DATA', `${source}: ${actual - expected} unexpected trailing bytes after ${what}`);
  }
  return bytes.subarray(offset);
}

/**
 * Parses scikit-learn's digits CSV: no header, one row per example of 64 integer values 0..16 then
 * the label 0..9. Values are not scaled.
 * @throws ShoalError INVALID_DATA naming the line and column of the first malformed field.
 */
export function parseDigitsCsv(text: string, source = 'digits CSV'): { x: Float32Array; y: Int32Array } {
  const lines = splitLines(text);
  if (lines.length === 0) throw new ShoalError('INVALID_DATA', `${source}: no rows`);
  const x = new Float32Array(lines.length * DIGITS_FEATURES);
  const y = new Int32Array(lines.length);
  lines.forEach((line, row) => {
    const lineNumber = row + 1;
    const fields = splitRow(line, DIGITS_FEATURES + 1, lineNumber, source);
    for (let column = 0; column < DIGITS_FEATURES; column++) {
      x[row * DIGITS_FEATURES + column] = parseIntegerField(fields[column]!, 0, DIGITS_MAX_VALUE, 'pixel value', lineNumber, column + 1, source);
    }
    y[row] = parseIntegerField(fields[DIGITS_FEATURES]!, 0, DIGITS_CLASSES - 1, 'label', lineNumber, DIGITS_FEATURES + 1, source);
  });
  return { x, y };
}

/**
 * Parses scikit-learn's iris CSV: a header `rows,features,className…` (e.g.
 * `150,4,setosa,versicolor,virginica`), then rows of `features` numbers and an integer label.
 * Features are not standardised.
 * @throws ShoalError INVALID_DATA on a malformed header, a malformed row (naming its line), a
 *   label outside the named classes, or a row count that disagrees with the header.
 */
export function parseIrisCsv(text: string, source = 'iris CSV'): { x: Float32Array; y: Int32Array; classNames: string[] } {
  const lines = splitLines(text);
  const [header, ...rows] = lines;
  if (header === undefined) throw new ShoalError('INVALID_DATA', `${source}: empty file, expected a header like 150,4,setosa,versicolor,virginica`);
  const headerFields = header.split(',');
  if (headerFields.length < 3) {
    throw new ShoalError('INVALID_DATA', `${source}: header at line 1 has ${headerFields.length} columns, expected rows,features,className…`);
  }
  const count = parseIntegerField(headerFields[0]!, 1, Number.MAX_SAFE_INTEGER, 'row count', 1, 1, source);
  const numFeatures = parseIntegerField(headerFields[1]!, 1, 10_000, 'feature count', 1, 2, source);
  const classNames = headerFields.slice(2).map((field) => field.trim());
  const emptyName = classNames.findIndex((className) => className === '');
  if (emptyName >= 0) throw new ShoalError('INVALID_DATA', `${source}: empty class name at line 1 column ${emptyName + 3}`);
  if (rows.length !== count) throw new ShoalError('INVALID_DATA', `${source}: count mismatch, header says ${count} rows but ${rows.length} follow`);

  const x = new Float32Array(count * numFeatures);
  const y = new Int32Array(count);
  rows.forEach((line, row) => {
    const lineNumber = row + 2;
    const fields = splitRow(line, numFeatures + 1, lineNumber, source);
    for (let column = 0; column < numFeatures; column++) {
      const field = fields[column]!;
      const value = field.trim() === '' ? Number.NaN : Number(field);
      if (!Number.isFinite(value)) {
        throw new ShoalError('INVALID_DATA', `${source}: feature ${JSON.stringify(field)} at line ${lineNumber} column ${column + 1} is not a finite number`);
      }
      x[row * numFeatures + column] = value;
    }
    y[row] = parseIntegerField(fields[numFeatures]!, 0, classNames.length - 1, 'label', lineNumber, numFeatures + 1, source);
  });
  return { x, y, classNames };
}

/** Lines of `text` (LF or CRLF), without the empty line a final newline leaves. */
function splitLines(text: string): string[] {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function splitRow(line: string, columns: number, lineNumber: number, source: string): string[] {
  const fields = line.split(',');
  if (fields.length !== columns) {
    throw new ShoalError('INVALID_DATA', `${source}: wrong column count at line ${lineNumber}: ${fields.length} columns, expected ${columns}`);
  }
  return fields;
}

function parseIntegerField(field: string, min: number, max: number, what: string, lineNumber: number, column: number, source: string): number {
  // Number('') is 0, so an empty field must be rejected explicitly.
  const value = field.trim() === '' ? Number.NaN : Number(field);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ShoalError('INVALID_DATA', `${source}: ${what} ${JSON.stringify(field)} at line ${lineNumber} column ${column} is not an integer in ${min}..${max}`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Pure dataset operations.

function makeDataset(name: string, x: Float32Array, y: Int32Array, featureShape: readonly number[], numClasses: number): Dataset {
  const featureSize = featureShape.reduce((a, b) => a * b, 1);
  if (x.length !== y.length * featureSize) {
    throw new ShoalError('INVALID_DATA', `${name}: ${x.length} feature values do not fill ${y.length} examples of shape [${featureShape.join(', ')}]`);
  }
  return { name, x, y, featureShape, numClasses, length: y.length };
}

function featureSizeOf(ds: Dataset): number {
  return ds.featureShape.reduce((a, b) => a * b, 1);
}

/** A new dataset holding copies of the examples at `indices`, in that order. @throws RangeError on an index outside 0..length−1. */
export function subset(ds: Dataset, indices: ArrayLike<number>): Dataset {
  const featureSize = featureSizeOf(ds);
  const x = new Float32Array(indices.length * featureSize);
  const y = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i]!;
    if (!Number.isInteger(index) || index < 0 || index >= ds.length) {
      throw new RangeError(`subset index ${index} at position ${i} is outside 0..${ds.length - 1} of ${ds.name}`);
    }
    x.set(ds.x.subarray(index * featureSize, (index + 1) * featureSize), i * featureSize);
    y[i] = ds.y[index]!;
  }
  return makeDataset(ds.name, x, y, ds.featureShape, ds.numClasses);
}

/**
 * The first `n` examples (all of them when `n` ≥ length). The result shares memory with `ds`: it
 * holds views, not copies. @throws RangeError when `n` is not a non-negative integer.
 */
export function take(ds: Dataset, n: number): Dataset {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`take needs a non-negative integer count, got ${n}`);
  const count = Math.min(n, ds.length);
  return makeDataset(ds.name, ds.x.subarray(0, count * featureSizeOf(ds)), ds.y.subarray(0, count), ds.featureShape, ds.numClasses);
}

/**
 * Seeded stratified split: within each class, shuffles that class's indices and holds out
 * round(classSize × testFraction) of them; each side is then shuffled so classes interleave.
 */
export function stratifiedSplit(
  labels: ArrayLike<number>,
  numClasses: number,
  testFraction: number,
  random: SeededRandom,
): { trainIndices: Int32Array; testIndices: Int32Array } {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const members = byClass[labels[i]!];
    if (members === undefined) throw new RangeError(`label ${labels[i]} at index ${i} is outside 0..${numClasses - 1}`);
    members.push(i);
  }
  const train: number[] = [];
  const test: number[] = [];
  for (const members of byClass) {
    const order = shuffled(members, random);
    const testCount = Math.round(order.length * testFraction);
    test.push(...order.slice(0, testCount));
    train.push(...order.slice(testCount));
  }
  return { trainIndices: Int32Array.from(shuffled(train, random)), testIndices: Int32Array.from(shuffled(test, random)) };
}

function splitTrainTest(all: Dataset, random: SeededRandom, testFraction: number): TrainTest {
  const { trainIndices, testIndices } = stratifiedSplit(all.y, all.numClasses, testFraction, random);
  if (trainIndices.length === 0 || testIndices.length === 0) {
    throw new ShoalError('INVALID_CONFIG', `testFraction ${testFraction} leaves the ${trainIndices.length === 0 ? 'train' : 'test'} split of ${all.name} empty`);
  }
  return { train: subset(all, trainIndices), test: subset(all, testIndices) };
}

/** Z-scores every feature with the train split's mean and (population) standard deviation. */
function standardise({ train, test }: TrainTest): TrainTest {
  const featureSize = featureSizeOf(train);
  const mean = new Float64Array(featureSize);
  const variance = new Float64Array(featureSize);
  for (let i = 0; i < train.x.length; i++) mean[i % featureSize]! += train.x[i]! / train.length;
  for (let i = 0; i < train.x.length; i++) variance[i % featureSize]! += (train.x[i]! - mean[i % featureSize]!) ** 2 / train.length;
  // A constant feature carries no information; dividing by 1 keeps it at 0 instead of NaN.
  const scale = Array.from(variance, (v) => (v > 0 ? 1 / Math.sqrt(v) : 1));
  const apply = (ds: Dataset): Dataset => {
    const x = new Float32Array(ds.x.length);
    for (let i = 0; i < x.length; i++) x[i] = (ds.x[i]! - mean[i % featureSize]!) * scale[i % featureSize]!;
    return makeDataset(ds.name, x, ds.y, ds.featureShape, ds.numClasses);
  };
  return { train: apply(train), test: apply(test) };
}
