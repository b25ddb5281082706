import type { Logger } from 'pino';

/**
 * At most one warning per `interval` ms per kind, saying how many were not logged since: a
 * flood of bad headers or refused clients must not become a flood of log lines. No timer;
 * checked on each event. Use a fixed set of kinds (the map keeps one entry per kind).
 *
 *   const throttle = new LogThrottle(log, 10_000);
 *   throttle.warn('invalid', { peer }, 'bad PROXY header; refused');
 */
export class LogThrottle {
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly interval: number,
  ) {}

  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const last = this.#last.get(kind);
    if (last !== undefined && now - last.at < this.interval) {
      last.suppressed++;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    this.#last.set(kind, { at: now, suppressed: 0 });
    this.log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }
}
