import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { DATASET_SHAPES } from '@shoal/datasets';
import { createSeededRandom, ShoalError } from '@shoal/protocol';
import { buildModel, initBackend, writeWeights } from '@shoal/client';
import { builtinInitialModel } from '@shoal/coordinator';
import { expectShoalError } from '@shoal/testkit';
import { describe, expect, it } from 'vitest';
import { clientData } from '../src/client-data.js';
import { parseConfig } from '../src/config.js';
import { loadDataset, loadShakespeare } from '../src/datasets.js';
import { largestSpeakers, parseSpeeches, shakespeareExamples, vocabularyOf, windowsOf } from '../src/shakespeare.js';

const PLAY = ['ANNE:', 'abcdefgh', 'ij', '', 'BOB:', 'xyz', '', '', 'ANNE:', 'klm', ''].join('\n');

describe('parseSpeeches', () => {
  it('reads a NAME: line and the speech up to a blank line, LF or CRLF', () => {
    const expected = [
      { speaker: 'ANNE', text: 'abcdefgh\nij' },
      { speaker: 'BOB', text: 'xyz' },
      { speaker: 'ANNE', text: 'klm' },
    ];
    expect(parseSpeeches(PLAY)).toEqual(expected);
    expect(parseSpeeches(PLAY.replaceAll('\n', '\r\n'))).toEqual(expected);
    expect(parseSpeeches('First Citizen:\nSpeak.')).toEqual([{ speaker: 'First Citizen', text: 'Speak.' }]);
  });

  it('names the line of a block that does not start with a speaker', () => {
    expectShoalError(() => parseSpeeches('ANNE:\nhi\n\nno colon here\nmore', 'play.txt'), 'INVALID_DATA', /play\.txt: line 4 should name a speaker as "NAME:".*"no colon here"/);
    expectShoalError(() => parseSpeeches(':\nhi'), 'INVALID_DATA', /line 1 should name a speaker/);
  });

  it('(property) round-trips any speeches written in the format', () => {
    const line = fc.stringMatching(/^[a-z ,.]*[a-z.]$/);
    const speech = fc.record({ speaker: fc.stringMatching(/^[A-Z][A-Za-z ]{0,8}[A-Z]$/), lines: fc.array(line, { minLength: 1, maxLength: 4 }) });
    fc.assert(
      fc.property(fc.array(speech, { maxLength: 6 }), (speeches) => {
        const text = speeches.map(({ speaker, lines }) => `${speaker}:\n${lines.join('\n')}\n`).join('\n');
        expect(parseSpeeches(text)).toEqual(speeches.map(({ speaker, lines }) => ({ speaker, text: lines.join('\n') })));
      }),
    );
  });
});

describe('vocabularyOf and windowsOf', () => {
  it('the vocabulary is the sorted distinct characters', () => {
    expect(vocabularyOf('banana\n')).toBe('\nabn');
    expect(vocabularyOf('')).toBe('');
  });

  it('takes windows with a label after them, every stride characters, widening the stride past the cap', () => {
    expect(windowsOf(10, 3, 1, 100)).toEqual({ count: 7, stride: 1 }); // starts 0..6, labels at 3..9
    expect(windowsOf(10, 3, 2, 100)).toEqual({ count: 4, stride: 2 }); // 0, 2, 4, 6
    expect(windowsOf(10, 3, 1, 3)).toEqual({ count: 3, stride: 3 }); // 0, 3, 6
    expect(windowsOf(3, 3, 1, 100)).toEqual({ count: 0, stride: 1 }); // no character after the window
  });

  it('(property) never exceeds the cap, and every window and its label fit in the text', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 500 }), (length, sequenceLength, stride, cap) => {
        const windows = windowsOf(length, sequenceLength, stride, cap);
        expect(windows.count).toBeLessThanOrEqual(cap);
        expect(windows.stride).toBeGreaterThanOrEqual(stride);
        if (windows.count > 0) expect((windows.count - 1) * windows.stride + sequenceLength).toBeLessThan(length);
        // Widened only past the cap, and then as little as keeps under it.
        if (windowsOf(length, sequenceLength, stride, Number.MAX_SAFE_INTEGER).count <= cap) expect(windows.stride).toBe(stride);
        else expect(windowsOf(length, sequenceLength, windows.stride - 1, Number.MAX_SAFE_INTEGER).count).toBeGreaterThan(cap);
      }),
    );
  });
});

