import fc from 'fast-check';
import { ShoalError } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { parseDigitsCsv, parseIdxImages, parseIdxLabels, parseIrisCsv } from '../src/index.js';

/** Big-endian uint32 header words followed by the body, as an IDX file is laid out. */
function idxBytes(headerWords: readonly number[], body: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(headerWords.length * 4 + body.length);
  const view = new DataView(bytes.buffer);
  headerWords.forEach((word, i) => view.setUint32(i * 4, word, false));
  bytes.set(body, headerWords.length * 4);
  return bytes;
}

/** Runs `fn`; it must either succeed or throw ShoalError INVALID_DATA — never another error type. */
function invalidDataOrResult<T>(fn: () => T): { error: ShoalError } | { result: T } {
  try {
    return { result: fn() };
  } catch (error) {
    expect(error).toBeInstanceOf(ShoalError);
    expect((error as ShoalError).code).toBe('INVALID_DATA');
    return { error: error as ShoalError };
  }
}

function expectInvalidData(fn: () => unknown, messagePattern?: RegExp): void {
  const outcome = invalidDataOrResult(fn);
  expect('error' in outcome, 'expected ShoalError INVALID_DATA, but parsing succeeded').toBe(true);
  if ('error' in outcome && messagePattern) expect(outcome.error.message).toMatch(messagePattern);
}

const imageFile = fc
  .record({ count: fc.integer({ min: 0, max: 12 }), rows: fc.integer({ min: 1, max: 9 }), cols: fc.integer({ min: 1, max: 9 }) })
  .chain(({ count, rows, cols }) => {
    const size = count * rows * cols;
    return fc.record({ count: fc.constant(count), rows: fc.constant(rows), cols: fc.constant(cols), pixels: fc.uint8Array({ minLength: size, maxLength: size }) });
  })
  .map((image) => ({ ...image, bytes: idxBytes([2051, image.count, image.rows, image.cols], image.pixels) }));

const labelFile = fc.uint8Array({ maxLength: 64 }).map((labels) => ({ labels, bytes: idxBytes([2049, labels.length], labels) }));

describe('IDX parsers', () => {
  it('round-trip random valid image files, also from a view at a non-zero offset', () => {
    fc.assert(
      fc.property(imageFile, fc.integer({ min: 0, max: 7 }), ({ count, rows, cols, pixels, bytes }, offset) => {
        const padded = new Uint8Array(offset + bytes.length);
        padded.set(bytes, offset);
        for (const input of [bytes, padded.subarray(offset)]) {
          const parsed = parseIdxImages(input);
          expect({ count: parsed.count, rows: parsed.rows, cols: parsed.cols }).toEqual({ count, rows, cols });
          expect(parsed.pixels).toEqual(pixels);
        }
      }),
    );
  });

  it('round-trip random valid label files, also from a view at a non-zero offset', () => {
    fc.assert(
      fc.property(labelFile, fc.integer({ min: 0, max: 7 }), ({ labels, bytes }, offset) => {
        const padded = new Uint8Array(offset + bytes.length);
        padded.set(bytes, offset);
        expect(parseIdxLabels(bytes)).toEqual(labels);
        expect(parseIdxLabels(padded.subarray(offset))).toEqual(labels);
      }),
    );
  });

  it('reject any truncation', () => {
    fc.assert(
      fc.property(imageFile, fc.nat(), ({ bytes }, cut) => {
        expectInvalidData(() => parseIdxImages(bytes.subarray(0, cut % bytes.length)), /truncated (header|body)/);
      }),
    );
    fc.assert(
      fc.property(labelFile, fc.nat(), ({ bytes }, cut) => {
        expectInvalidData(() => parseIdxLabels(bytes.subarray(0, cut % bytes.length)), /truncated (header|body)/);
      }),
    );
  });

  it('reject trailing bytes after the body', () => {
    fc.assert(
      fc.property(imageFile, fc.uint8Array({ minLength: 1, maxLength: 8 }), ({ bytes }, extra) => {
        expectInvalidData(() => parseIdxImages(Uint8Array.from([...bytes, ...extra])), /trailing bytes/);
      }),
    );
  });

  it('reject a wrong magic number, including the other IDX kind', () => {
    const otherMagic = fc.oneof(fc.constant(2049), fc.constant(2051), fc.integer({ min: 0, max: 0xffffffff }));
    fc.assert(
      fc.property(imageFile, otherMagic, ({ bytes }, magic) => {
        fc.pre(magic !== 2051);
        const changed = bytes.slice();
        new DataView(changed.buffer).setUint32(0, magic, false);
        expectInvalidData(() => parseIdxImages(changed), /bad magic number/);
      }),
    );
    fc.assert(
      fc.property(labelFile, otherMagic, ({ bytes }, magic) => {
        fc.pre(magic !== 2049);
        const changed = bytes.slice();
        new DataView(changed.buffer).setUint32(0, magic, false);
        expectInvalidData(() => parseIdxLabels(changed), /bad magic number/);
      }),
    );
  });

  it('reject huge claimed sizes at once, without allocating them', () => {
    const huge = idxBytes([2051, 0xffffffff, 0xffffffff, 0xffffffff], new Uint8Array(10));
    expectInvalidData(() => parseIdxImages(huge), /truncated body/);
    expectInvalidData(() => parseIdxLabels(idxBytes([2049, 0xffffffff], new Uint8Array(3))), /truncated body/);
    expectInvalidData(() => parseIdxImages(idxBytes([2051, 5, 0, 28], new Uint8Array(0))), /dimensions/);
  });

  it('on random bytes, either throw INVALID_DATA or parse a file whose header was valid', () => {
    const randomBytes = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Uint8Array.from([0, 0, 8, 3, ...b.subarray(4)])));
    fc.assert(
      fc.property(randomBytes, (bytes) => {
        const images = invalidDataOrResult(() => parseIdxImages(bytes));
        if ('result' in images) {
          const { count, rows, cols } = images.result;
          expect(16 + count * rows * cols).toBe(bytes.length);
        }
        const labels = invalidDataOrResult(() => parseIdxLabels(bytes));
        if ('result' in labels) expect(8 + labels.result.length).toBe(bytes.length);
      }),
      { numRuns: 500 },
    );
  });
});

