import type { CloseReason, Service, Session } from '../../plugin-sdk/index.js';
import type { KeepAliveOptions } from './options.js';

/** Key of the per-session clock in `session.data`. */
const CLOCK = 'keep-alive';

/** Why a session was closed; becomes `closeDetail` next to the reason `idle-timeout`. */
export type SideTimeoutDetail = 'client-idle' | 'upstream-idle' | 'client-fin' | 'upstream-fin';

/**
 * What the sweep remembers of one session: bytes read from each side at the last look and
 * when that count last moved; whether each side's FIN has been seen. Plain fields, one
 * allocation per established session, no per-chunk work: `socket.bytesRead` is kept by Node.
 */
class ReadClock {
  clientFin = false;
  upstreamFin = false;
  constructor(
    public clientRead: number,
    public clientAt: number,
    public upstreamRead: number,
    public upstreamAt: number,
  ) {}
}

type Closable = Session & { close(reason: CloseReason, detail: string | null): void };

/**
 * Per-side read-inactivity and half-close timeouts (HAProxy `timeout client` / `timeout server`
 * / `client-fin` / `server-fin`), checked by one sweep per service instead of per-socket timers:
 * a socket timer counts writes too, so it cannot tell "the client is silent" from "the backend
 * keeps talking to a silent client". The sweep reads `bytesRead` of both sockets; a timeout
 * fires between `limit` and `limit + tick` after the last byte.
 */
export class SideTimeouts {
  /** Silence allowed from each side while both directions are open (0 = unlimited). */
  readonly #clientIdle: number;
  readonly #upstreamIdle: number;
  /** Silence allowed from the side still open once the other has finished. */
  readonly #clientFin: number;
  readonly #upstreamFin: number;
  /** Sweep period, ms. */
  readonly tick: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly service: Service,
    options: KeepAliveOptions,
  ) {
    this.#clientIdle = options.client_idle_timeout;
    this.#upstreamIdle = options.upstream_idle_timeout;
    // HAProxy: an unset *-fin timeout falls back to the side's normal timeout.
    this.#clientFin = options.client_fin_timeout || options.client_idle_timeout;
    this.#upstreamFin = options.upstream_fin_timeout || options.upstream_idle_timeout;
    const limits = [this.#clientIdle, this.#upstreamIdle, this.#clientFin, this.#upstreamFin].filter(
      (ms) => ms > 0,
    );
    this.tick = limits.length === 0 ? 0 : Math.min(1000, Math.max(10, Math.floor(Math.min(...limits) / 10)));
  }

  /** False when every timeout is off: no clock per session, no sweep. */
  get enabled(): boolean {
    return this.tick > 0;
  }

  /** Starts the clock of a session that just got its upstream (`established`). */
  track(session: Session): void {
    const at = session.connectedAt;
    session.data[CLOCK] = new ReadClock(session.client.bytesRead, at, session.upstream!.bytesRead, at);
  }

  start(): void {
    if (!this.enabled || this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.sweep(Date.now()), this.tick);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One pass over the service's sessions; closes those past a limit. Returns how many. */
  sweep(now: number): number {
    let closed = 0;
    for (const session of this.service.sessions.values()) {
      // A session routed to another service's pool is timed by that pool's keep-alive, which
      // set its clock (`established` runs in the pool).
      if (session.pool !== this.service) continue;
      const clock = session.data[CLOCK] as ReadClock | undefined;
      if (clock === undefined) continue;
      const { client, upstream } = session;
      if (upstream === null || client.destroyed || upstream.destroyed) continue;

      let n = client.bytesRead;
      if (n !== clock.clientRead) {
        clock.clientRead = n;
        clock.clientAt = now;
      }
      n = upstream.bytesRead;
      if (n !== clock.upstreamRead) {
        clock.upstreamRead = n;
        clock.upstreamAt = now;
      }
      // A FIN restarts the other side's clock: from then on its silence is measured.
      const clientDone = client.readableEnded;
      const upstreamDone = upstream.readableEnded;
      if (clientDone && !clock.clientFin) {
        clock.clientFin = true;
        clock.upstreamAt = now;
      }
      if (upstreamDone && !clock.upstreamFin) {
        clock.upstreamFin = true;
        clock.clientAt = now;
      }
      if (clientDone && upstreamDone) continue; // both finished: the core is closing it

      let detail: SideTimeoutDetail | null = null;
      if (!clientDone) {
        const limit = upstreamDone ? this.#clientFin : this.#clientIdle;
        if (limit > 0 && now - clock.clientAt >= limit) detail = upstreamDone ? 'client-fin' : 'client-idle';
      }
      if (detail === null && !upstreamDone) {
        const limit = clientDone ? this.#upstreamFin : this.#upstreamIdle;
        if (limit > 0 && now - clock.upstreamAt >= limit)
          detail = clientDone ? 'upstream-fin' : 'upstream-idle';
      }
      if (detail !== null) {
        // A FIN already set the tentative reason `client-closed` / `backend-closed`; the
        // session ends because of this timeout, so say so.
        session.closeReason = 'idle-timeout';
        session.closeDetail = detail;
        (session as Closable).close('idle-timeout', detail);
        closed++;
      }
    }
    return closed;
  }
}