describe('shakespeareExamples', () => {
  // ANNE says "abcdefgh\nij\nklm" (15 characters), BOB says "xyz" (3).
  const data = shakespeareExamples(PLAY, { sequenceLength: 3, stride: 2, trainFraction: 0.8 });
  const idOf = (char: string): number => data.vocabulary.indexOf(char);
  const window = (x: Float32Array, row: number): string => Array.from(x.subarray(row * 3, row * 3 + 3), (id) => data.vocabulary[id]).join('');

  it('takes each speaker\'s windows in text order and splits them by position, first 80 % to train', () => {
    // ANNE: starts 0, 2, …, 10 → 6 windows, ⌈4.8⌉ = 5 train. BOB: "xyz" has no 4th character.
    expect(data.speakers.map((speaker) => speaker.name)).toEqual(['ANNE']);
    expect(data.train.length).toBe(5);
    expect(data.test.length).toBe(1);
    expect(Array.from({ length: 5 }, (_, row) => window(data.train.x, row))).toEqual(['abc', 'cde', 'efg', 'gh\n', '\nij']);
    expect(Array.from(data.train.y, (id) => data.vocabulary[id])).toEqual(['d', 'f', 'h', 'i', '\n']);
    expect(window(data.test.x, 0)).toBe('j\nk');
    expect(data.test.y[0]).toBe(idOf('l'));
    expect(data.train.featureShape).toEqual([3]);
    expect(data.train.numClasses).toBe(data.vocabulary.length);
    expect(data.vocabulary).toBe(vocabularyOf(PLAY)); // names and colons included
  });

  it('gives every speaker its own train indices, and shuffles the pooled test split by seed', () => {
    const text = ['A:', 'a'.repeat(50) + 'b'.repeat(50), '', 'B:', 'c'.repeat(60), '', 'C:', 'de'.repeat(30)].join('\n');
    const pooled = shakespeareExamples(text, { sequenceLength: 5, stride: 1, seed: 1 });
    const covered = pooled.speakers.flatMap((speaker) => [...speaker.train]).sort((a, b) => a - b);
    expect(covered).toEqual(Array.from({ length: pooled.train.length }, (_, i) => i));
    const tested = pooled.speakers.flatMap((speaker) => [...speaker.test]).sort((a, b) => a - b);
    expect(tested).toEqual(Array.from({ length: pooled.test.length }, (_, i) => i));
    // A speaker's test indices point at its own held-out windows after the shuffle.
    for (const index of pooled.speakers[1]!.test) expect(pooled.vocabulary[pooled.test.y[index]!]).toBe('c');
    const again = shakespeareExamples(text, { sequenceLength: 5, stride: 1, seed: 1 });
    expect(again.test.y).toEqual(pooled.test.y);
    expect(shakespeareExamples(text, { sequenceLength: 5, stride: 1, seed: 2 }).test.y).not.toEqual(pooled.test.y);
  });

  it('refuses text with no speaker long enough, and bad options', () => {
    expectShoalError(() => shakespeareExamples('A:\nhi', { sequenceLength: 5 }), 'INVALID_DATA', /no speaker says more than 5 characters/);
    expectShoalError(() => shakespeareExamples(''), 'INVALID_DATA', /no speeches/);
    expectShoalError(() => shakespeareExamples(PLAY, { stride: 0 }), 'INVALID_CONFIG', /stride must be a positive integer, got 0/);
    expectShoalError(() => shakespeareExamples(PLAY, { trainFraction: 1 }), 'INVALID_CONFIG', /trainFraction must be in \(0, 1\)/);
  });

  it('largestSpeakers picks who says the most, ties by who speaks first, and names the speaker count when asked for more', () => {
    const speakers = [30, 50, 50, 10].map((characters, k) => ({ name: `S${k}`, characters, train: new Int32Array(1), test: new Int32Array(0) }));
    expect(largestSpeakers(speakers, 3).map((speaker) => speaker.name)).toEqual(['S1', 'S2', 'S0']);
    expect(() => largestSpeakers(speakers, 5)).toThrow(
      new ShoalError('INVALID_CONFIG', 'partition natural: shakespeare has 4 speakers with at least one example, one client each, so simulation.numClients must be an integer in 1..4, got 5'),
    );
  });
});

