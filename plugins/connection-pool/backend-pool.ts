import { Socket } from 'node:net';
import { createPool, type Factory, type Pool } from 'generic-pool';
import type { Logger } from 'pino';
import type { Backend } from '../../plugin-sdk/index.js';
import { backoffDelay, healthyIdleLife } from './backoff.js';
import { idleTarget } from './idle-target.js';
import type { PoolOptions } from './options.js';
import {
  dial,
  discard,
  entryOf,
  handOver,
  type LossReason,
  type PoolEvents,
  type PooledSocket,
  usable,
} from './pooled-socket.js';

/** What every pool of a service shares. */
export interface PoolSettings extends PoolOptions {
  /** Resolved connect timeout of a pool dial, ms; always > 0 (see poolConnectTimeout). */
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
  /** Connected, unused sockets: in generic-pool's idle list, being validated, or in the hand. */
  idle: number;
  /** Pool connects in flight (not counting creates waiting out a back-off delay). */
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
  /** Warm sockets found unusable on borrow (hand-out or generic-pool validation) and dropped. */
  discardedOnBorrow: number;
  /** Consecutive failures; > 0 means connects are paced by back-off. */
  failures: number;
  /** ms until the next connect is allowed (0 when not backing off). */
  backoffMs: number;
}

/**
 * One open period of a backend's pool: a generic-pool instance and what is in flight for it.
 * Closing drains it for good; opening again makes a new one, so late callbacks of an old
 * period can always tell they are stale.
 */
interface Generation {
  pool: Pool<Socket>;
  closed: boolean;
  started: boolean;
  /** `acquire()` calls (hand refills) not settled yet. */
  acquiring: number;
  /**
   * The single back-off probe has its turn: dialling, or connected and on trial until it
   * proves good or is lost. Connecting alone proves nothing: a backend that overflows or closes
   * every idle socket accepts it first.
   */
  probing: boolean;
  /** The probe's socket (dialling or on trial), and the timer that ends its trial. */
  probe: PooledSocket | null;
  trialTimer: NodeJS.Timeout | undefined;
  /** Creates waiting for their turn (back-off delay, the probe, a stopping service). */
  waiters: Array<() => void>;
  retryTimer: NodeJS.Timeout | undefined;
}

/**
 * The warm sockets of one backend, kept by a generic-pool `Pool<Socket>`:
 *
 * - generic-pool creates sockets up to `min` (= `min_idle`) and for waiting `acquire()`s, up
 *   to `max` (= `max_idle`); validates them on borrow (`testOnBorrow`); closes those idle for
 *   `idle_ttl` (its evictor). `create` dials, after the back-off delay when recent creates
 *   failed (generic-pool itself retries a failed create at once, in a loop).
 * - The `connect` hook is synchronous and `acquire()` is a promise, so a small *hand* of
 *   sockets already acquired waits here. A session takes one synchronously; on the next tick
 *   it is released from generic-pool's accounting with `pool.destroy()` (its `factory.destroy`
 *   skips sockets a session owns), which makes generic-pool create a replacement for `min`,
 *   and the hand acquires the next socket. Every socket serves exactly one session.
 * - The hand's sockets are borrowed, so generic-pool does not watch them: their TTL timer and
 *   close detection are here.
 *
 *   closed ──open──▶ generic-pool fills to min ──acquire──▶ hand ──take──▶ session (never back)
 *     ▲                                                       │
 *     └─ drain + clear (backend down, breaker open/half-open, draining, removed, stop)
 */
