// `shoal card DIR`: the model card of a run, from its verified privacy ledger (every privacy figure),
// its metrics.jsonl (performance, when present) and its description: a simulation's summary.json,
// or the config given with --config. Loads neither the simulator nor tfjs (`serve` uses it too).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describedCardInput, readTextIfPresent, modelCard, runDescription, writeModelCard, type DescribedConfig, type LedgerEntry, type RoundMetrics, type RunDescription } from '@shoal/coordinator';
import { DATASET_NAMES, DATASET_SHAPES, type DatasetName } from '@shoal/datasets';
import { configError } from '@shoal/protocol';
import { parseFlags } from './args.js';
import { verifyLedgerIn } from './ledger.js';

/** Writes DIR/model-card.{json,md} from verified ledger entries; returns the Markdown's path. */
export async function writeRunCard(dir: string, run: RunDescription, ledger: readonly LedgerEntry[], rounds?: readonly RoundMetrics[]): Promise<string> {
  return (await writeModelCard(dir, modelCard(describedCardInput(run, ledger, rounds)))).markdown;
}

/** The `card` command: exit 0 with the cards' paths, 1 when the ledger fails verification. */
export async function card(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags('card', args, { config: { type: 'string' } }, true);
  const dir = positionals[0];
  if (dir === undefined || positionals.length > 1) throw configError('card takes one folder: shoal card DIR [--config FILE] (shoal card --help)');
  const { path, result } = await verifyLedgerIn(dir);
  if (!result.ok) {
    process.stderr.write(`shoal card: ${path}: entry ${result.entry} ${result.problem}: no card is written from a ledger that fails verification\n`);
    return 1;
  }
  const run = await describeFolder(dir, values.config);
  const rounds = await readMetrics(join(dir, 'metrics.jsonl'));
  const markdown = await writeRunCard(dir, run, result.entries, rounds);
  process.stdout.write(`model card: ${markdown} and ${join(dir, 'model-card.json')}\n`);
  return 0;
}

/** The run's description: --config FILE when given, else a simulation's summary.json, else the ledger alone. */
async function describeFolder(dir: string, configPath: string | undefined): Promise<RunDescription> {
  const source = configPath ?? join(dir, 'summary.json');
  let raw: string;
  try {
    raw = await readFile(source, 'utf8');
  } catch (cause) {
    if (configPath !== undefined) throw configError(`cannot read --config ${configPath}: ${(cause as Error).message}`, { cause });
    return { name: 'shoal model', model: {} };
  }
  let parsed: { config?: DescribedConfig; partition?: RunDescription['partition'] } & Partial<DescribedConfig>;
  try {
    parsed = JSON.parse(raw) as typeof parsed;
  } catch (cause) {
    throw configError(`${source} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  // summary.json holds the parsed config under `config`; a config file is the config itself.
  const config = configPath !== undefined ? (parsed as DescribedConfig) : parsed.config;
  if (config?.name === undefined || config.model === undefined) return { name: 'shoal model', model: {} };
  const dataset = config.simulation?.dataset;
  return runDescription(config, parsed.partition, (DATASET_NAMES as readonly string[]).includes(dataset ?? '') ? DATASET_SHAPES[dataset as DatasetName] : undefined);
}

async function readMetrics(path: string): Promise<RoundMetrics[] | undefined> {
  const text = await readTextIfPresent(path);
  return text?.split('\n').filter(Boolean).map((line) => JSON.parse(line) as RoundMetrics);
}
