// docs/configuration.md against the two readings of the config file: `simulate`'s (parseConfig of
// @shoal/sim) and `serve`'s (parseServeConfig), both `composeConfig` of @shoal/coordinator with
// their own sections. Here, in the CLI's tests, because both commands are visible only here.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { PrivacyPolicy, privacyOptions, type CoordinatorConfig } from '@shoal/coordinator';
// The config schema only, not the package index: the index pulls in tfjs, which this file does not need.
import { parseConfig } from '@shoal/sim/config';
import { createStrategy } from '@shoal/strategy';
import { describe, expect, it } from 'vitest';
import { parseServeConfig } from '../src/serve.js';
// The whole-config fixtures live with the simulate reading's tests.
import {
  ADAPTIVE_CLIP_DEFAULTS,
  CROSS_KEY_EXAMPLES,
  DEFAULTS,
  DOC,
  FULL_VARIANTS,
  REPO_ROOT,
  SECTIONS,
  acceptedKeyPaths,
  keyPaths,
} from '../../sim/test/config-fixtures.js';

describe('docs/configuration.md stays in step with parseConfig', () => {
  const accepted = acceptedKeyPaths();

  /** The cells of the rows of every table whose first column is headed "Key", the key path unquoted. */
  function keyTableRows(): string[][] {
    const rows: string[][] = [];
    let inKeyTable = false;
    for (const line of DOC.split('\n')) {
      if (!line.startsWith('|')) {
        inKeyTable = false;
        continue;
      }
      if (line.startsWith('| Key |')) inKeyTable = true;
      const cells = line.slice(1, -1).split(' | ').map((cell) => cell.trim());
      const key = /^`([^`]+)`$/.exec(cells[0] ?? '');
      if (inKeyTable && key) rows.push([key[1]!, ...cells.slice(1)]);
    }
    return rows;
  }

  it('the fully specified test configs cover exactly the accepted keys', () => {
    const covered = new Set(FULL_VARIANTS.flatMap((config) => keyPaths(config)));
    expect([...covered].sort()).toEqual([...accepted].sort());
  });

  it('documents every accepted key path in backticks', () => {
    const missing = [...accepted].filter((path) => !DOC.includes(`\`${path}\``));
    expect(missing).toEqual([]);
  });

  it('documents each accepted key in exactly one table row, and no key that is not accepted', () => {
    const documented = keyTableRows().map((cells) => cells[0]!);
    expect(documented.filter((key) => !accepted.has(key))).toEqual([]);
    expect([...documented].sort()).toEqual([...accepted].sort());
  });

  it('documents the defaults parseConfig fills in', () => {
    const rows = new Map(keyTableRows().map((cells) => [cells[0]!, cells[2] ?? ''] as const));
    const leaves: [string, unknown][] = [
      ['seed', DEFAULTS.seed], ['rounds', DEFAULTS.rounds], ['model', 'mlp'], ['minClients', DEFAULTS.minClients], ['roundTimeoutMs', DEFAULTS.roundTimeoutMs],
      ['sampling', DEFAULTS.sampling], ['maxUpdateNorm', DEFAULTS.maxUpdateNorm],
      ...SECTIONS.flatMap((section) =>
        Object.entries(DEFAULTS[section])
          .filter(([k]) => `${section}.${k}` !== 'server.limits') // an object: its leaves are listed next
          .map(([k, v]) => [`${section}.${k}`, v] as [string, unknown]),
      ),
      ...Object.entries(DEFAULTS.server.limits).map(([k, v]) => [`server.limits.${k}`, v] as [string, unknown]),
      ...Object.entries(ADAPTIVE_CLIP_DEFAULTS).map(([k, v]) => [`dp.adaptiveClip.${k}`, v] as [string, unknown]),
      ['strategy.momentum', 0.9], // applied by createStrategy for fedavgm, not by parseConfig
      ['strategy.beta1', 0.9], ['strategy.beta2', 0.99], ['strategy.tau', 0.001], // likewise, for the adaptive strategies
      ['strategy.trimFraction', 0.1], ['strategy.krumSelect', 1], // likewise, for fedtrimmedavg and krum
      ['strategy.serverLearningRate', 0.01], // what parseConfig fills in for the adaptive strategies
    ];
    for (const [key, value] of leaves) expect(rows.get(key), key).toContain(`\`${JSON.stringify(value)}\``);
  });

  it('says for every section which command reads it', () => {
    const section = /\n## Which command reads what\n([\s\S]*?)\n## /.exec(DOC)?.[1] ?? '';
    const rows = section.split('\n').filter((line) => line.startsWith('| '));
    expect(rows.length, 'the "Which command reads what" table').toBeGreaterThan(2);
    for (const name of SECTIONS) expect(rows.some((row) => row.includes(`\`${name}.`)), name).toBe(true);
  });

  it('quotes an example of each cross-key rule as the CLI prints it', () => {
    const unquoted = CROSS_KEY_EXAMPLES.map(([, message]) => `\`shoal: config: ${message}\``).filter((quote) => !DOC.includes(quote));
    expect(unquoted).toEqual([]);
  });

  /**
   * Parses a config as `serve` or `simulate` starts from it: its reading of the file, then
   * createStrategy, then, with dp on, the coordinator's own privacy checks (e.g. adaptive clipping
   * needs countNoiseStd > noiseMultiplier / 2). Returns whether dp is on.
   */
  function expectRunnable(command: 'serve' | 'simulate', raw: unknown, label: string, defaultName?: string): boolean {
    const config: CoordinatorConfig = command === 'serve' ? parseServeConfig(raw, defaultName) : parseConfig(raw, defaultName);
    expect(() => createStrategy(config.strategy), label).not.toThrow();
    const { dp } = privacyOptions(config);
    if (dp === undefined) return false;
    expect(() => new PrivacyPolicy(dp, config.clientsPerRound!, config.minClients, config.secagg.mode !== 'off'), label).not.toThrow();
    return true;
  }

  it('every JSON example in the doc is a valid config for the command its heading names, with a valid strategy and, with dp on, privacy settings the coordinator takes', () => {
    const examples = [...DOC.matchAll(/\n## Example: `(serve|simulate)`[^\n]*\n[\s\S]*?```json\n([\s\S]*?)```/g)].map((m) => [m[1] as 'serve' | 'simulate', JSON.parse(m[2]!) as unknown] as const);
    expect(examples.length, 'examples under "## Example: `serve`" or "`simulate`" headings').toBe([...DOC.matchAll(/```json\n/g)].length);
    expect(new Set(examples.map(([command]) => command))).toEqual(new Set(['serve', 'simulate']));
    const withDp = examples.filter(([command, raw], index) => expectRunnable(command, raw, `JSON example ${index + 1} (${command})`));
    expect(withDp.length, 'a JSON example with dp on').toBeGreaterThan(0);
  });

  it('simulations/quickstart.json is a valid config', () => {
    const raw = JSON.parse(readFileSync(join(REPO_ROOT, 'simulations', 'quickstart.json'), 'utf8')) as unknown;
    expect(parseConfig(raw, 'quickstart').simulation.dataset).toBe('mnist');
  });

  it('every config in simulations/ is valid, as serve and simulate would start from it', () => {
    const files = readdirSync(join(REPO_ROOT, 'simulations')).filter((file) => file.endsWith('.json'));
    expect(files).toContain('quickstart.json');
    for (const file of files) {
      const raw = JSON.parse(readFileSync(join(REPO_ROOT, 'simulations', file), 'utf8')) as unknown;
      for (const command of ['serve', 'simulate'] as const) expectRunnable(command, raw, `simulations/${file} (${command})`, basename(file, '.json'));
    }
  });
});
