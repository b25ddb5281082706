import { type Logger, pino } from 'pino';

export interface LoggerOptions {
  level?: string;
  /** Human-readable output; default when stdout is a terminal. */
  pretty?: boolean;
}

/** pino JSON to stdout, or pino-pretty on a terminal. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  if (pretty) {
    return pino({
      level,
      base: { pid: process.pid },
      transport: {
        target: 'pino-pretty',
        options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
  }
  return pino({ level, base: { pid: process.pid } });
}
