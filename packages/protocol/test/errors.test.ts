import { describe, expect, it } from 'vitest';
import { ERROR_CODES, ShoalError, closeCodeOf, errorCodeOfClose } from '../src/index.js';
import type { ErrorCode } from '../src/index.js';

const codes = Object.keys(ERROR_CODES) as ErrorCode[];
const closing = codes.filter((code) => ERROR_CODES[code].closeCode !== undefined);

describe('the error table', () => {
  it('gives every connection-closing code a unique close code in 4000–4999', () => {
    const closeCodes = closing.map(closeCodeOf);
    expect(new Set(closeCodes).size).toBe(closeCodes.length);
    for (const closeCode of closeCodes) {
      expect(Number.isInteger(closeCode)).toBe(true);
      expect(closeCode).toBeGreaterThanOrEqual(4000);
      expect(closeCode).toBeLessThanOrEqual(4999);
    }
    expect(closing).toContain('INVALID_MESSAGE');
  });

  it('maps close codes and error codes both ways', () => {
    for (const code of closing) expect(errorCodeOfClose(closeCodeOf(code))).toBe(code);
    for (let closeCode = 4000; closeCode < 5000; closeCode++) {
      const code = errorCodeOfClose(closeCode);
      if (code !== undefined) expect(closeCodeOf(code)).toBe(closeCode);
    }
  });

  it('knows no code for standard or unassigned close codes', () => {
    for (const closeCode of [1000, 1006, 1009, 3000, 4999, 0]) expect(errorCodeOfClose(closeCode)).toBeUndefined();
  });

  it('refuses a close code for local-only errors', () => {
    expect(() => closeCodeOf('UNAUTHORIZED')).toThrow(/does not close a connection/);
  });

  it('gives every code a one-line summary', () => {
    for (const code of codes) expect(ERROR_CODES[code].summary.length).toBeGreaterThan(10);
  });
});

describe('ShoalError', () => {
  it('carries its code, message and cause, and is an Error', () => {
    const cause = new Error('socket reset');
    const error = new ShoalError('CONNECTION_FAILED', 'could not reach ws://x', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('ShoalError');
    expect(error.code).toBe('CONNECTION_FAILED');
    expect(error.message).toBe('could not reach ws://x');
    expect(error.cause).toBe(cause);
  });
});

describe('closeReason', () => {
  it('keeps short reasons and cuts long ones to 123 UTF-8 bytes at a character boundary', async () => {
    const { closeReason, MAX_CLOSE_REASON_BYTES } = await import('../src/errors.js');
    expect(closeReason('short')).toBe('short');
    const long = '日本語'.repeat(40); // 3 bytes per character
    const cut = closeReason(long);
    expect(new TextEncoder().encode(cut).length).toBeLessThanOrEqual(MAX_CLOSE_REASON_BYTES);
    expect(cut).toBe(long.slice(0, 41)); // 41 × 3 = 123 bytes
    const ascii = closeReason(`${'x'.repeat(122)}é`); // é is 2 bytes: it would end at byte 124
    expect(ascii).toBe('x'.repeat(122));
  });
});
