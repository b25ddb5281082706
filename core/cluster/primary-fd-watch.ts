import { readdirSync } from 'node:fs';
import type { Logger } from 'pino';
import { openFilesLimit } from '../capacity.js';

/** Share of the open-files limit at which the primary warns. */
const WARN_AT = 0.8;
const SAMPLE_EVERY = 1000;
const WARN_EVERY = 10_000;

/** Open descriptors of this process (Linux /proc), or undefined where unknown. */
export function openDescriptors(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length - 1; // minus the readdir's own handle
  } catch {
    return undefined;
  }
}

/**
 * With `scheduling: rr`, the primary accepts every connection and holds its descriptor until
 * the IPC write to a worker is done; a burst faster than the hand-off queues descriptors in
 * the primary. Its dispatcher refuses (counted) at 90 % of the open-files limit (fd-guard.ts);
 * this watch says so in the log before that: above 80 % it logs once per 10 s, naming the
 * remedies; `process_open_fds` / `process_max_fds` in the metrics show the same.
 */
export class PrimaryFdWatch {
  #timer: NodeJS.Timeout | undefined;
  #warnedAt = 0;
  /** Highest count sampled (a lower bound of the true peak). */
  peak = 0;

  constructor(
    private readonly log: Logger,
    private readonly warnAt = WARN_AT,
    private readonly now: () => number = Date.now,
  ) {}

  start(every = SAMPLE_EVERY): void {
    this.#timer = setInterval(() => this.sample(), every);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One sample: returns the count and limit seen (undefined where /proc is missing). */
  sample(): { fds: number; limit: number } | undefined {
    const fds = openDescriptors();
    const limit = openFilesLimit();
    if (fds === undefined || limit === undefined) return undefined;
    if (fds > this.peak) this.peak = fds;
    if (fds >= limit * this.warnAt && this.now() - this.#warnedAt >= WARN_EVERY) {
      this.#warnedAt = this.now();
      this.log.warn(
        { fds, limit },
        'cluster primary near its open files limit: past 90 % it refuses new connections (counted as overloaded); raise its `ulimit -n` (LimitNOFILE) or use scheduling: reuseport or none',
      );
    }
    return { fds, limit };
  }
}