export class BackendPool implements PoolEvents {
  #gen: Generation | null = null;
  /** Sockets acquired from generic-pool, ready for a session (acquired order). */
  readonly #hand: PooledSocket[] = [];
  /** Connected, unused sockets, wherever they are (generic-pool's idle list, validation, hand). */
  readonly #idle = new Set<PooledSocket>();
  readonly #connecting = new Set<PooledSocket>();
  /** Sockets the backend closed while in generic-pool's idle list: to sweep out by acquiring. */
  readonly #dead = new Set<Socket>();
  /** Sockets handed to sessions that generic-pool still counts as borrowed. */
  readonly #owned = new Set<Socket>();
  /** Taken from the hand this tick; released from generic-pool on the next (off the session path). */
  readonly #toRelease: Socket[] = [];
  readonly #closing = new Set<Promise<void>>();
  #failures = 0;
  #retryAt = 0;
  /** See healthyIdleLife: lost sooner is a failure; a probe idle this long ends the back-off. */
  readonly #healthy: number;
  #ttlTimer: NodeJS.Timeout | undefined;
  #refillQueued = false;
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
  ) {
    this.#healthy = healthyIdleLife(settings.idle_ttl, settings.backoff_max);
  }

  get open(): boolean {
    return this.#gen !== null;
  }

  /** Opens (prefill soon) or closes (drain now) the pool. */
  setOpen(open: boolean): void {
    if (open === this.open) return;
    if (open) {
      this.#gen = this.#newGeneration();
      this.queueFill();
    } else this.#shut();
  }

  /** A warm socket for one session, or null (then the core dials). Synchronous by design. */
  take(): Socket | null {
    const hand = this.#hand;
    while (hand.length > 0) {
      const entry = hand.shift()!;
      this.#idle.delete(entry);
      this.#toRelease.push(entry.socket);
      const now = Date.now();
      if (usable(entry, now, this.settings.idle_ttl)) {
        this.#hits++;
        if (this.#failures > 0) this.#endBackoff();
        this.#owned.add(entry.socket);
        return handOver(entry);
      }
      this.#discarded++;
      this.#foundDead(entry, now);
      discard(entry);
    }
    this.#misses++;
    return null;
  }

  /** Releases taken sockets and refills the hand after the current callback. */
  queueFill(): void {
    if (this.#refillQueued || this.#gen === null) return;
    this.#refillQueued = true;
    process.nextTick(runRefill, this);
  }

  /**
   * Acquires into the hand: one socket when it is empty, more when the target is above what
   * generic-pool holds (preconnect ratio, or creates that failed: generic-pool refills `min`
   * only when a resource is destroyed, but creates for waiting acquires), and one per dead
   * socket in generic-pool's idle list (validation on borrow destroys it and a replacement is
   * created). One batch at a time.
   */
  refill(): void {
    this.#refillQueued = false;
    const gen = this.#gen;
    if (gen === null) return;
    this.#flushReleases(gen);
    if (!this.settings.running()) return;
    if (!gen.started) {
      gen.started = true;
      gen.pool.start();
    }
    if (gen.acquiring > 0) return;
    const target = this.target();
    const hand = this.#hand.length;
    const want = Math.max(target > 0 && hand === 0 ? 1 : 0, target - gen.pool.size, this.#dead.size);
    const n = Math.min(want, this.settings.max_idle - hand);
    for (let i = 0; i < n; i++) {
      gen.acquiring++;
      gen.pool.acquire().then(
        (socket) => this.#acquired(gen, socket),
        (err: unknown) => this.#acquireFailed(gen, err),
      );
    }
  }

  target(): number {
    return idleTarget(this.settings, this.backend.active);
  }

  // ---- socket events (PoolEvents) ----

  connected(entry: PooledSocket): void {
    if (!this.#connecting.delete(entry)) return;
    const create = entry.create!;
    entry.create = null;
    const gen = this.#gen!;
    if (gen.probe === entry) {
      gen.trialTimer = setTimeout(runTrialOver, this.#healthy, this);
      gen.trialTimer.unref();
    }
    this.#idle.add(entry);
    create.resolve(entry.socket);
    this.queueFill();
  }

  connectFailed(entry: PooledSocket, reason: string): void {
    if (!this.#connecting.delete(entry)) return;
    const create = entry.create!;
    entry.create = null;
    discard(entry);
    this.#dialFailures++;
    this.#failed(reason);
    const gen = this.#gen!;
    if (gen.probe === entry) endProbe(gen);
    create.reject(new Error(`pool connect to ${this.backend.address} failed: ${reason}`));
  }

  lost(entry: PooledSocket, reason: LossReason): void {
    if (!this.#idle.delete(entry)) return;
    discard(entry);
    if (reason === 'overflow') this.#overflowed++;
    else this.#closedByBackend++;
    // Count the failure first: giving a hand socket back below makes generic-pool call `create`
    // for its `min` synchronously, and that create must already see the delay this loss sets.
    this.#countLoss(entry, reason === 'overflow', Date.now());
    const gen = this.#gen!;
    const i = this.#hand.indexOf(entry);
    if (i >= 0) {
      this.#hand.splice(i, 1);
      // Borrowed: give it back as destroyed; generic-pool creates a replacement for `min`.
      gen.pool.destroy(entry.socket).catch(ignore);
    } else this.#dead.add(entry.socket);
    this.queueFill();
  }

  /** Final: drain and never fill again (backend removed, service stopped). */
  close(): void {
    this.#shut();
  }

  /** Settles once every generic-pool instance this pool closed has drained and cleared. */
  closed(): Promise<void> {
    return Promise.all(this.#closing).then(ignore);
  }

  stats(): PoolStats {
    let bufferedBytes = 0;
    for (const e of this.#idle) bufferedBytes += e.buffered;
    return {
      address: this.backend.address,
      open: this.open,
      idle: this.#idle.size,
      connecting: this.#connecting.size,
      bufferedBytes,
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

  /** TTL timer fired: the hand's sockets that reached `idle_ttl` go back to generic-pool destroyed. */
  expire(): void {
    this.#ttlTimer = undefined;
    const gen = this.#gen;
    if (gen === null) return;
    const now = Date.now();
    const ttl = this.settings.idle_ttl;
    const hand = this.#hand;
    for (let i = 0; i < hand.length; ) {
      const entry = hand[i]!;
      if (now - entry.since >= ttl) {
        hand.splice(i, 1);
        gen.pool.destroy(entry.socket).catch(ignore); // counted as expired in #destroyed
      } else i++;
    }
    this.#armTtl();
    this.queueFill();
  }

  /**
   * The probe's trial is over (timer): still idle, it proved good and ends the back-off;
   * otherwise (dropped on borrow, say) it proved nothing and the next create may probe.
   */
  trialOver(): void {
    const gen = this.#gen;
    if (gen === null) return;
    gen.trialTimer = undefined;
    const entry = gen.probe;
    if (entry !== null && this.#idle.has(entry)) this.#endBackoff();
    else endProbe(gen);
  }

  // ---- generic-pool ----

  #newGeneration(): Generation {
    const s = this.settings;
    const gen: Generation = {
      pool: undefined as unknown as Pool<Socket>,
      closed: false,
      started: false,
      acquiring: 0,
      probing: false,
      probe: null,
      trialTimer: undefined,
      waiters: [],
      retryTimer: undefined,
    };
    const factory: Factory<Socket> = {
      create: () => this.#create(gen),
      destroy: (socket) => {
        this.#destroyed(socket);
        return Promise.resolve();
      },
      // Once closed, let everything through: the acquirer destroys it, and drain() settles.
      validate: (socket) => Promise.resolve(gen.closed || this.#valid(socket)),
    };
    gen.pool = createPool(factory, {
      min: Math.min(s.min_idle, s.max_idle),
      max: s.max_idle,
      testOnBorrow: true,
      fifo: true, // oldest first: used before they age out
      autostart: false, // started on the next tick, never inside a hook
      idleTimeoutMillis: s.idle_ttl,
      evictionRunIntervalMillis: Math.max(10, Math.min(1000, Math.floor(s.idle_ttl / 10))),
      numTestsPerEvictionRun: s.max_idle,
      // A waiting acquire is retried after this; longer than one paced connect.
      acquireTimeoutMillis: s.connectTimeout + s.backoff_max + 1000,
    });
    gen.pool.on('factoryCreateError', (err: unknown) => {
      // Already counted and logged by connectFailed; make sure the pool gets back to its target.
      const log = s.log;
      if (log.isLevelEnabled('debug'))
        log.debug({ backend: this.backend.address, err }, 'pool create failed');
      if (gen === this.#gen) this.queueFill();
    });
    gen.pool.on('factoryDestroyError', (err: unknown) => {
      s.log.warn({ backend: this.backend.address, err }, 'connection pool: destroy failed');
    });
    return gen;
  }

  /** generic-pool `create`: waits its turn while backing off, then dials. */
  async #create(gen: Generation): Promise<Socket> {
    const probe = await this.#turn(gen);
    if (gen.closed) return placeholder(); // #shut reset the probe
    return new Promise<Socket>((resolve, reject) => {
      this.#dials++;
      const { host, port } = this.backend;
      const entry = dial(this, host, port, this.settings.connectTimeout, this.settings.max_buffered_bytes);
      entry.create = { resolve, reject };
      // Still ours unless the back-off ended since the turn (then this is a plain dial).
      if (probe && gen.probing && gen.probe === null) gen.probe = entry;
      this.#connecting.add(entry);
    });
  }

  /**
   * Resolves when this create may dial. While creates are failing only one dials at a time
   * (the probe, resolved true), each after the back-off delay, and the next waits until the
   * probe's socket failed (then the new delay) or proved good (then no more back-off):
   * generic-pool calls `create` again as soon as one rejects, and for `min` as soon as a
   * socket is destroyed, so without this it would hammer the backend.
   * Also holds creates while the service is stopping. Resolves false once the pool is closed.
   */
  async #turn(gen: Generation): Promise<boolean> {
    while (!gen.closed) {
      if (this.settings.running()) {
        if (this.#failures === 0) return false;
        if (!gen.probing) {
          const wait = this.#retryAt - Date.now();
          if (wait <= 0) {
            gen.probing = true;
            return true;
          }
          if (gen.retryTimer === undefined) {
            gen.retryTimer = setTimeout(runRetry, wait, gen);
            gen.retryTimer.unref();
          }
        }
      }
      await new Promise<void>((resolve) => gen.waiters.push(resolve));
    }
    return false;
  }

  /** generic-pool `validate` (testOnBorrow). */
  #valid(socket: Socket): boolean {
    if (this.#dead.has(socket)) return false;
    const entry = entryOf(socket);
    if (entry === undefined || !this.#idle.has(entry)) return false;
    const now = Date.now();
    if (usable(entry, now, this.settings.idle_ttl)) return true;
    // A FIN not processed yet, or a socket past idle_ttl (counted as expired when destroyed).
    if (now - entry.since < this.settings.idle_ttl) {
      this.#discarded++;
      this.#foundDead(entry, now); // before generic-pool destroys it and creates for `min`
    }
    return false;
  }

  /**
   * A warm socket found unusable on borrow before its TTL: closed by the backend (its event not
   * run yet) or over the byte limit. Counts like a loss seen by the listeners.
   */
  #foundDead(entry: PooledSocket, now: number): void {
    if (now - entry.since >= this.settings.idle_ttl) return; // expired, not lost
    this.#countLoss(entry, entry.buffered > entry.maxBuffered, now);
  }

  /**
   * A warm socket lost before its TTL, seen by its listeners (`lost`) or on borrow
   * (`#foundDead`): overflow is a failure, a close one if it came too early (`#closedEarly`);
   * a probe lost so has failed its trial, and the next probe waits the new delay.
   */
  #countLoss(entry: PooledSocket, overflow: boolean, now: number): void {
    if (overflow) this.#failed('backend sent more than max_buffered_bytes to an idle socket');
    else this.#closedEarly(entry, now);
    const gen = this.#gen;
    if (gen !== null && gen.probe === entry) endProbe(gen);
  }

  /**
   * The backend closed an idle socket: a failure if it lived less than the healthy idle life
   * (a backend closing on accept, or an idle timeout too short to keep a warm socket), normal
   * otherwise (a server idle timeout; no back-off, refilled at once). See healthyIdleLife.
   */
  #closedEarly(entry: PooledSocket, now: number): void {
    const lived = now - entry.since;
    if (lived < this.#healthy)
      this.#failed(
        `backend closed an idle socket after ${lived} ms (sooner than ${this.#healthy} ms = ` +
          'min(idle_ttl, backoff_max)); if that is its idle timeout, set idle_ttl below it',
      );
  }

  /** generic-pool `destroy`: closes the socket unless a session owns it now. */
  #destroyed(socket: Socket): void {
    if (this.#owned.delete(socket)) return;
    this.#dead.delete(socket);
    const entry = entryOf(socket);
    if (entry === undefined) {
      socket.destroy(); // already discarded, or a placeholder
      return;
    }
    if (this.#idle.delete(entry) && Date.now() - entry.since >= this.settings.idle_ttl) {
      this.#expired++;
      if (this.#failures > 0) this.#endBackoff(); // it lived a full TTL: the backend is fine
    }
    const i = this.#hand.indexOf(entry);
    if (i >= 0) this.#hand.splice(i, 1);
    discard(entry);
  }

  #acquired(gen: Generation, socket: Socket): void {
    gen.acquiring--;
    const entry = entryOf(socket);
    if (gen !== this.#gen || entry === undefined || !this.#idle.has(entry)) {
      // Closed meanwhile, a placeholder, or lost between validation and now.
      gen.pool.destroy(socket).catch(ignore);
    } else {
      this.#hand.push(entry);
      if (this.#ttlTimer === undefined) this.#armTtl();
    }
    if (gen.acquiring === 0) this.queueFill();
  }

  #acquireFailed(gen: Generation, err: unknown): void {
    gen.acquiring--;
    if (gen !== this.#gen) return;
    const log = this.settings.log;
    if (log.isLevelEnabled('debug')) log.debug({ backend: this.backend.address, err }, 'pool acquire failed');
    if (gen.acquiring === 0) this.queueFill();
  }

  #flushReleases(gen: Generation): void {
    const list = this.#toRelease;
    for (const socket of list)
      gen.pool.destroy(socket).catch(() => {
        this.#owned.delete(socket);
      });
    list.length = 0;
  }

  /** Closes every idle and connecting socket now; generic-pool drains and clears behind. */
  #shut(): void {
    const gen = this.#gen;
    if (gen === null) return;
    this.#gen = null;
    gen.closed = true;
    const drained = gen.pool.drain(); // first: no `min` refill from the destroys below
    this.#flushReleases(gen);
    for (const entry of this.#idle) discard(entry);
    this.#idle.clear();
    for (const entry of this.#hand) gen.pool.destroy(entry.socket).catch(ignore);
    this.#hand.length = 0;
    for (const entry of this.#connecting) {
      const create = entry.create!;
      entry.create = null;
      discard(entry);
      create.resolve(placeholder());
    }
    this.#connecting.clear();
    this.#dead.clear();
    clearTimeout(this.#ttlTimer);
    this.#ttlTimer = undefined;
    clearTimeout(gen.retryTimer);
    gen.retryTimer = undefined;
    endProbe(gen);
    this.#failures = 0;
    this.#retryAt = 0;
    const done: Promise<void> = drained
      .then(() => gen.pool.clear())
      .catch((err: unknown) => {
        this.settings.log.warn({ backend: this.backend.address, err }, 'connection pool: drain failed');
      })
      .finally(() => this.#closing.delete(done));
    this.#closing.add(done);
  }

  #armTtl(): void {
    const hand = this.#hand;
    if (hand.length === 0) return;
    let oldest = hand[0]!.since;
    for (const e of hand) if (e.since < oldest) oldest = e.since;
    const wait = Math.max(0, oldest + this.settings.idle_ttl - Date.now());
    this.#ttlTimer = setTimeout(runExpire, wait, this);
    this.#ttlTimer.unref();
  }

  #endBackoff(): void {
    this.#failures = 0;
    this.#retryAt = 0;
    const gen = this.#gen;
    if (gen === null) return;
    clearTimeout(gen.retryTimer);
    gen.retryTimer = undefined;
    endProbe(gen);
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
  }
}

/** The probe's turn is over (failed, proved good, or the pool closed): the next create may take it. */
function endProbe(gen: Generation): void {
  gen.probing = false;
  gen.probe = null;
  clearTimeout(gen.trialTimer);
  gen.trialTimer = undefined;
  wake(gen);
}

/** Resolves every create waiting for its turn; each checks again. */
function wake(gen: Generation): void {
  const waiters = gen.waiters;
  if (waiters.length === 0) return;
  gen.waiters = [];
  for (const resolve of waiters) resolve();
}

/**
 * What `create` answers once the pool is closed: an unconnected, destroyed socket (no handle,
 * no I/O). Rejecting instead would make generic-pool call `create` again at once for every
 * waiting acquire, a loop that starves the event loop; this settles them, so drain() finishes.
 */
function placeholder(): Socket {
  const socket = new Socket();
  socket.destroy();
  return socket;
}

function ignore(): void {}

function runRefill(pool: BackendPool): void {
  pool.refill();
}

/** Retry timer fired: wake the creates waiting out the back-off delay. */
function runRetry(gen: Generation): void {
  gen.retryTimer = undefined;
  wake(gen);
}

function runExpire(pool: BackendPool): void {
  pool.expire();
}

function runTrialOver(pool: BackendPool): void {
  pool.trialOver();
}
