// Pins every number docs/privacy.md (and README.md) quotes from the accountant or `shoal privacy`:
// each is recomputed here, with the real RdpAccountant or the real CLI, and compared with the text
// parsed out of the doc, so the doc cannot drift from the code. A quoted number with k decimals
// must equal the computed one rounded to k decimals. When this fails after a deliberate change to
// the accountant, re-run the commands and update the doc.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RdpAccountant, splitNoiseMultiplier } from '@shoal/dp';
import { REPO_ROOT, shoal } from './run-cli.js';

const PRIVACY_DOC = readFileSync(join(REPO_ROOT, 'docs', 'privacy.md'), 'utf8');
const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const DELTA = 1e-5;

/** ε after `rounds` rounds of the Poisson-subsampled Gaussian at rate q and multiplier z, δ = 10⁻⁵. */
function epsilonOf(q: number, z: number, rounds: number): number {
  const accountant = new RdpAccountant();
  accountant.compose(q, z, rounds);
  return accountant.epsilon(DELTA).epsilon;
}

/** `computed` written with as many decimals as `quoted` has. */
function asQuoted(computed: number, quoted: string): string {
  const decimals = quoted.includes('.') ? quoted.length - quoted.indexOf('.') - 1 : 0;
  return computed.toFixed(decimals);
}

/** The text of the section that starts with the heading `heading`, up to the next heading of any level ≤ its own. */
function section(doc: string, heading: string): string {
  const start = doc.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`no heading "${heading}"`);
  const level = heading.indexOf(' ');
  const rest = doc.slice(start + heading.length + 2);
  const end = rest.search(new RegExp(`\\n#{1,${level}} `));
  return end < 0 ? rest : rest.slice(0, end);
}

/** The rows of the first Markdown table in `text` whose header starts with `firstHeader`, as cells. */
function table(text: string, firstHeader: string): string[][] {
  const lines = text.split('\n');
  const header = lines.findIndex((line) => line.startsWith(`| ${firstHeader} |`));
  if (header < 0) throw new Error(`no table headed "${firstHeader}"`);
  const rows: string[][] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.slice(1, -1).split('|').map((cell) => cell.trim()));
  }
  return rows;
}

/** One `$ npx shoal privacy …` command of a console block and the lines it is shown printing. */
interface QuotedRun {
  readonly args: string[];
  readonly output: string;
}

function quotedRuns(text: string): QuotedRun[] {
  const runs: QuotedRun[] = [];
  for (const block of text.matchAll(/```console\n([\s\S]*?)```/g)) {
    for (const chunk of block[1]!.split(/^\$ /m).slice(1)) {
      const [command, ...output] = chunk.trimEnd().split('\n');
      const words = command!.trim().split(/\s+/);
      if (words[0] !== 'npx' || words[1] !== 'shoal' || words[2] !== 'privacy') continue;
      runs.push({ args: words.slice(2), output: output.join('\n') });
    }
  }
  return runs;
}

describe('docs/privacy.md: `shoal privacy` outputs', () => {
  const runs = quotedRuns(section(PRIVACY_DOC, '## `shoal privacy`: the cost of a schedule in advance'));

  it('quotes the runs this test replays', () => {
    expect(runs.length).toBeGreaterThanOrEqual(6);
  });

  it.each(runs.map((run) => [run.args.join(' '), run] as const))('%s prints what the doc shows', async (_, { args, output }) => {
    const result = await shoal(args, { timeoutMs: 40_000 });
    const printed = `${result.stdout}${result.stderr}`.trimEnd();
    expect(printed).toBe(output);
    expect(result.code).toBe(output.startsWith('shoal: ') ? 2 : 0);
  });
});

