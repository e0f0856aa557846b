// `shoal serve` logs pino JSON lines on stderr when stderr is not a terminal (and readable lines
// with --log-format pretty): every record is one line of JSON with a level, a time and a fixed
// message; a peer's text travels in a field, escaped, and no field outside the coordinator's
// closed set (LogFields) ever appears.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatLogLine } from '@shoal/coordinator';
import { startScriptedPeer, startServe, WsPeer, type ServeProcess } from '@shoal/testkit';
import { cliLogger, logSettings } from '../src/log.js';

const TOKEN = 'serve-log-token';
const FORGED = '{"level":30,"msg":"round 9 committed"}';
const FIELD_KEYS = new Set(['round', 'stage', 'clientId', 'code', 'reason', 'remote', 'err']);

let serve: ServeProcess | undefined;
let workDir: string | undefined;
afterEach(async () => {
  await serve?.kill();
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

describe('shoal serve logs', () => {
  it('writes one JSON record per line on stderr, with peer text escaped in a field', async () => {
    workDir = await mkdtemp(join(tmpdir(), 'shoal-serve-log-'));
    const configPath = join(workDir, 'serve.json');
    await writeFile(configPath, JSON.stringify({ rounds: 1, minClients: 1, clientsPerRound: 3, model: { builtin: 'logreg', inputShape: [4], numClasses: 3 }, server: { tokens: [TOKEN] } }));
    serve = startServe(configPath);
    const url = await serve.url;
    const [decliner, other] = await Promise.all([WsPeer.connect(url, { token: TOKEN }), WsPeer.connect(url, { token: TOKEN })]);
    await Promise.all([decliner.hello(), other.hello()]);
    const honest = await startScriptedPeer(url, { token: TOKEN, numExamples: 10, delta: () => new Float32Array(15).fill(0.01) });
    const train = await decliner.next('train');
    other.ws.close(1000, `bye\n${FORGED}`);
    await other.closed;
    decliner.send({ type: 'decline', round: train.round, reason: `busy\n${FORGED}` });
    await serve.exit; // the round commits the honest update, and the one-round run ends
    await Promise.all([decliner.close(), honest.peer.close()]);

    const lines = serve.stderr().trimEnd().split('\n');
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const record of records) {
      expect(typeof record['level']).toBe('number');
      expect(typeof record['time']).toBe('string');
      expect(String(record['msg'])).not.toContain(FORGED);
      for (const key of Object.keys(record)) if (!['level', 'time', 'msg'].includes(key)) expect(FIELD_KEYS.has(key), `field ${key}`).toBe(true);
    }
    expect(records.filter((r) => r['msg'] === 'client joined').map((r) => r['clientId'])).toHaveLength(3);
    expect(records.find((r) => r['msg'] === 'client declined the round')).toMatchObject({ round: 1, reason: `busy\n${FORGED}` });
    expect(records.find((r) => r['msg'] === 'client disconnected')).toMatchObject({ code: 1000, reason: `bye\n${FORGED}` });
  });

  it('pretty: the same records as formatLogLine lines after an ISO time, and below the level nothing', () => {
    const written: string[] = [];
    const logger = cliLogger({ level: 'info', format: 'pretty' }, { write: (text: string) => written.push(text) });
    logger.debug({ round: 1 }, 'hidden');
    logger.warn({ round: 2, reason: `x\n${FORGED}` }, 'round aborted');
    expect(written).toHaveLength(1);
    const [time, ...rest] = written[0]!.trimEnd().split(' ');
    expect(Number.isNaN(Date.parse(time!))).toBe(false);
    expect(rest.join(' ')).toBe(formatLogLine('warn', 'round aborted', { round: 2, reason: `x\n${FORGED}` }));
    expect(written[0]!.trimEnd()).not.toContain('\n');
  });

  it('reads --log-level and --log-format, naming a bad value', () => {
    expect(logSettings(undefined, undefined, true)).toEqual({ level: 'info', format: 'pretty' });
    expect(logSettings('warn', undefined, false)).toEqual({ level: 'warn', format: 'json' });
    expect(() => logSettings('loud', undefined, false)).toThrow(/--log-level/);
    expect(() => logSettings(undefined, 'xml', false)).toThrow(/--log-format/);
  });
});
