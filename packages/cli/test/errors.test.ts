// How the CLI answers a mistake: every configuration or flag error is one `shoal: config: …` line
// on stderr and exit status 2, never a stack trace, whichever package noticed it; and every
// command answers --help. Runs the real CLI, as users do.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startServe } from '@shoal/testkit';
import { shoal, tempFolder } from './run-cli.js';

const tmp = tempFolder('shoal-cli-errors-');
afterAll(() => tmp.remove());

/** A small valid base: iris is the quickest dataset to load, and serve needs no data at all. */
const BASE = { rounds: 1, model: 'logreg', clientsPerRound: 3, minClients: 2, simulation: { dataset: 'iris', numClients: 3 } };

/** One line, `shoal: config: …`, naming every fragment; no stack trace. */
function expectConfigError(result: { code: number | null; stdout: string; stderr: string }, fragments: readonly string[]): void {
  expect(result.stderr, 'no stack trace').not.toMatch(/^\s+at /m);
  expect(result.stderr).toMatch(/^shoal: config: [^\n]+\n$/);
  for (const fragment of fragments) expect(result.stderr).toContain(fragment);
  expect(result.code).toBe(2);
  expect(result.stdout).toBe('');
}

describe('configuration errors reach the user as `shoal: config: …`, exit 2', { concurrent: true }, () => {
  // [label, config, command, fragments the message must contain]
  const cases: readonly (readonly [string, Record<string, unknown>, 'serve' | 'simulate', readonly string[]])[] = [
    ['cnn on digits (flat examples)', { ...BASE, model: 'cnn', simulation: { dataset: 'digits', numClients: 3 } }, 'simulate', ['model cnn', 'simulation.dataset digits', '[64]', '[height, width, channels]']],
    ['cnn on digits, served', { ...BASE, model: 'cnn', simulation: { dataset: 'digits' } }, 'serve', ['model cnn', 'simulation.dataset digits', '[64]']],
    ['cnn on a 2×2 image', { ...BASE, model: { builtin: 'cnn', inputShape: [2, 2, 1] } }, 'serve', ['model.inputShape [2, 2, 1]', 'at least 4×4']],
    ['an input shape the dataset does not have', { ...BASE, model: { builtin: 'logreg', inputShape: [2, 2] } }, 'simulate', ['model.inputShape [2, 2]', 'simulation.dataset iris', '[4]']],
    ['fewer classes than the dataset has', { ...BASE, model: { builtin: 'logreg', numClasses: 2 } }, 'simulate', ['model.numClasses 2', 'simulation.dataset iris', '3 classes']],
    ['secagg.maxDropout 0.6', { ...BASE, secagg: { mode: 'secagg', maxDropout: 0.6 } }, 'serve', ['secagg.maxDropout must be a number in [0, 0.5), got 0.6', 'half']],
    ['secagg.maxDropout 0.6, simulated', { ...BASE, secagg: { mode: 'secagg', maxDropout: 0.6 } }, 'simulate', ['secagg.maxDropout must be a number in [0, 0.5), got 0.6']],
    ['a threshold no cohort of clientsPerRound can reach', { ...BASE, secagg: { mode: 'secagg', maxDropout: 0.4 } }, 'serve', ['secagg.maxDropout 0.4 leaves no valid threshold', 'clientsPerRound (3)']],
    ['a strategy key of another strategy', { ...BASE, strategy: { name: 'fedavg', momentum: 0.5 } }, 'serve', ['strategy.momentum is not an option of fedavg']],
    ['an unknown key', { ...BASE, train: { learnRate: 0.1 } }, 'simulate', ['unknown key train.learnRate']],
    ['dp without a checkpoint folder', { ...BASE, dp: { mode: 'central' } }, 'serve', ['dp.mode central needs server.checkpointDir', 'reset it to 0', 'dp.allowNoCheckpoint']],
  ];

  it.each(cases)('%s (%s)', async (_label, config, command, fragments) => {
    const path = tmp.writeConfig(`case-${command}-${_label.replace(/\W+/g, '-')}`, config);
    const args = command === 'serve' ? ['serve', '--config', path, '--port', '0'] : ['simulate', path, '--quiet', '--out', join(tmp.path, 'never')];
    // A serve that wrongly starts would wait for clients: the timeout ends it, and the test fails on its exit code.
    expectConfigError(await shoal(args, { env: { SHOAL_TOKENS: 't' }, timeoutMs: 30_000 }), fragments);
  });

  it('a missing config file', async () => {
    const missing = join(tmp.path, 'no-such-config.json');
    expectConfigError(await shoal(['simulate', missing]), [`cannot read config file ${missing}`]);
  });

  it('a config file that is not JSON', async () => {
    const path = join(tmp.path, 'broken.json');
    writeFileSync(path, '{ "rounds": 2, }');
    expectConfigError(await shoal(['serve', '--config', path]), [`${path} is not valid JSON`]);
  });

  it('serve without a token', async () => {
    expectConfigError(await shoal(['serve', '--config', tmp.writeConfig('no-tokens', BASE)]), ['server.tokens is empty']);
  });

  it('a bad --port', async () => {
    expectConfigError(await shoal(['serve', '--config', tmp.writeConfig('port', BASE), '--port', 'eighty'], { env: { SHOAL_TOKENS: 't' } }), ['--port must be an integer in [0, 65535], got "eighty"']);
  });

  it('serve with dp and no checkpoint folder starts when dp.allowNoCheckpoint is set', async () => {
    const path = tmp.writeConfig('dp-no-checkpoint', { ...BASE, dp: { mode: 'central', allowNoCheckpoint: true }, server: { tokens: ['t'] } });
    const server = startServe(path);
    try {
      expect(await server.url).toMatch(/^ws:\/\//);
    } finally {
      await server.kill();
    }
  });

  it.each([
    [['simulate', 'x.json', '--bogus'], ['--bogus', 'shoal simulate --help']],
    [['serve', '--config', 'x.json', '--bogus'], ['--bogus', 'shoal serve --help']],
    [['serve'], ['serve needs --config FILE']],
    [['simulate'], ['simulate takes exactly one config file']],
    [['serve', '--config', 'BASE', '--set', 'rounds'], ['--set expects key.path=value, got "rounds"']],
  ])('a usage error: shoal %j', async (args, fragments) => {
    const base = tmp.writeConfig('usage-base', BASE);
    expectConfigError(await shoal(args.map((arg) => (arg === 'BASE' ? base : arg))), fragments);
  });
});

describe('every command answers --help and -h with its usage, exit 0', { concurrent: true }, () => {
  it.each([
    [['--help'], ['shoal serve ', 'shoal simulate ', 'shoal privacy ']],
    [['-h'], ['shoal serve ', 'shoal simulate ', 'shoal privacy ']],
    [['help'], ['shoal serve ', 'shoal simulate ', 'shoal privacy ']],
    [['serve', '--help'], ['shoal serve --config FILE', '--host', '--port', '--set', 'SHOAL_TOKENS']],
    [['serve', '-h'], ['shoal serve --config FILE']],
    [['simulate', '--help'], ['shoal simulate CONFIG.json', '--set', '--out', '--quiet']],
    [['simulate', '-h'], ['shoal simulate CONFIG.json']],
    // --help wins over everything else on the line, even a config that does not exist.
    [['simulate', 'missing.json', '--set', 'rounds=1', '--help'], ['shoal simulate CONFIG.json']],
    [['privacy', '--help'], ['shoal privacy --sample-rate Q', '--json']],
    [['privacy', '-h'], ['shoal privacy --sample-rate Q']],
  ])('shoal %j', async (args, fragments) => {
    const result = await shoal(args);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage:/m);
    for (const fragment of fragments) expect(result.stdout).toContain(fragment);
  });
});
