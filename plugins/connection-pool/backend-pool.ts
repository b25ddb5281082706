import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Backend } from '../../plugin-sdk/index.js';
import { backoffDelay } from './backoff.js';
import { idleTarget } from './idle-target.js';
import type { PoolOptions } from './options.js';
import {
  dial,
  discard,
  handOver,
  type LossReason,
  type PoolEvents,
  type PooledSocket,
  usable,
} from './pooled-socket.js';

/** An idle socket the backend closes sooner than this after connecting counts as a failure. */
const EARLY_CLOSE_MS = 1000;

/** What every pool of a service shares. */
export interface PoolSettings extends PoolOptions {
  /** Resolved connect timeout (plugin option or the service's), ms; 0 = none. */
  connectTimeout: number;
  /** False once the service is stopping: no new sockets. */
  running(): boolean;
  log: Logger;
}

/** A snapshot of one backend's pool, for tests, metrics and the admin API. */
export interface PoolStats {
  address: string;
  /** Prefilling: backend up, not draining, no health-check/breaker veto. */
  open: boolean;
  idle: number;
  connecting: number;
  /** Bytes the backend sent to the idle sockets so far (held for their sessions). */
  bufferedBytes: number;
  /** Current target of idle + connecting sockets. */
  target: number;
  /** Sessions given a warm socket / sessions that found none and dialled themselves. */
  hits: number;
  misses: number;
  /** Pool connects started, and those that failed (refused, timeout, reset). */
  dials: number;
  dialFailures: number;
  /** Warm sockets closed by the backend while idle. */
  closedByBackend: number;
  /** Warm sockets closed because they reached `idle_ttl`. */
  expired: number;
  /** Warm sockets whose backend sent more than `max_buffered_bytes` before pairing. */
  overflowed: number;
  /** Warm sockets found unusable on borrow and dropped. */
  discardedOnBorrow: number;
  /** Consecutive failures; > 0 means connects are paced by back-off. */
  failures: number;
  /** ms until the next connect is allowed (0 when not backing off). */
  backoffMs: number;
}

/**
 * The warm sockets of one backend. An idle list in connect order (oldest first, so sockets are
 * used before they age out), plus the connects in flight. Every socket serves exactly one
 * session and is never returned: a raw TCP stream carries its history.
 *
 *   closed ──open──▶ filling ◀──────────────┐
 *     ▲               │ dial                │ hand-over / loss / expiry: refill
 *     │ drain         ▼                     │
 *     └─────────── idle list ───────────────┘
 *   (backend down, breaker open or half-open, draining, removed, stop)
 *
 * Failures (refused, timeout, a backend closing fresh sockets, overflow) switch to one connect
 * at a time, spaced by exponential back-off with jitter; a socket that proves good (handed out,
 * or lived out its TTL) ends the back-off.
 */
export class BackendPool implements PoolEvents {
  readonly #idle: PooledSocket[] = [];
  readonly #connecting = new Set<PooledSocket>();
  #open = false;
  #failures = 0;
  #retryAt = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #ttlTimer: NodeJS.Timeout | undefined;
  #fillQueued = false;
  #hits = 0;
  #misses = 0;
  #dials = 0;
  #dialFailures = 0;
  #closedByBackend = 0;
  #expired = 0;
  #overflowed = 0;
  #discarded = 0;

  constructor(
    readonly backend: Backend,
    private readonly settings: PoolSettings,
  ) {}

  get open(): boolean {
    return this.#open;
  }

