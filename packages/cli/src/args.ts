// Command-line flags: every mistake in them is a ShoalError INVALID_CONFIG, which the CLI prints
// as `shoal: config: …` with exit status 2, like a mistake in the config file.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { configError } from '@shoal/protocol';

/** Whether the arguments ask for help: `--help` or `-h` anywhere before a `--`. */
export function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((arg) => arg === '--help' || arg === '-h');
}

/** node:util's parseArgs, with its errors (an unknown flag, a missing value) as config errors pointing at --help. */
export function parseFlags<const O extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  args: readonly string[],
  options: O,
  allowPositionals = false,
  // Spelled out because the inferred type names a type node:util does not export, which the .d.ts cannot.
): ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: boolean; strict: true }>> {
  try {
    return parseArgs({ args: [...args], options, allowPositionals, strict: true });
  } catch (cause) {
    throw configError(`${(cause as Error).message} (shoal ${command} --help lists the options)`, { cause });
  }
}

/** An integer flag in [min, max]. */
export function integerFlag(name: string, text: string, min: number, max: number): number {
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!(Number.isSafeInteger(value) && value >= min && value <= max)) throw configError(`--${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(text)}`);
  return value;
}
