// The full chaos run (issue #13 item 2; docs/reliability.md, "Chaos"):
//
//   node --conditions=shoal-source --import tsx scripts/chaos.ts [--rounds 100] [--seed N] [--kills K] [--clients C]
//
// Prints one line per coordinator life, then the summary as JSON; exits 1 on any violated
// invariant (the run's folder is then kept and named), 0 otherwise.
import { parseArgs } from 'node:util';
import { runChaos } from '../test/chaos/driver.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '100' }, seed: { type: 'string', default: '1' }, kills: { type: 'string' }, clients: { type: 'string' } },
});

function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${flag} must be an integer ≥ 1, got "${text}"`);
  return value;
}

const summary = await runChaos({
  rounds: positiveInteger('rounds', values.rounds),
  seed: positiveInteger('seed', values.seed),
  ...(values.kills !== undefined ? { coordinatorKills: positiveInteger('kills', values.kills) } : {}),
  ...(values.clients !== undefined ? { clients: positiveInteger('clients', values.clients) } : {}),
  progress: (line) => process.stdout.write(`${line}\n`),
});
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
for (const violation of summary.violations) process.stderr.write(`VIOLATION ${violation}\n`);
process.stdout.write(`${summary.violations.length === 0 ? 'OK' : 'FAILED'}: ${summary.lives} lives, ${summary.committed} committed / ${summary.aborted} aborted rounds, ${summary.checksPassed} checks passed, ${summary.violations.length} violations, ${(summary.durationMs / 1000).toFixed(0)} s\n`);
process.exitCode = summary.violations.length === 0 ? 0 : 1;
