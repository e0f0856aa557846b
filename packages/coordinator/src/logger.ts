/**
 * The coordinator's structured log. A line is a fixed message plus fields; anything a peer chose
 * (a close reason, a decline reason, a request target) travels in a field, never in the message,
 * so a JSON writer escapes it and no peer can forge a line.
 *
 * The fields are a closed set on purpose: nothing that secure aggregation or differential privacy
 * protects (a client's update, its norm, its loss or accuracy, its example count) has a field, so
 * no log call can carry one without changing this type first.
 */
export interface LogFields {
  readonly round?: number;
  /** Where in the round or the connection's life: 'admit', 'train', a SecAgg stage, 'commit', 'http'… */
  readonly stage?: string;
  readonly clientId?: string;
  /** A Shoal error code (docs/errors.md) or an HTTP status. */
  readonly code?: string | number;
  /** Why: may hold a peer's text. */
  readonly reason?: string;
  /** The peer's network address (upgrades, before any client id exists). */
  readonly remote?: string;
  /** A bug's stack: never a peer's data. */
  readonly err?: string;
}

/** The four levels the coordinator uses; a pino logger satisfies this interface as it is. */
export interface Logger {
  debug(fields: LogFields, message: string): void;
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
}

export type LogLevel = keyof Logger;

/** Logs nothing: the default of `CoordinatorOptions.logger`. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * One readable line of a structured record: `LEVEL message key=value …`, every string value
 * JSON-quoted so a newline or a forged `key=value` in a peer's text stays inside one quoted value.
 */
export function formatLogLine(level: LogLevel, message: string, fields: LogFields): string {
  const parts = [level.toUpperCase().padEnd(5), message];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`${key}=${typeof value === 'string' ? JSON.stringify(value) : String(value)}`);
  }
  return parts.join(' ');
}

/** A logger that writes `formatLogLine` lines at `minLevel` and above: tests and simple embedders. */
export function lineLogger(write: (line: string) => void, minLevel: LogLevel = 'info'): Logger {
  const order: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
  const at = (level: LogLevel) => (order.indexOf(level) < order.indexOf(minLevel) ? () => {} : (fields: LogFields, message: string) => write(formatLogLine(level, message, fields)));
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** One structured log call, as the coordinator made it. */
export interface LogRecord {
  readonly level: LogLevel;
  readonly message: string;
  readonly fields: LogFields;
}

/** A logger that keeps every call: for tests, which assert on messages and fields rather than on text. */
export function recordingLogger(): { readonly logger: Logger; readonly records: LogRecord[] } {
  const records: LogRecord[] = [];
  const at = (level: LogLevel) => (fields: LogFields, message: string) => void records.push({ level, message, fields: { ...fields } });
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, records };
}