  /** Opens (prefill soon) or closes (drain now) the pool. */
  setOpen(open: boolean): void {
    if (open === this.#open) return;
    this.#open = open;
    if (open) this.queueFill();
    else this.drain();
  }

  /** A warm socket for one session, or null (then the core dials). Synchronous by design. */
  take(): Socket | null {
    const idle = this.#idle;
    if (idle.length > 0) {
      const now = Date.now();
      const ttl = this.settings.idle_ttl;
      while (idle.length > 0) {
        const entry = idle.shift()!;
        if (usable(entry, now, ttl)) {
          this.#hits++;
          this.#failures = 0;
          return handOver(entry);
        }
        this.#discarded++;
        discard(entry);
      }
    }
    this.#misses++;
    return null;
  }

  /** Refill after the current callback (never on the session's own path). */
  queueFill(): void {
    if (this.#fillQueued || !this.#open) return;
    this.#fillQueued = true;
    process.nextTick(runQueuedFill, this);
  }

  /** Starts connects until idle + connecting reaches the target (one at a time while failing). */
  fill(): void {
    this.#fillQueued = false;
    if (!this.#open || !this.settings.running()) return;
    let want = this.target() - this.#idle.length - this.#connecting.size;
    if (want <= 0) return;
    if (this.#failures > 0) {
      if (this.#connecting.size > 0) return;
      const wait = this.#retryAt - Date.now();
      if (wait > 0) {
        if (this.#retryTimer === undefined) {
          this.#retryTimer = setTimeout(runRetry, wait, this);
          this.#retryTimer.unref();
        }
        return;
      }
      want = 1;
    }
    const { host, port } = this.backend;
    const { connectTimeout, max_buffered_bytes } = this.settings;
    for (let i = 0; i < want; i++) {
      this.#dials++;
      this.#connecting.add(dial(this, host, port, connectTimeout, max_buffered_bytes));
    }
  }

  target(): number {
    return idleTarget(this.settings, this.backend.active);
  }

  connected(entry: PooledSocket): void {
    if (!this.#connecting.delete(entry)) return;
    if (!this.#open) {
      discard(entry);
      return;
    }
    this.#idle.push(entry);
    if (this.#ttlTimer === undefined) this.#armTtl(entry.since);
    this.fill();
  }

  connectFailed(entry: PooledSocket, reason: string): void {
    if (!this.#connecting.delete(entry)) return;
    discard(entry);
    this.#dialFailures++;
    this.#failed(reason);
  }

  lost(entry: PooledSocket, reason: LossReason): void {
    const i = this.#idle.indexOf(entry);
    if (i < 0) return;
    this.#idle.splice(i, 1);
    discard(entry);
    if (reason === 'overflow') {
      this.#overflowed++;
      this.#failed('backend sent more than max_buffered_bytes to an idle socket');
    } else {
      this.#closedByBackend++;
      // A backend that closes fresh sockets (overloaded, maxconn, deny) would make us spin.
      if (Date.now() - entry.since < EARLY_CLOSE_MS) this.#failed('backend closed a fresh idle socket');
      else this.fill();
    }
  }

  /** Closes every idle and connecting socket and stops timers; the pool may open again. */
  drain(): void {
    for (const entry of this.#idle) discard(entry);
    this.#idle.length = 0;
    for (const entry of this.#connecting) discard(entry);
    this.#connecting.clear();
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    clearTimeout(this.#ttlTimer);
    this.#ttlTimer = undefined;
    this.#failures = 0;
    this.#retryAt = 0;
  }

  /** Final: drain and never fill again (backend removed, service stopped). */
  close(): void {
    this.#open = false;
    this.drain();
  }

  stats(): PoolStats {
    return {
      address: this.backend.address,
      open: this.#open,
      idle: this.#idle.length,
      connecting: this.#connecting.size,
      bufferedBytes: this.#idle.reduce((sum, e) => sum + e.buffered, 0),
      target: this.target(),
      hits: this.#hits,
      misses: this.#misses,
      dials: this.#dials,
      dialFailures: this.#dialFailures,
      closedByBackend: this.#closedByBackend,
      expired: this.#expired,
      overflowed: this.#overflowed,
      discardedOnBorrow: this.#discarded,
      failures: this.#failures,
      backoffMs: this.#failures > 0 ? Math.max(0, this.#retryAt - Date.now()) : 0,
    };
  }

  /** Retry timer fired. */
  retry(): void {
    this.#retryTimer = undefined;
    this.fill();
  }

  /** TTL timer fired: close the sockets that reached `idle_ttl` (the oldest come first). */
  expire(): void {
    this.#ttlTimer = undefined;
    const now = Date.now();
    const ttl = this.settings.idle_ttl;
    const idle = this.#idle;
    let n = 0;
    while (n < idle.length && now - idle[n]!.since >= ttl) discard(idle[n++]!);
    if (n > 0) {
      idle.splice(0, n);
      this.#expired += n;
      this.#failures = 0; // they lived a full TTL: the backend is fine
    }
    if (idle.length > 0) this.#armTtl(idle[0]!.since);
    if (n > 0) this.fill();
  }

  #armTtl(since: number): void {
    const wait = Math.max(0, since + this.settings.idle_ttl - Date.now());
    this.#ttlTimer = setTimeout(runExpire, wait, this);
    this.#ttlTimer.unref();
  }

  #failed(reason: string): void {
    this.#failures++;
    const delay = backoffDelay(this.#failures, this.settings.backoff_base, this.settings.backoff_max);
    this.#retryAt = Date.now() + delay;
    const log = this.settings.log;
    if (this.#failures === 1)
      log.warn(
        { backend: this.backend.address, reason },
        'connection pool: cannot keep warm sockets; backing off',
      );
    else if (log.isLevelEnabled('debug'))
      log.debug(
        { backend: this.backend.address, reason, failures: this.#failures, delay },
        'pool connect failed',
      );
    this.fill();
  }
}

function runQueuedFill(pool: BackendPool): void {
  pool.fill();
}

function runRetry(pool: BackendPool): void {
  pool.retry();
}

function runExpire(pool: BackendPool): void {
  pool.expire();
}
