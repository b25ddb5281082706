// Keeps the dispatching primary below its open-files limit. When the primary is at the limit,
// libuv's EMFILE path accepts and closes connections without telling anyone (and any other
// open() of the process fails too); this guard refuses before that, on purpose and counted.
//
// Checking /proc/self/fd per connection would cost a readdir each; instead the dispatcher
// tells the guard how many descriptors it holds for connections (accepted, not yet handed
// off), and the guard re-reads the real count and the soft limit every `recalibrateMs` to learn
// the rest (listeners, IPC channels, logs, admin sockets).
import { readdirSync, readFileSync } from 'node:fs';

/** Soft RLIMIT_NOFILE of this process from /proc/self/limits, or Infinity when unknown. */
export function softFdLimit() {
  try {
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return match === null || match[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match[1]);
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

function openFds() {
  try {
    return readdirSync('/proc/self/fd').length - 1; // minus the directory handle of the readdir
  } catch {
    return 0;
  }
}

export class FdGuard {
  /**
   * @param {{ threshold?: number, fraction?: number, recalibrateMs?: number }} options
   *   threshold: absolute descriptor count at which new connections are refused; when absent,
   *   `fraction` (default 0.9) of the soft limit, re-read at every recalibration.
   */
  constructor({ threshold, fraction = 0.9, recalibrateMs = 250 } = {}) {
    this.fixed = threshold;
    this.fraction = fraction;
    this.held = 0; // descriptors held for connections, maintained by the dispatcher
    this.refused = 0;
    this.peak = 0; // highest count seen at recalibration (a lower bound of the true peak)
    this.#recalibrate();
    this.timer = setInterval(() => this.#recalibrate(), recalibrateMs);
    this.timer.unref();
  }

  #recalibrate() {
    const open = openFds();
    if (open > this.peak) this.peak = open;
    this.base = Math.max(0, open - this.held);
    this.threshold = this.fixed ?? Math.floor(softFdLimit() * this.fraction);
  }

  /** True when one more connection descriptor keeps the process under its threshold. */
  admit() {
    return this.base + this.held < this.threshold;
  }

  stop() {
    clearInterval(this.timer);
  }
}