const digitsRow = fc.tuple(fc.array(fc.integer({ min: 0, max: 16 }), { minLength: 64, maxLength: 64 }), fc.integer({ min: 0, max: 9 }));
const irisRow = fc.tuple(fc.array(fc.double({ min: -100, max: 100, noNaN: true }).map((v) => v + 0) /* no -0 */, { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 2 }));

/** Ways to spoil one CSV row: each must be rejected with that row's line number. */
function spoilRow(fields: string[], how: number, maxLabel: number): string {
  const copy = [...fields];
  switch (how) {
    case 0: return copy.slice(1).join(','); // a column short
    case 1: return [...copy, '0'].join(','); // a column extra
    case 2: copy[0] = 'abc'; return copy.join(','); // not a number
    case 3: copy[0] = ''; return copy.join(','); // empty field
    case 4: copy[copy.length - 1] = String(maxLabel + 1); return copy.join(','); // label out of range
    case 5: copy[copy.length - 1] = '-1'; return copy.join(',');
    default: copy[copy.length - 1] = '1.5'; return copy.join(',');
  }
}

describe('CSV parsers', () => {
  it('parseDigitsCsv round-trips valid rows', () => {
    fc.assert(
      fc.property(fc.array(digitsRow, { minLength: 1, maxLength: 20 }), fc.boolean(), (rows, crlf) => {
        const text = rows.map(([features, label]) => [...features, label].join(',')).join(crlf ? '\r\n' : '\n') + '\n';
        const { x, y } = parseDigitsCsv(text);
        expect(Array.from(y)).toEqual(rows.map(([, label]) => label));
        expect(Array.from(x)).toEqual(rows.flatMap(([features]) => features));
      }),
    );
  });

  it('parseDigitsCsv rejects a malformed row, naming its line', () => {
    fc.assert(
      fc.property(fc.array(digitsRow, { minLength: 1, maxLength: 10 }), fc.nat(), fc.integer({ min: 0, max: 6 }), (rows, at, how) => {
        const lines = rows.map(([features, label]) => [...features, label].join(','));
        const bad = at % lines.length;
        lines[bad] = spoilRow(lines[bad]!.split(','), how, 9);
        expectInvalidData(() => parseDigitsCsv(lines.join('\n'), 'digits.csv'), new RegExp(`^digits\\.csv: .*line ${bad + 1}\\b`));
      }),
    );
    expectInvalidData(() => parseDigitsCsv(`${Array(64).fill(17).join(',')},0`), /pixel value "17" at line 1 column 1/);
    expectInvalidData(() => parseDigitsCsv(''), /no rows/);
  });

  it('parseIrisCsv round-trips valid files', () => {
    fc.assert(
      fc.property(fc.array(irisRow, { minLength: 1, maxLength: 20 }), (rows) => {
        const text = [`${rows.length},4,setosa,versicolor,virginica`, ...rows.map(([features, label]) => [...features, label].join(','))].join('\n');
        const { x, y, classNames } = parseIrisCsv(text);
        expect(classNames).toEqual(['setosa', 'versicolor', 'virginica']);
        expect(Array.from(y)).toEqual(rows.map(([, label]) => label));
        expect(Array.from(x)).toEqual(rows.flatMap(([features]) => features.map((f) => Math.fround(f))));
      }),
    );
  });

  it('parseIrisCsv rejects a malformed row (naming its line), a bad header or a count mismatch', () => {
    fc.assert(
      fc.property(fc.array(irisRow, { minLength: 1, maxLength: 10 }), fc.nat(), fc.integer({ min: 0, max: 6 }), (rows, at, how) => {
        const lines = rows.map(([features, label]) => [...features, label].join(','));
        const bad = at % lines.length;
        lines[bad] = spoilRow(lines[bad]!.split(','), how, 2);
        const text = [`${rows.length},4,setosa,versicolor,virginica`, ...lines].join('\n');
        expectInvalidData(() => parseIrisCsv(text, 'iris.csv'), new RegExp(`^iris\\.csv: .*line ${bad + 2}\\b`));
      }),
    );
    expectInvalidData(() => parseIrisCsv('2,4,a,b\n1,2,3,4,0\n'), /count mismatch, header says 2 rows but 1 follow/);
    expectInvalidData(() => parseIrisCsv('x,4,a,b\n'), /row count "x" at line 1/);
    expectInvalidData(() => parseIrisCsv('1,4\n1,2,3,4,0\n'), /header at line 1/);
    expectInvalidData(() => parseIrisCsv('1,4,a,,c\n1,2,3,4,0\n'), /empty class name/);
    expectInvalidData(() => parseIrisCsv(''), /empty file/);
  });

  it('on random text, only ever throw INVALID_DATA', () => {
    const text = fc.oneof(fc.string({ maxLength: 200 }), fc.array(fc.constantFrom('1', '0', ',', '\n', '.', '-', 'e', ' ', '16', '3'), { maxLength: 200 }).map((parts) => parts.join('')));
    fc.assert(
      fc.property(text, (input) => {
        invalidDataOrResult(() => parseDigitsCsv(input));
        invalidDataOrResult(() => parseIrisCsv(input));
      }),
      { numRuns: 500 },
    );
  });
});
