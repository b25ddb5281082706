import type { Server } from 'node:net';
import type { Logger } from 'pino';

/**
 * Descriptors that plugins' own listeners (the admin API, demo backends: anything that is not
 * a proxied session) may hold at once, in total. They come out of the descriptors the session
 * budget leaves aside (FD_RESERVE in capacity.ts); the rest of that reserve is for the process
 * itself (stdio, event loop, log and state files, listening sockets, health-check probes).
 */
export const LISTENER_RESERVE = 128;

/** Between two warnings about one listener refusing connections at its cap. */
const LOG_INTERVAL = 10_000;

/** One plugin listener's share of LISTENER_RESERVE, with what it did at its cap. */
export interface ListenerShare {
  /** Who holds it, as shown in errors, logs and metrics: e.g. `admin-api`, `demo-backends 127.0.0.1:9001`. */
  readonly name: string;
  /** Connections it may hold at once; more are closed as soon as they are accepted. */
  readonly maxConnections: number;
  /** Connections open now (once `guard` was called). */
  active: number;
  /** Connections closed at accept because `active` had reached `maxConnections`. */
  refused: number;
}

/**
 * Plugin listeners' connection caps, which must fit in LISTENER_RESERVE together: an admin API
 * that takes every descriptor leaves proxied connections to be accepted and dropped unseen
 * (HAProxy gives its stats frontend its own `maxconn` for this reason). A plugin `reserve`s its
 * share in `apply`; the runtime `check`s the total before anything starts; the plugin `guard`s
 * its server with the share when it listens.
 */
export class ListenerBudget {
  readonly #shares: ListenerShare[] = [];

  constructor(
    private readonly log: Logger,
    /** What the shares may add up to. */
    readonly reserve = LISTENER_RESERVE,
  ) {}

  /** Every share reserved so far (read by the metrics plugin). */
  get shares(): readonly ListenerShare[] {
    return this.#shares;
  }

  /** Reserves `maxConnections` descriptors for the listener `name`. Call from a plugin's `apply`. */
  reserveShare(name: string, maxConnections: number): ListenerShare {
    if (!Number.isInteger(maxConnections) || maxConnections < 1)
      throw new Error(`${name}: max_connections must be a positive integer, not ${maxConnections}`);
    const share: ListenerShare = { name, maxConnections, active: 0, refused: 0 };
    this.#shares.push(share);
    return share;
  }

  /** A sentence saying which listeners take more than the reserve, or undefined when they fit. */
  check(): string | undefined {
    const total = this.#shares.reduce((sum, s) => sum + s.maxConnections, 0);
    if (total <= this.reserve) return undefined;
    const parts = this.#shares.map((s) => `${s.name} ${s.maxConnections}`).join(', ');
    return (
      `plugin listeners may hold ${total} connections at once (${parts}), more than the ` +
      `${this.reserve} descriptors the process keeps for them; lower their max_connections ` +
      '(the rest of the open files limit goes to proxied sessions, two descriptors each)'
    );
  }

  /**
   * Enforces the share on a server: Node closes connections past `server.maxConnections` as
   * soon as they are accepted ('drop'); each is counted, with one warning per interval.
   */
  guard(share: ListenerShare, server: Server): void {
    server.maxConnections = share.maxConnections;
    let lastLog = 0;
    server.on('connection', (socket) => {
      share.active++;
      socket.once('close', () => share.active--);
    });
    server.on('drop', () => {
      share.refused++;
      const now = Date.now();
      if (now - lastLog < LOG_INTERVAL) return;
      lastLog = now;
      this.log.warn(
        { listener: share.name, maxConnections: share.maxConnections, refusedSoFar: share.refused },
        'listener at its max_connections: refusing new connections',
      );
    });
  }
}
