// docs/reproductions.md stays runnable: every `npx shoal simulate|sweep` command on the page names
// a config in simulations/reproductions/ that, with the command's --set and each of its --grid runs,
// is a valid config; and each of those configs trains one round, as the command would start it.
// The full runs take hours; their figures are in the page.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig, runSimulation } from '@shoal/sim';
import { applyOverrides } from '../src/config-file.js';
import { parseGridFlag, planRuns } from '../src/sweep-plan.js';
import { REPO_ROOT } from './run-cli.js';

/** The words of a shell command line: split at spaces, single-quoted words kept whole. */
function words(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((match) => match[1] ?? match[2]!);
}

interface DocumentedCommand {
  readonly line: string;
  readonly command: 'simulate' | 'sweep';
  readonly configPath: string;
  readonly sets: string[];
  readonly grids: string[];
}

/** The `npx shoal simulate|sweep` lines of the page's sh blocks. */
function documentedCommands(): DocumentedCommand[] {
  const page = readFileSync(join(REPO_ROOT, 'docs', 'reproductions.md'), 'utf8');
  const blocks = [...page.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!);
  return blocks
    .flatMap((block) => block.split('\n'))
    .filter((line) => line.startsWith('npx shoal '))
    .map((line) => {
      const [, , command, configPath, ...flags] = words(line);
      expect(['simulate', 'sweep'], line).toContain(command);
      const valuesOf = (flag: string) => flags.flatMap((word, i) => (word === flag ? [flags[i + 1]!] : []));
      return { line, command: command as 'simulate' | 'sweep', configPath: configPath!, sets: valuesOf('--set'), grids: valuesOf('--grid') };
    });
}

/** The raw configs a command runs, overrides applied: one for simulate, one per grid point for sweep. */
function rawConfigsOf(command: DocumentedCommand): unknown[] {
  const base = applyOverrides(JSON.parse(readFileSync(join(REPO_ROOT, command.configPath), 'utf8')) as unknown, command.sets);
  if (command.command === 'simulate') return [base];
  return planRuns(command.grids.map(parseGridFlag), undefined).map((run) => applyOverrides(base, run.overrides));
}

const nameOf = (command: DocumentedCommand) => basename(command.configPath, '.json');

const commands = documentedCommands();
const folders: string[] = [];
afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

describe('docs/reproductions.md', () => {
  it('documents a command for each config in simulations/reproductions/', () => {
    const configs = new Set(commands.map((command) => command.configPath));
    expect([...configs].sort()).toEqual(
      ['dp-fedavg-frontier', 'fedprox-stragglers', 'hsu-fedavgm', 'mcmahan-2nn-iid', 'mcmahan-2nn-noniid', 'reddi-fedopt'].map((name) => `simulations/reproductions/${name}.json`),
    );
  });

  it.each(commands.map((command) => [command.line, command] as const))('%s: every run it makes is a valid config', (_line, command) => {
    const configs = rawConfigsOf(command).map((raw) => parseConfig(raw, nameOf(command)));
    expect(configs.length).toBeGreaterThanOrEqual(command.command === 'sweep' ? 2 : 1);
  });

  // The first command of each config, one round, in one thread: what the full run starts with.
  const firstOfEachConfig = commands.filter((command, i) => commands.findIndex((other) => other.configPath === command.configPath) === i);
  it.each(firstOfEachConfig.map((command) => [command.configPath, command] as const))('%s trains one round', { timeout: 120_000 }, async (_path, command) => {
    const oneRound = parseConfig(applyOverrides(rawConfigsOf(command)[0], ['rounds=1', 'simulation.workers=1']), nameOf(command));
    const outDir = mkdtempSync(join(tmpdir(), 'shoal-reproduction-'));
    folders.push(outDir);
    const summary = await runSimulation(oneRound, { outDir });
    expect(summary.rounds).toHaveLength(1);
    expect(summary.rounds[0], summary.rounds[0]?.reason).toMatchObject({ status: 'committed' });
  });
});
