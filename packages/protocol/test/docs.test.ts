import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, PROTOCOL_VERSION, maxClientPayloadBytes } from '../src/index.js';
import type { ErrorCode, MessageType } from '../src/index.js';

/** The docs are written by hand; these checks stop them drifting from the code. */
const read = (name: string) => readFileSync(fileURLToPath(new URL(`../../../docs/${name}`, import.meta.url)), 'utf8');
const errorsDoc = read('errors.md');
const protocolDoc = read('protocol.md');

// Every message type, checked against the union at compile time: adding a type to messages.ts
// without listing it here fails `tsc`, and listing it here without documenting it fails below.
const MESSAGE_TYPES = [
  'hello', 'update', 'evaluation', 'decline', 'advertise', 'shares', 'masked', 'confirm', 'reveal',
  'welcome', 'train', 'evaluate', 'result', 'keys', 'inbox', 'survivors', 'unmask',
  'subject-access', 'forget', 'subject-data', 'forgotten', 'pace',
] as const satisfies readonly MessageType[];
const everyTypeListed: Exclude<MessageType, (typeof MESSAGE_TYPES)[number]> extends never ? true : false = true;

describe('docs/errors.md', () => {
  const rows = errorsDoc.split('\n').filter((line) => line.startsWith('| `'));

  it.each(Object.keys(ERROR_CODES) as ErrorCode[])('has a table row for %s with its close code', (code) => {
    const row = rows.find((line) => line.startsWith(`| \`${code}\` |`));
    expect(row, `docs/errors.md has no row for ${code}`).toBeDefined();
    const closeCode = ERROR_CODES[code].closeCode;
    const cells = row!.split('|').map((cell) => cell.trim());
    expect(cells[2]).toMatch(closeCode === undefined ? /^none/ : new RegExp(`^${closeCode}$`));
    expect(cells[3]!.length, 'meaning').toBeGreaterThan(10);
    expect(cells[4]!.length, 'what to do').toBeGreaterThan(5);
  });

  it('documents no code that does not exist', () => {
    const documented = rows.map((line) => /^\| `([A-Z_]+)`/.exec(line)?.[1]);
    expect(documented.sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });
});

describe('docs/protocol.md', () => {
  it('lists every message type under its own heading', () => {
    expect(everyTypeListed).toBe(true);
    for (const type of MESSAGE_TYPES) expect(protocolDoc, `no heading for ${type}`).toContain(`#### \`${type}\``);
  });

  it('gives every "`CODE` (4xxx)" mention the close code of the table', () => {
    const mentions = [...protocolDoc.matchAll(/`([A-Z_]+)` \((\d{4})\)/g)];
    expect(mentions.length).toBeGreaterThan(5);
    for (const [text, code, closeCode] of mentions) {
      expect(ERROR_CODES[code as ErrorCode]?.closeCode, text).toBe(Number(closeCode));
    }
  });

  it('states the current protocol version and the payload allowance the code uses', () => {
    expect(protocolDoc).toContain(`Version ${PROTOCOL_VERSION} `);
    expect(protocolDoc).toContain(`4 · numParams + ${maxClientPayloadBytes(0)} bytes`);
  });
});
