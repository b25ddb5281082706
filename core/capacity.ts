import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { ListenerBudget } from './listener-budget.js';

/**
 * File descriptors kept free for listeners, the admin API, health checks, logs and pools:
 * LISTENER_RESERVE of them for plugins' own listeners (listener-budget.ts), the rest for the
 * process itself.
 */
export const FD_RESERVE = 200;

/** The soft open-files limit of this process (Linux /proc), or undefined where unknown. */
export function openFilesLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/**
 * The process-wide session budget. A proxied session holds two descriptors (client and
 * upstream); past the fd limit, accept and connect fail with EMFILE in ways no client can
 * tell apart from a dead backend. Like HAProxy deriving maxconn from `ulimit -n`, the core
 * refuses sessions over the budget at accept: closed at once, counted, logged once per interval.
 */
export class Capacity {
  active = 0;
  refused = 0;
  #lastLog = 0;
  /** Plugin listeners' connection caps, out of the reserve. */
  readonly listeners: ListenerBudget;

  constructor(
    /** Concurrent sessions allowed in this process (Infinity when the fd limit is unknown). */
    readonly limit: number,
    private readonly log: Logger,
  ) {
    this.listeners = new ListenerBudget(log);
  }

  static fromFdLimit(log: Logger, fdLimit = openFilesLimit()): Capacity {
    const limit =
      fdLimit === undefined ? Number.POSITIVE_INFINITY : Math.max(1, Math.floor((fdLimit - FD_RESERVE) / 2));
    return new Capacity(limit, log);
  }

  /** Called for a session over the budget; logs at most once per 10 s. */
  overloaded(): void {
    this.refused++;
    const now = Date.now();
    if (now - this.#lastLog >= 10_000) {
      this.#lastLog = now;
      this.log.warn(
        { limit: this.limit, refusedSoFar: this.refused },
        'session limit reached (open files limit): refusing new connections',
      );
    }
  }
}
