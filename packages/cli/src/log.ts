// The log of `shoal serve`: pino's JSON lines on stderr (stdout carries the command's own JSON
// events), or, on a terminal, the same records as readable lines.
import { pino, type DestinationStream } from 'pino';
import { formatLogLine, type LogFields, type Logger, type LogLevel } from '@shoal/coordinator';
import { oneOfAt } from '@shoal/protocol';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const satisfies readonly LogLevel[];
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** What `--log-level` and `--log-format` say; the format defaults to pretty on a terminal, JSON otherwise. */
export function logSettings(level: string | undefined, format: string | undefined, isTty: boolean): { level: LogLevel; format: LogFormat } {
  return {
    level: level === undefined ? 'info' : oneOfAt(level, '--log-level', LOG_LEVELS),
    format: format === undefined ? (isTty ? 'pretty' : 'json') : oneOfAt(format, '--log-format', LOG_FORMATS),
  };
}

/**
 * A pino logger writing to `out` synchronously (a line is never lost to an exit). `pretty` turns
 * each JSON record back into `formatLogLine`'s readable line, so both formats come from one logger
 * and escape peer text the same way.
 */
export function cliLogger(settings: { level: LogLevel; format: LogFormat }, out: { write(text: string): unknown; fd?: number }): Logger {
  const destination: DestinationStream =
    settings.format === 'json' && out.fd !== undefined
      ? pino.destination({ fd: out.fd, sync: true })
      : { write: (line: string) => void out.write(settings.format === 'json' ? line : `${readable(line)}\n`) };
  return pino({ level: settings.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

const PINO_KEYS = new Set(['level', 'time', 'msg']);

/** One of pino's JSON lines as a readable line: time, then `formatLogLine`. */
function readable(json: string): string {
  const record = JSON.parse(json) as Record<string, unknown>;
  // Only the four levels of `Logger` are ever written.
  const level = pino.levels.labels[record['level'] as number] as LogLevel;
  const fields = Object.fromEntries(Object.entries(record).filter(([key]) => !PINO_KEYS.has(key))) as LogFields;
  return `${String(record['time'])} ${formatLogLine(level, String(record['msg']), fields)}`;
}
