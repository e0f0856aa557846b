/**
 * Shakespeare next-character prediction from the tiny-Shakespeare text, partitioned naturally by
 * speaker (as LEAF's Shakespeare is by role). Pure: text and options in, arrays out; `loadDataset`
 * reads the file.
 *
 * - Speeches: the text is blocks separated by blank lines; a block's first line is `NAME:` and its
 *   other lines, joined by newlines, are what NAME says.
 * - A speaker's text: their speeches in file order, joined by newlines. The same name in two plays
 *   is one speaker: the file does not mark where one play ends.
 * - Vocabulary: the sorted distinct characters (UTF-16 code units) of the whole text, names
 *   included; a character's id is its position there (65 ids for tiny Shakespeare).
 * - Examples: a window of `sequenceLength` character ids (stored as floats, the datasets' format)
 *   and, as label, the id of the character that follows it. Windows start every `stride`
 *   characters of a speaker's text; a speaker with more than `maxWindowsPerSpeaker` windows gets the
 *   smallest longer stride that keeps them under the cap, so memory stays bounded and the windows
 *   still cover all their text.
 * - Split, per speaker and by position (LEAF's way): the first ⌈trainFraction · windows⌉ of a
 *   speaker's windows train, the rest test, so every speaker with a window has a train example and
 *   the test split pools every speaker's held-out end of text. The test split is shuffled (seeded)
 *   so that its first examples (`simulation.testExamples`) sample every speaker.
 */
import { ShoalError, createSeededRandom, shuffled } from '@shoal/protocol';
import type { Dataset, TrainTest } from './datasets.js';

/** One speech: who speaks, and what they say (its lines joined by newlines). */
export interface Speech {
  readonly speaker: string;
  readonly text: string;
}

export interface ShakespeareOptions {
  /** Characters per input window. Default 40 (LEAF uses 80; 40 trains twice as fast on the WASM backend). */
  readonly sequenceLength?: number;
  /** Characters between the starts of consecutive windows. Default 4. */
  readonly stride?: number;
  /** Most windows taken from one speaker (before the split). Default 2,000. */
  readonly maxWindowsPerSpeaker?: number;
  /** Share of each speaker's windows, the first ones, that train. In (0, 1). Default 0.8. */
  readonly trainFraction?: number;
  /** Seeds the order of the pooled test split. Default 0. */
  readonly seed?: number;
}

export const SHAKESPEARE_DEFAULTS = { sequenceLength: 40, stride: 4, maxWindowsPerSpeaker: 2_000, trainFraction: 0.8, seed: 0 } as const;

/** A speaker with at least one window: their name and which examples are theirs. */
export interface Speaker {
  readonly name: string;
  /** Characters in their text: how much they say, before the window cap. */
  readonly characters: number;
  /** Indices into `train` of this speaker's windows, in text order. Never empty. */
  readonly train: Int32Array;
  /** Indices into `test` of this speaker's held-out windows. */
  readonly test: Int32Array;
}

export interface ShakespeareData extends TrainTest {
  /** Speakers with at least one window, in order of their first speech: the natural partition. */
  readonly speakers: readonly Speaker[];
  /** The characters whose ids the examples hold: id i is `vocabulary[i]`. */
  readonly vocabulary: string;
}

/**
 * Splits the text into speeches: blocks separated by one or more blank lines (LF or CRLF), each a
 * `NAME:` line and then the speech. A block with no speech lines is a speech of "".
 * @throws ShoalError INVALID_DATA naming the line of a block whose first line is not `NAME:`.
 */
export function parseSpeeches(text: string, source = 'Shakespeare text'): Speech[] {
  const lines = text.split(/\r?\n/);
  const speeches: Speech[] = [];
  let block: string[] = [];
  let blockStart = 0;
  const endBlock = (): void => {
    if (block.length === 0) return;
    const [header, ...speech] = block as [string, ...string[]];
    const name = header.endsWith(':') ? header.slice(0, -1).trim() : '';
    if (name === '') {
      throw new ShoalError('INVALID_DATA', `${source}: line ${blockStart + 1} should name a speaker as "NAME:" (a speech follows each blank line), got ${JSON.stringify(header.slice(0, 60))}`);
    }
    speeches.push({ speaker: name, text: speech.join('\n') });
    block = [];
  };
  lines.forEach((line, index) => {
    if (line.trim() === '') return endBlock();
    if (block.length === 0) blockStart = index;
    block.push(line);
  });
  endBlock();
  return speeches;
}

/** The sorted distinct UTF-16 code units of `text`, as a string: character id i is its i-th character. */
export function vocabularyOf(text: string): string {
  const units = new Set<number>();
  for (let i = 0; i < text.length; i++) units.add(text.charCodeAt(i));
  return String.fromCharCode(...[...units].sort((a, b) => a - b));
}

/**
 * The windows of a text of `length` characters: how many, and the stride between their starts.
 * A window at p covers [p, p + sequenceLength) and its label is the character at p + sequenceLength.
 */
export function windowsOf(length: number, sequenceLength: number, stride: number, maxWindows: number): { count: number; stride: number } {
  const lastStart = length - sequenceLength - 1; // the last start that still has a label
  if (lastStart < 0) return { count: 0, stride };
  const count = Math.floor(lastStart / stride) + 1;
  if (count <= maxWindows) return { count, stride };
  // The smallest stride s with ⌊lastStart / s⌋ + 1 ≤ maxWindows.
  const capped = Math.floor(lastStart / maxWindows) + 1;
  return { count: Math.floor(lastStart / capped) + 1, stride: capped };
}

/**
 * Next-character examples of the whole text, split per speaker (see the module comment).
 * @throws ShoalError INVALID_DATA when the text has no speeches or no speaker has a window;
 *   INVALID_CONFIG for an option out of range.
 */
