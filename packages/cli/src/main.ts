// The `shoal` command: dispatches to one module per command, each loaded only when it runs, so
// `serve` never loads the simulator and `--help` loads nothing. Every ShoalError ends the command
// with exit status 2 and one message on stderr (`shoal: config: …` for a config or flag mistake,
// `shoal: sweep: …` for any of those under `shoal sweep`, whose flags and runs' configs are one,
// and `shoal: report: …` for a folder `shoal report` cannot report on);
// anything else is a bug, and propagates with its stack.
import { ShoalError } from '@shoal/protocol';
import { wantsHelp } from './args.js';
import { HELP, USAGE } from './usage.js';

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
      case 'serve':
      case 'gateway':
      case 'leader':
      case 'simulate':
      case 'swarm':
      case 'privacy':
      case 'sweep':
      case 'report':
      case 'ledger':
      case 'card':
        if (wantsHelp(rest)) {
          process.stdout.write(USAGE[command]);
          return 0;
        }
        return await run(command, rest);
      default:
        process.stderr.write(`shoal: unknown command "${command}"\n\n${HELP}`);
        return 2;
    }
  } catch (error) {
    if (!(error instanceof ShoalError)) throw error;
    const prefix = error.code !== 'INVALID_CONFIG' ? '' : command === 'sweep' || command === 'report' || command === 'ledger' || command === 'card' ? `${command}: ` : 'config: ';
    process.stderr.write(`shoal: ${prefix}${error.message}\n`);
    return 2;
  }
}

async function run(command: keyof typeof USAGE, args: readonly string[]): Promise<number> {
  switch (command) {
    case 'serve':
      return (await import('./serve.js')).serve(args);
    case 'gateway':
    case 'leader':
      return (await import('./serve.js')).serve(args, command);
    case 'simulate':
      return (await import('./simulate.js')).simulate(args);
    case 'swarm':
      return (await import('./swarm.js')).swarm(args);
    case 'privacy':
      return (await import('./privacy.js')).privacy(args);
    case 'sweep':
      return (await import('./sweep.js')).sweep(args);
    case 'report':
      return (await import('./report.js')).report(args);
    case 'ledger':
      return (await import('./ledger.js')).ledger(args);
    case 'card':
      return (await import('./card.js')).card(args);
  }
}
