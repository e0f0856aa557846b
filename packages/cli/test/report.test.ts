// `shoal report DIR`, run as users run it, on hand-made run and sweep folders (the report of real
// simulations is checked in Chromium by test/browser/report.test.ts): it writes report.html and
// names it, and a folder that is neither, or no folder, is one `shoal: report: …` line, exit 2.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shoal, tempFolder } from './run-cli.js';

const tmp = tempFolder('shoal-report-cli-');
afterAll(() => tmp.remove());

const ROUND = { round: 1, status: 'committed', accuracy: 0.75, loss: 0.6, bytesUp: 1200, bytesDown: 2400, selected: 3, participants: 3, dropouts: 0, modelVersion: 'v:1', durationMs: 12 };

function runFolder(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'metrics.jsonl'), `${JSON.stringify(ROUND)}\n${JSON.stringify({ ...ROUND, round: 2, accuracy: 0.8 })}\n`);
}

describe('shoal report', () => {
  it('rebuilds a run folder\'s report.html, and a sweep folder\'s', async () => {
    const run = join(tmp.path, 'run');
    runFolder(run);
    const result = await shoal(['report', run]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`run report: ${join(run, 'report.html')}\n`);
    const html = readFileSync(join(run, 'report.html'), 'utf8');
    expect(html).toContain('(in progress)'); // no summary.json
    expect(html).not.toMatch(/<script|https?:/i);

    const sweep = join(tmp.path, 'sweep');
    runFolder(join(sweep, 'lr-0.1'));
    writeFileSync(join(sweep, 'summary.csv'), 'run,lr,seed,final_accuracy,best_accuracy,rounds_to_target,final_epsilon,committed_rounds,wall_time_s\r\nlr-0.1,0.1,1,0.8,0.8,,,2,1.5\r\n');
    const swept = await shoal(['report', sweep]);
    expect(swept.stderr).toBe('');
    expect(swept.stdout).toBe(`sweep report: ${join(sweep, 'report.html')}\n`);
    expect(readFileSync(join(sweep, 'report.html'), 'utf8')).toContain('<h1>Sweep sweep</h1>');
  });

  it.concurrent.each([
    ['a folder that is neither', (empty: string) => [empty], (empty: string) => `shoal: report: ${empty} is neither a run folder (no metrics.jsonl or summary.json) nor a sweep folder (no summary.csv)\n`],
    ['no such folder', (empty: string) => [join(empty, 'nope')], (empty: string) => `shoal: report: ${join(empty, 'nope')}: no such folder; give a run folder (with metrics.jsonl or summary.json) or a sweep folder (with summary.csv)\n`],
    ['no folder', () => [], () => 'shoal: report: expects exactly one folder: shoal report DIR, a run folder or a sweep folder (shoal report --help)\n'],
  ])('%s: exit 2 with one shoal: report: line', async (label, args, message) => {
    const empty = join(tmp.path, `empty-${label.replace(/\W+/g, '-')}`);
    mkdirSync(empty);
    const result = await shoal(['report', ...args(empty)]);
    expect(result.stderr).toBe(message(empty));
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
  });

  it('--help prints the usage', async () => {
    const result = await shoal(['report', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: shoal report DIR\n/);
  });
});
