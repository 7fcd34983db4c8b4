export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** A structured logger: one line per event, `key=value` fields. Never given a password or token. */
export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

function render(value: string | number | boolean | null): string {
  const text = String(value);
  return /^[\w.:/@+-]*$/.test(text) && text !== '' ? text : JSON.stringify(text);
}

export function createLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  base: LogFields = {},
): Logger {
  const emit = (at: LogLevel, event: string, fields: LogFields = {}): void => {
    if (RANK[at] < RANK[level]) return;
    let line = `${new Date().toISOString()} ${at.toUpperCase()} ${event}`;
    for (const [key, value] of Object.entries({ ...base, ...fields })) {
      if (value !== undefined) line += ` ${key}=${render(value)}`;
    }
    write(line);
  };
  return {
    debug: (event, fields) => emit('debug', event, fields),
    info: (event, fields) => emit('info', event, fields),
    warn: (event, fields) => emit('warn', event, fields),
    error: (event, fields) => emit('error', event, fields),
    child: (fields) => createLogger(level, write, { ...base, ...fields }),
  };
}

/** A logger that drops everything (tests, embedded use). */
export const silentLogger: Logger = createLogger('error', () => {});