export function shakespeareExamples(text: string, options: ShakespeareOptions = {}, source = 'Shakespeare text'): ShakespeareData {
  const { sequenceLength, stride, maxWindowsPerSpeaker, trainFraction, seed } = { ...SHAKESPEARE_DEFAULTS, ...options };
  const check = (ok: boolean, what: string): void => {
    if (!ok) throw new ShoalError('INVALID_CONFIG', `shakespeare: ${what}`);
  };
  check(Number.isInteger(sequenceLength) && sequenceLength >= 1, `sequenceLength must be a positive integer, got ${sequenceLength}`);
  check(Number.isInteger(stride) && stride >= 1, `stride must be a positive integer, got ${stride}`);
  check(Number.isInteger(maxWindowsPerSpeaker) && maxWindowsPerSpeaker >= 1, `maxWindowsPerSpeaker must be a positive integer, got ${maxWindowsPerSpeaker}`);
  check(trainFraction > 0 && trainFraction < 1, `trainFraction must be in (0, 1), got ${trainFraction}`);

  const speeches = parseSpeeches(text, source);
  if (speeches.length === 0) throw new ShoalError('INVALID_DATA', `${source}: no speeches (blocks of a "NAME:" line and the speech)`);
  const vocabulary = vocabularyOf(text);
  const ids = new Map<number, number>();
  for (let id = 0; id < vocabulary.length; id++) ids.set(vocabulary.charCodeAt(id), id);

  // Each speaker's text, in order of their first speech.
  const bySpeaker = new Map<string, string[]>();
  for (const { speaker, text: speech } of speeches) {
    const own = bySpeaker.get(speaker);
    if (own === undefined) bySpeaker.set(speaker, [speech]);
    else own.push(speech);
  }
  const texts = [...bySpeaker].map(([name, own]) => ({ name, text: own.join('\n') }));
  const plans = texts.map(({ name, text: own }) => ({ name, text: own, ...windowsOf(own.length, sequenceLength, stride, maxWindowsPerSpeaker) })).filter((plan) => plan.count > 0);
  if (plans.length === 0) throw new ShoalError('INVALID_DATA', `${source}: no speaker says more than ${sequenceLength} characters, so there is no window of ${sequenceLength} and its next character`);

  const trainCounts = plans.map((plan) => Math.ceil(trainFraction * plan.count));
  const trainTotal = trainCounts.reduce((sum, count) => sum + count, 0);
  const testTotal = plans.reduce((sum, plan) => sum + plan.count, 0) - trainTotal;
  const train = emptyDataset(trainTotal, sequenceLength, vocabulary.length);
  const testInOrder = emptyDataset(testTotal, sequenceLength, vocabulary.length);
  const speakerTrain: Int32Array[] = [];
  const speakerTest: Int32Array[] = [];
  let trainRow = 0;
  let testRow = 0;
  plans.forEach((plan, k) => {
    const codes = Int32Array.from({ length: plan.text.length }, (_, i) => ids.get(plan.text.charCodeAt(i))!);
    speakerTrain.push(Int32Array.from({ length: trainCounts[k]! }, (_, i) => trainRow + i));
    speakerTest.push(Int32Array.from({ length: plan.count - trainCounts[k]! }, (_, i) => testRow + i));
    for (let w = 0; w < plan.count; w++) {
      const start = w * plan.stride;
      const [target, row] = w < trainCounts[k]! ? [train, trainRow++] : [testInOrder, testRow++];
      for (let i = 0; i < sequenceLength; i++) target.x[row * sequenceLength + i] = codes[start + i]!;
      target.y[row] = codes[start + sequenceLength]!;
    }
  });

  // Shuffle the pooled test split; speakers' test indices follow their examples.
  const order = shuffled(Array.from({ length: testTotal }, (_, i) => i), createSeededRandom(seed));
  const test = emptyDataset(testTotal, sequenceLength, vocabulary.length);
  const newIndex = new Int32Array(testTotal);
  order.forEach((from, to) => {
    test.x.set(testInOrder.x.subarray(from * sequenceLength, (from + 1) * sequenceLength), to * sequenceLength);
    test.y[to] = testInOrder.y[from]!;
    newIndex[from] = to;
  });
  const speakers = plans.map((plan, k) => ({ name: plan.name, characters: plan.text.length, train: speakerTrain[k]!, test: speakerTest[k]!.map((index) => newIndex[index]!) }));
  return { train, test, speakers, vocabulary };
}

function emptyDataset(length: number, sequenceLength: number, vocabularySize: number): Dataset {
  return { name: 'shakespeare', x: new Float32Array(length * sequenceLength), y: new Int32Array(length), featureShape: [sequenceLength], numClasses: vocabularySize, length };
}

/**
 * The `count` speakers who say the most (characters of text; ties: the one who speaks first), in
 * that order: the clients of the natural partition when there are fewer clients than speakers.
 * Ranked by text rather than by windows, which the cap makes equal among the largest speakers.
 * @throws ShoalError INVALID_CONFIG when count is not an integer in 1..speakers.length.
 */
export function largestSpeakers(speakers: readonly Speaker[], count: number): Speaker[] {
  if (!Number.isInteger(count) || count < 1 || count > speakers.length) {
    throw new ShoalError(
      'INVALID_CONFIG',
      `partition natural: shakespeare has ${speakers.length} speakers with at least one example, one client each, so simulation.numClients must be an integer in 1..${speakers.length}, got ${count}`,
    );
  }
  return speakers
    .map((speaker, position) => ({ speaker, position }))
    .sort((a, b) => b.speaker.characters - a.speaker.characters || a.position - b.position)
    .slice(0, count)
    .map(({ speaker }) => speaker);
}
