// `shoal report DIR`: rebuilds DIR/report.html from the files a run or a sweep left there, e.g. for
// a run still in progress, a sweep resumed by hand, or after restyling nothing but wanting it fresh.
import { configError } from '@shoal/protocol';
import { parseFlags } from './args.js';

/** The `report` command; resolves with the exit code. */
export async function report(args: readonly string[]): Promise<number> {
  const { positionals } = parseFlags('report', args, {}, true);
  const dir = positionals[0];
  if (dir === undefined || positionals.length > 1) throw configError('expects exactly one folder: shoal report DIR, a run folder or a sweep folder (shoal report --help)');
  // The report module alone: it loads neither the simulator nor tfjs.
  const { writeReport } = await import('@shoal/sim/report');
  const { kind, path } = await writeReport(dir);
  process.stdout.write(`${kind} report: ${path}\n`);
  return 0;
}