describe('the bundled shakespeare dataset', () => {
  const data = loadShakespeare();

  it('has the shape DATASET_SHAPES promises: windows of 40 ids over a vocabulary of 65', () => {
    expect(data.vocabulary).toBe("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
    expect(data.train.featureShape).toEqual(DATASET_SHAPES.shakespeare.featureShape);
    expect(data.train.numClasses).toBe(DATASET_SHAPES.shakespeare.numClasses);
    // 309 speaker names; 281 say more than 40 characters.
    expect(data.speakers).toHaveLength(281);
    expect(data.train.length).toBe(data.speakers.reduce((sum, speaker) => sum + speaker.train.length, 0));
    expect(Math.max(...data.speakers.map((speaker) => speaker.train.length + speaker.test.length))).toBeLessThanOrEqual(2_000);
    expect(largestSpeakers(data.speakers, 3).map((speaker) => speaker.name)).toEqual(['GLOUCESTER', 'DUKE VINCENTIO', 'KING RICHARD II']);
    const { train, test } = loadDataset('shakespeare');
    expect(train.y).toEqual(data.train.y);
    expect(test.length).toBe(data.test.length);
  });

  it('natural partition: the numClients speakers with the most text, each keeping its own windows', () => {
    const config = parseConfig({ model: 'char-gru', simulation: { dataset: 'shakespeare', numClients: 5, examplesPerClient: 100 } });
    const { partitions, partition } = clientData(config, createSeededRandom(0));
    expect(partition.kind).toBe('natural');
    expect(partition.owners).toEqual(largestSpeakers(data.speakers, 5).map((speaker) => speaker.name));
    expect(partition.sizes).toEqual([100, 100, 100, 100, 100]);
    expect(Array.from(partitions[0]!)).toEqual(Array.from(largestSpeakers(data.speakers, 1)[0]!.train.subarray(0, 100)));
    expect(partition.labelHistograms[0]).toHaveLength(65);

    const tooMany = parseConfig({ model: 'char-gru', simulation: { dataset: 'shakespeare', numClients: 300 } });
    expectShoalError(() => clientData(tooMany, createSeededRandom(0)), 'INVALID_CONFIG', /shakespeare has 281 speakers .* simulation.numClients must be an integer in 1\.\.281, got 300/);
  });

  it('iid partition: the pooled windows dealt evenly', () => {
    const config = parseConfig({ model: 'char-gru', simulation: { dataset: 'shakespeare', numClients: 300, partition: 'iid' } });
    const { partition } = clientData(config, createSeededRandom(0));
    expect(partition.kind).toBe('iid');
    expect(Math.max(...partition.sizes) - Math.min(...partition.sizes)).toBeLessThanOrEqual(1);
    expect(partition.unused).toBe(0);
  });

  it('goes with model char-gru only, and char-gru with it only', () => {
    expect(() => parseConfig({ model: 'logreg', simulation: { dataset: 'shakespeare' } })).toThrow(
      'simulation.dataset shakespeare holds windows of character ids, which model logreg would read as feature values: use model char-gru (or a saved model that embeds ids)',
    );
    expect(() => parseConfig({ model: 'char-gru', simulation: { dataset: 'digits' } })).toThrow(
      'model char-gru reads character ids, but simulation.dataset digits holds feature values: use simulation.dataset shakespeare, or another model',
    );
    expect(() => parseConfig({ model: { builtin: 'char-gru', inputShape: [40, 1] }, simulation: { dataset: 'shakespeare' } })).toThrow(
      'model.inputShape [40, 1] does not fit model char-gru: it needs a flat input shape [sequenceLength] of character ids',
    );
    expect(parseConfig({ model: { path: 'model.json' }, simulation: { dataset: 'shakespeare' } }).simulation.dataset).toBe('shakespeare');
  });
});

describe('char-gru on shakespeare', () => {
  it('the coordinator\'s initial weights fit the tfjs model, and a few SGD steps lower the loss on the batch they train on', async () => {
    await initBackend(); // WASM here: tfjs's CPU backend trains a GRU about 10× slower
    const data = loadShakespeare();
    const n = 64;
    const initial = builtinInitialModel('char-gru', [40], 65, 1);
    const model = await buildModel(initial.descriptor.topology);
    const before = tf.memory().numTensors;
    try {
      writeWeights(model, initial.descriptor.manifest, initial.weights);
      model.compile({ optimizer: tf.train.sgd(1), loss: 'sparseCategoricalCrossentropy' });
      const xs = tf.tensor(data.train.x.subarray(0, n * 40), [n, 40]);
      const ys = tf.tensor1d(data.train.y.subarray(0, n), 'float32');
      const loss = (): number => tf.tidy(() => (model.evaluate(xs, ys) as tf.Scalar).dataSync()[0]!);
      const start = loss();
      // Near uniform at first: ln 65 ≈ 4.17.
      expect(Math.abs(start - Math.log(65))).toBeLessThan(0.2);
      await model.fit(xs, ys, { batchSize: 16, epochs: 5, shuffle: false, verbose: 0 });
      const end = loss();
      expect(end).toBeLessThan(start - 0.3); // about 3.2 after 20 steps
      tf.dispose([xs, ys]);
    } finally {
      model.dispose();
    }
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
  }, 120_000);
});
