import { openFilesLimit } from '../capacity.js';
import { openDescriptors } from './primary-fd-watch.js';

/** Share of the open-files limit the dispatcher may fill; the rest stays for the primary's own work. */
const FILL = 0.9;
const RECALIBRATE_EVERY = 250;

/**
 * Keeps the rr dispatcher (the primary) under its open-files limit. At the limit libuv's
 * accept loop would take its EMFILE path: close its reserve descriptor, accept and close every
 * pending connection, and tell nobody — connections dropped uncounted, and any other open()
 * of the primary (admin API, metrics, a reload reading the config) failing meanwhile. The guard
 * refuses before that, on purpose and counted.
 *
 * No syscall per connection: the dispatcher counts the descriptors it holds for connections
 * (accepted, not yet written to a worker); the rest (listeners, IPC channels, logs, admin
 * sockets) is re-read from /proc every 250 ms.
 */
export class FdGuard {
  /** Descriptors held for connections, kept by the dispatcher. */
  held = 0;
  #base = 0;
  #threshold = Number.POSITIVE_INFINITY;
  /** /proc could be read at least once (Linux). */
  #readable = false;
  readonly #timer: NodeJS.Timeout;

  constructor() {
    this.#recalibrate();
    this.#timer = setInterval(() => this.#recalibrate(), RECALIBRATE_EVERY);
    this.#timer.unref();
  }

  /** Whether one more connection descriptor keeps the primary under its threshold. */
  admit(): boolean {
    return this.#base + this.held < this.#threshold;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #recalibrate(): void {
    const open = openDescriptors();
    const limit = openFilesLimit();
    if (open === undefined) {
      // Reading /proc takes a descriptor. Where it worked before, failing now is the surest
      // sign the table is full: admit nothing until a read succeeds again, rather than
      // everything. Where it never worked (no /proc), there is no guard.
      if (this.#readable && Number.isFinite(this.#threshold)) this.#base = this.#threshold;
      return;
    }
    this.#readable = true;
    this.#base = Math.max(0, open - this.held);
    // Unreadable right after a good read: keep the last limit (a limit lowered at run time,
    // `prlimit`, is seen at the next good read).
    if (limit !== undefined) this.#threshold = Math.floor(limit * FILL);
  }
}
