// `shoal simulate`: the real coordinator with virtual clients on a bundled dataset.
import { join } from 'node:path';
import { configError } from '@shoal/protocol';
// The config schema only: the runner, which loads tfjs, is imported once the config is valid.
import { parseConfig } from '@shoal/sim/config';
import type { SimulationSummary } from '@shoal/sim';
import { parseFlags } from './args.js';
import { readConfig } from './config-file.js';
import { progressBar } from './progress.js';

/** The `simulate` command; resolves with the exit code. */
export async function simulate(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags('simulate', args, { set: { type: 'string', multiple: true }, out: { type: 'string' }, quiet: { type: 'boolean' } }, true);
  const configPath = positionals[0];
  if (configPath === undefined || positionals.length > 1) throw configError('simulate takes exactly one config file: shoal simulate CONFIG.json (shoal simulate --help)');
  const config = await readConfig(configPath, values.set ?? [], parseConfig);
  const outDir = values.out ?? join('runs', config.name);
  const bar = values.quiet ? undefined : progressBar(process.stderr, config.rounds);
  const { runSimulation, writeRunReport } = await import('@shoal/sim');
  const summary = await runSimulation(config, {
    outDir,
    onRound: (metrics) => bar?.update(metrics),
    // The token is the operator's own (server.adminTokens): the URL names the page, not the token.
    onAdminListening: (httpUrl) => void process.stderr.write(`dashboard: ${httpUrl}/dashboard?token=<a server.adminTokens token>; metrics: ${httpUrl}/metrics\n`),
  });
  bar?.done();
  const reportLine = await reportAfterRun(outDir, writeRunReport);
  const committed = summary.rounds.filter((r) => r.status === 'committed').length;
  const accuracy = summary.finalAccuracy === undefined ? 'n/a' : `${(100 * summary.finalAccuracy).toFixed(2)}%`;
  process.stdout.write(
    `${config.name}: ${committed}/${summary.rounds.length} rounds committed on ${config.simulation.dataset} ` +
      `(${config.simulation.numClients} clients, ${summary.backend} backend) in ${(summary.durationMs / 1000).toFixed(1)} s\n` +
      `final test accuracy: ${accuracy}\n${privacyLines(summary)}metrics: ${join(outDir, 'metrics.jsonl')}\n${reportLine}`,
  );
  return 0;
}

/**
 * Writes the run's report.html and returns the line naming it. The report is derived from files
 * that are complete by now, so failing to draw it does not fail the run: it is said on stderr
 * (with how to retry) and the command still succeeds, so `shoal sweep` keeps the run.
 */
async function reportAfterRun(outDir: string, writeRunReport: (dir: string) => Promise<string>): Promise<string> {
  try {
    return `report: ${await writeRunReport(outDir)}\n`;
  } catch (error) {
    process.stderr.write(`shoal: simulate: report.html not written: ${(error as Error).message} (the run's files are complete; retry with shoal report ${outDir})\n`);
    return '';
  }
}

/** With DP on: the ε spent, and why training stopped early when the budget ran out. */
function privacyLines(summary: Pick<SimulationSummary, 'rounds' | 'stoppedBy' | 'stopReason'>): string {
  const last = summary.rounds.at(-1);
  let lines = last?.epsilon === undefined ? '' : `privacy spent: ε = ${last.epsilon.toPrecision(6)} at δ = ${last.delta}\n`;
  if (summary.stoppedBy === 'budget') lines += `stopped early, privacy budget spent: ${summary.stopReason ?? 'dp.targetEpsilon reached'}\n`;
  if (summary.stoppedBy === 'target') lines += `stopped early: test accuracy reached targetAccuracy after ${summary.rounds.length} rounds\n`;
  return lines;
}
