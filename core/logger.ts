import { type Logger, pino, transport } from 'pino';

export interface LoggerOptions {
  level?: string;
  /** Human-readable output; default when stdout is a terminal. */
  pretty?: boolean;
}

/**
 * Set by a cluster primary that pretty-prints: its workers write JSON lines to a pipe the
 * primary reads (core/cluster/worker-logs.ts), so no worker runs pino-pretty's thread.
 */
export const LOG_TO_PRIMARY_ENV = 'SWITCHYARD_LOG_TO_PRIMARY';

/** Whether logs are pretty: the option, else whether stdout is a terminal (never in a worker the primary prints for). */
export function wantsPretty(options: LoggerOptions): boolean {
  if (process.env[LOG_TO_PRIMARY_ENV] === '1') return false;
  return options.pretty ?? process.stdout.isTTY === true;
}

/** Where each logger writes (stdout, or pino-pretty's transport): for other processes' lines. */
const destinations = new WeakMap<Logger, { write(text: string): unknown }>();

/** pino JSON to stdout, or pino-pretty on a terminal. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const base = { pid: process.pid };
  if (wantsPretty(options)) {
    const stream = transport({
      target: 'pino-pretty',
      options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
    });
    const log = pino({ level, base }, stream);
    destinations.set(log, stream);
    return log;
  }
  return pino({ level, base });
}

/** Writes whole JSON log lines (another process's) where the logger writes its own. */
export function rawLineWriter(log: Logger): (line: string) => void {
  const stream = destinations.get(log) ?? process.stdout;
  return (line) => {
    stream.write(`${line}\n`);
  };
}