describe('docs/privacy.md: ε tables', () => {
  it('the ε grid for a few schedules (δ = 10⁻⁵) is the accountant’s', () => {
    const rows = table(section(PRIVACY_DOC, '## Trading accuracy against ε'), 'q');
    expect(rows.length).toBeGreaterThanOrEqual(5);
    for (const [q, z, ...cells] of rows) {
      const rounds = [20, 30, 50];
      expect(cells).toEqual(cells.map((cell, i) => asQuoted(epsilonOf(Number(q), Number(z), rounds[i]!), cell)));
    }
  });

  const example = section(PRIVACY_DOC, '## Example: `simulations/dp-secagg.json`');
  // The example config: Poisson sampling at q = 100/1000, z = 1.5 charged per committed round.
  const [q, z] = [0.1, 1.5];

  it('ε after each round of the example run counts its committed rounds only', () => {
    const rows = table(example, 'Round');
    expect(rows.length).toBe(37);
    let committed = 0;
    for (const row of rows) {
      if (row[1] === 'committed') committed++;
      const quoted = row.at(-1)!;
      expect(`round ${row[0]}: ${quoted}`).toBe(`round ${row[0]}: ${asQuoted(epsilonOf(q, z, committed), quoted)}`);
    }
    expect(committed).toBe(36);
  });

  it('the example run’s console output: ε spent after 36 rounds, and the 37th that would exceed 2.5', () => {
    const spent = /privacy spent: ε = ([\d.]+) at δ = 0\.00001/.exec(example);
    const stop = /another round would spend ε = ([\d.]+) > targetEpsilon 2\.5/.exec(example);
    expect(spent?.[1]).toBe(epsilonOf(q, z, 36).toPrecision(6));
    expect(stop?.[1]).toBe(asQuoted(epsilonOf(q, z, 37), stop![1]!));
    expect(epsilonOf(q, z, 37)).toBeGreaterThan(2.5);
  });

  it('the same schedule with other noise: ε of each run’s committed rounds', () => {
    const rows = table(example, 'Run');
    const withDp = rows.filter((row) => row[1] !== '—');
    expect(withDp.length).toBe(3);
    for (const [, noise, rounds, epsilon] of withDp) {
      expect(`z = ${noise}, ${rounds} rounds: ε ${epsilon}`).toBe(`z = ${noise}, ${rounds} rounds: ε ${asQuoted(epsilonOf(q, Number(noise), Number(rounds)), epsilon!)}`);
    }
  });
});

describe('docs/privacy.md: the coordinator’s view (zero-out adjacency)', () => {
  // z = 1.5 and σ_b = 5: the example config's noise multiplier and adaptive-clipping count noise.
  const zDelta = splitNoiseMultiplier(1.5, 5);
  const zPrime = (zDelta ** -2 + 5 ** -2) ** -0.5;

  it('z_Δ and z′ are what the split and the formula give', () => {
    expect(/z_Δ = ([\d.]+)\)/.exec(PRIVACY_DOC)?.[1]).toBe(zDelta.toFixed(3));
    // Both "(z′ = 1.4518)" and "z′ = (z_Δ⁻² + σ_b⁻²)^(−1/2) = 1.4518".
    const quotedPrime = [...PRIVACY_DOC.matchAll(/z′ = (?:\(z_Δ⁻² \+ σ_b⁻²\)\^\(−1\/2\) = )?(\d[\d.]*)/g)].map((match) => match[1]);
    expect(quotedPrime.length).toBeGreaterThanOrEqual(2);
    for (const quoted of quotedPrime) expect(quoted).toBe(zPrime.toFixed(4));
  });

  it('the ε quoted for a client in 4 or 10 rounds, and for replace-one adjacency', () => {
    const sentence = /\(z′ = 1\.4518\): ε ≈ ([\d.]+) for a client in 4 rounds, ≈ ([\d.]+) for one in 10\.[\s\S]*?\(ε ≈ ([\d.]+) for 4\s+rounds\)/.exec(PRIVACY_DOC);
    expect(sentence).not.toBeNull();
    const [, four, ten, replaceOne] = sentence!;
    // The doc's commands use z′ as printed (1.4518), so the pins do too.
    const printed = Number(zPrime.toFixed(4));
    expect([four, ten, replaceOne]).toEqual([
      asQuoted(epsilonOf(1, printed, 4), four!),
      asQuoted(epsilonOf(1, printed, 10), ten!),
      asQuoted(epsilonOf(1, printed / 2, 4), replaceOne!),
    ]);
  });
});

describe('README.md: the `shoal privacy` command it shows', () => {
  const command = /^npx shoal privacy (.+)$/m.exec(README);

  it('runs and prints an ε', async () => {
    expect(command).not.toBeNull();
    const result = await shoal(['privacy', ...command![1]!.trim().split(/\s+/)], { timeoutMs: 40_000 });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ε = [\d.]+ at δ = 0\.00001 after 1000 rounds/);
  });
});
