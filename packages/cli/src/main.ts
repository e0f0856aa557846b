import { readFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { builtinInitialModel, loadSavedModel, startCoordinator, type InitialModel, type RoundMetrics } from '@shoal/coordinator';
import { ShoalError } from '@shoal/protocol';
// Only the config parser and dataset shapes here: `serve` must not pay for loading tfjs, which
// `simulate` imports lazily with the runner.
import { applyOverrides, coordinatorOptions, parseConfig, type ShoalConfig } from '@shoal/sim/config';
import { DATASET_SHAPES } from '@shoal/sim/shapes';
import type { SimulationSummary } from '@shoal/sim';
import { privacy } from './privacy.js';
import { progressBar } from './progress.js';

const HELP = `shoal: federated learning coordinator and simulator

Usage:
  shoal serve --config FILE [--host H] [--port P] [--set key.path=value ...]
      Run a coordinator. Clients connect over WebSockets with a token from server.tokens
      (or the SHOAL_TOKENS environment variable, comma-separated).
  shoal simulate CONFIG.json [--set key.path=value ...] [--out DIR]
      Run the real coordinator with virtual clients on a bundled dataset; writes
      DIR/metrics.jsonl and DIR/summary.json (default DIR: runs/<config name>/).
  shoal privacy --sample-rate Q --rounds T --delta D (--noise-multiplier Z | --target-epsilon E) [--json]
      The privacy cost of a DP schedule (RDP accountant, Poisson sampling of clients): the ε that
      T rounds at sampling rate Q with noise multiplier Z spend, or the noise multiplier that
      keeps ε <= E. --json prints {"epsilon", "order", "noiseMultiplier"}.
  shoal --help | --version

Configuration keys and their defaults: docs/configuration.md
`;

/** The CLI entry; returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        process.stdout.write(HELP);
        return 0;
      case '--version':
        process.stdout.write('shoal 0.1.0\n');
        return 0;
      case 'simulate':
        return await simulate(rest);
      case 'privacy':
        return privacy(rest);
      case 'serve':
        return await serve(rest);
      default:
        process.stderr.write(`shoal: unknown command "${command}"\n\n${HELP}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof ShoalError || (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`shoal: ${(error as Error).message}\n`);
      return 2;
    }
    throw error;
  }
}

async function loadConfig(path: string, overrides: readonly string[]): Promise<ShoalConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new ShoalError('INVALID_CONFIG', `cannot read config file ${path}: ${(cause as Error).message}`, { cause });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new ShoalError('INVALID_CONFIG', `config file ${path} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  return parseConfig(applyOverrides(raw, overrides), basename(path, extname(path)));
}

async function simulate(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: { set: { type: 'string', multiple: true }, out: { type: 'string' }, quiet: { type: 'boolean' } },
  });
  const configPath = positionals[0];
  if (configPath === undefined || positionals.length > 1) {
    throw new ShoalError('INVALID_CONFIG', 'simulate takes exactly one config file: shoal simulate CONFIG.json');
  }
  const config = await loadConfig(configPath, values.set ?? []);
  const outDir = values.out ?? join('runs', config.name);
  const bar = values.quiet ? undefined : progressBar(process.stderr, config.rounds);
  const { runSimulation } = await import('@shoal/sim');
  const summary = await runSimulation(config, {
    outDir,
    onRound: (metrics) => bar?.update(metrics),
  });
  bar?.done();
  const committed = summary.rounds.filter((r) => r.status === 'committed').length;
  const accuracy = summary.finalAccuracy === undefined ? 'n/a' : `${(100 * summary.finalAccuracy).toFixed(2)}%`;
  process.stdout.write(
    `${config.name}: ${committed}/${summary.rounds.length} rounds committed on ${config.simulation.dataset} ` +
      `(${config.simulation.numClients} clients, ${summary.backend} backend) in ${(summary.durationMs / 1000).toFixed(1)} s\n` +
      `final test accuracy: ${accuracy}\n${privacyLines(summary)}metrics: ${join(outDir, 'metrics.jsonl')}\n`,
  );
  return 0;
}

/** With DP on: the ε spent, and why training stopped early when the budget ran out. */
function privacyLines(summary: Pick<SimulationSummary, 'rounds' | 'stoppedBy' | 'stopReason'>): string {
  const last = summary.rounds.at(-1);
  let lines = last?.epsilon === undefined ? '' : `privacy spent: ε = ${last.epsilon.toPrecision(6)} at δ = ${last.delta}\n`;
  if (summary.stoppedBy === 'budget') lines += `stopped early, privacy budget spent: ${summary.stopReason ?? 'dp.targetEpsilon reached'}\n`;
  return lines;
}

async function serve(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      config: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      set: { type: 'string', multiple: true },
    },
  });
  if (values.config === undefined) throw new ShoalError('INVALID_CONFIG', 'serve needs --config FILE');
  const config = await loadConfig(values.config, values.set ?? []);
  const tokens = process.env['SHOAL_TOKENS']?.split(',').filter(Boolean) ?? config.server.tokens;
  if (tokens.length === 0) throw new ShoalError('INVALID_CONFIG', 'server.tokens is empty: give at least one token (or set SHOAL_TOKENS)');
  const port = values.port === undefined ? config.server.port : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new ShoalError('INVALID_CONFIG', `--port must be an integer in [0, 65535], got ${values.port}`);

  const coordinator = await startCoordinator(
    {
      ...coordinatorOptions(config),
      model: await servedModel(config),
      tokens,
      onRound: (metrics: RoundMetrics) => process.stdout.write(`${JSON.stringify(metrics)}\n`),
      log: (line) => process.stderr.write(`${line}\n`),
    },
    { host: values.host ?? config.server.host, port },
  );
  process.stdout.write(`${JSON.stringify({ event: 'listening', url: coordinator.url })}\n`);
  const stop = () => void coordinator.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const summary = await coordinator.finished;
  await coordinator.close();
  process.stdout.write(`${JSON.stringify({ event: 'finished', stoppedBy: summary.stoppedBy, modelVersion: summary.modelVersion })}\n`);
  return 0;
}

/** The initial model of `serve`: a saved tfjs model, or a built-in one shaped for the configured dataset. */
async function servedModel(config: ShoalConfig): Promise<InitialModel> {
  if ('path' in config.model) return loadSavedModel(config.model.path);
  const shape = DATASET_SHAPES[config.simulation.dataset];
  return builtinInitialModel(config.model.builtin, config.model.inputShape ?? shape.featureShape, config.model.numClasses ?? shape.numClasses, config.seed);
}
