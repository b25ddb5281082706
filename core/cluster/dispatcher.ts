import { createServer, type Server } from 'node:net';
import type { Logger } from 'pino';
import { formatAddress, parseListenAddress } from '../address.js';
import type { SwitchyardConfig } from '../config/types.js';
import { listenOn } from '../listen.js';
import { noDelayOnListener } from '../listener-nodelay.js';
import { LISTEN_BACKLOG } from '../os-limits.js';
import { FdGuard } from './fd-guard.js';
import type { ToWorker } from './messages.js';

/** A connection as libuv hands it to `onconnection`: Node's native TCP handle. */
interface ClientHandle {
  close(): void;
  /** RST instead of FIN (what `socket.resetAndDestroy()` calls). */
  reset?(callback: () => void): number;
}

/** One listen address of the primary (rr): accepts, and hands each connection to a worker. */
interface PrimaryListener {
  readonly key: string;
  readonly service: string;
  readonly server: Server;
  address: string;
  /** Sent with every connection of this listener (one object, serialized per send). */
  message: ToWorker & { t: 'conn' };
}

/** A worker as the dispatcher sees it. */
interface Target {
  readonly id: number;
  send(message: ToWorker, handle: ClientHandle, callback: (err: Error | null) => void): void;
  /** Connections written to it. */
  sent: number;
  /** From its last stats report: sessions held, its budget, connections it had received by then. */
  active: number;
  limit: number;
  handed: number;
  /** Handles whose send has not completed, in send order (callbacks run in that order). */
  readonly pending: Array<{ handle: ClientHandle; listener: PrimaryListener }>;
  /** Its channel closed: it gets nothing more, and late send callbacks are ignored. */
  gone: boolean;
  readonly onSent: (err: Error | null) => void;
}

const noop = () => {};
const SATURATION_LOG_EVERY = 10_000;

/**
 * `scheduling: rr`: the primary accepts every connection and hands its descriptor to the
 * workers in turn over IPC, skipping workers at their session budget (node:cluster's
 * round-robin does the same hand-off, but its queue in the primary has no bound, and at the
 * primary's open-files limit libuv drops connections that nobody counts). Here nothing is
 * dropped uncounted: a connection is refused with a reset, and counted as `overloaded` in its
 * service, when every worker is at its budget or the primary nears its own open-files limit
 * (FdGuard). A connection whose worker exits before receiving it goes to another worker; one
 * that arrives while no worker listens (start, all of them gone at once) waits for the first.
 *
 * The raw handle is sent, as node:cluster's round_robin_handle.js does: no `net.Socket` is
 * built in the primary, and its copy of the descriptor is closed as soon as the IPC write is
 * done. That needs the listening handle's `onconnection` (an internal of node:net, the one
 * node:cluster replaces too).
 */
export class Dispatcher {
  readonly #listeners = new Map<string, PrimaryListener>();
  readonly #targets: Target[] = [];
  #next = 0;
  readonly #guard = new FdGuard();
  /** Refused in the primary, per service. */
  readonly #refused = new Map<string, number>();
  #saturated = false;
  /** The warning of the current saturation was logged (so its end is logged too). */
  #saturationLogged = false;
  #saturationLoggedAt = 0;
  #acceptErrors = 0;
  /**
   * Accepted while no worker listens (the first ones still starting, or every worker gone at
   * once): handed out when one listens, as node:cluster's round-robin queue does, instead of
   * reset. Bounded by the descriptor guard; refused (counted) past it or when the cluster stops.
   */
  readonly #waiting: Array<{ handle: ClientHandle; listener: PrimaryListener }> = [];
  #closed = false;

  constructor(private readonly log: Logger) {}

  /**
   * Listens on every listen address of `config` not listened on yet (a reload keeps the others
   * open: nothing is refused while the generations change); returns the bound addresses.
   */
  async listen(config: SwitchyardConfig): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const service of config.services) {
      out[service.name] = [];
      for (const [index, address] of service.listen.entries()) {
        const key = `${service.name}\u0000${address}`;
        let listener = this.#listeners.get(key);
        if (listener === undefined) {
          listener = await this.#open(key, service.name, address, service.tcp_nodelay);
          this.#listeners.set(key, listener);
        }
        listener.message = { t: 'conn', service: service.name, index };
        out[service.name]!.push(listener.address);
      }
    }
    return out;
  }

  /** After a reload: stops listening on addresses the new config dropped. */
  closeUnlisted(config: SwitchyardConfig): void {
    const keep = new Set(config.services.flatMap((s) => s.listen.map((a) => `${s.name}\u0000${a}`)));
    for (const [key, listener] of this.#listeners) {
      if (keep.has(key)) continue;
      listener.server.close();
      this.#listeners.delete(key);
    }
  }

  /** Graceful stop: no new connections (refused by the kernel once the sockets close). */
  close(): void {
    this.#closed = true;
    for (const listener of this.#listeners.values()) listener.server.close();
    this.#listeners.clear();
    const waiting = this.#waiting.splice(0);
    this.#guard.held -= waiting.length;
    for (const { handle, listener } of waiting) this.#refuse(listener, handle);
    this.#guard.stop();
  }

  /** A worker listens (its listeners are ready): it takes connections from now on. */
  add(
    id: number,
    limit: number | null,
    send: (message: ToWorker, handle: ClientHandle, callback: (err: Error | null) => void) => void,
  ): void {
    if (this.#targets.some((t) => t.id === id)) return;
    const target: Target = {
      id,
      send,
      sent: 0,
      active: 0,
      limit: limit ?? Number.POSITIVE_INFINITY,
      handed: 0,
      pending: [],
      gone: false,
      onSent: (err) => this.#sent(target, err),
    };
    this.#targets.push(target);
    this.#checkRoom();
    const waiting = this.#waiting.splice(0);
    this.#guard.held -= waiting.length;
    for (const { handle, listener } of waiting) this.#dispatch(listener, handle);
  }

  /** A worker retires (reload, stop): no more connections for it. */
  remove(id: number): void {
    const i = this.#targets.findIndex((t) => t.id === id);
    if (i >= 0) this.#targets.splice(i, 1);
  }

  /**
   * A worker exited (or its channel closed). node:child_process sends one handle at a time
   * and queues the rest until the receiver acknowledges; a dead receiver never does, and the
   * queued sends never call back. Those connections are still the primary's: they go to
   * another worker (or are refused, counted, when none is left).
   */
  gone(id: number): void {
    const target = this.#targets.find((t) => t.id === id);
    this.remove(id);
    if (target === undefined || target.gone) return;
    target.gone = true;
    const stranded = target.pending.splice(0);
    this.#guard.held -= stranded.length;
    for (const { handle, listener } of stranded) this.#dispatch(listener, handle);
  }

  /** A worker's stats report: what it holds, and how many connections it had received. */
  report(id: number, active: number, limit: number | null, handed: number): void {
    const target = this.#targets.find((t) => t.id === id);
    if (target === undefined) return;
    target.active = active;
    target.limit = limit ?? Number.POSITIVE_INFINITY;
    target.handed = handed;
    this.#checkRoom();
  }

  /** Connections refused in the primary for `service` (added to its `overloaded` counter). */
  refused(service: string): number {
    return this.#refused.get(service) ?? 0;
  }

  async #open(key: string, service: string, address: string, noDelay: boolean): Promise<PrimaryListener> {
    const parsed = parseListenAddress(address);
    if (typeof parsed === 'string') throw new Error(`listener ${address}: ${parsed}`);
    const server = createServer();
    await listenOn(server, { host: parsed.host, port: parsed.port, backlog: LISTEN_BACKLOG }, address);
    server.on('error', (err) => this.log.error({ err, listener: address }, 'listener error'));
    // Accepted connections inherit it (Linux): the workers need not set it on each.
    if (noDelay) noDelayOnListener(server);
    const bound = server.address() as { address: string; port: number };
    const listener: PrimaryListener = {
      key,
      service,
      server,
      address: formatAddress(bound.address, bound.port),
      message: { t: 'conn', service, index: 0 },
    };
    const handle = (server as Server & { _handle: { onconnection: unknown } | null })._handle;
    if (handle === null || typeof handle.onconnection !== 'function')
      throw new Error(
        'scheduling: rr needs node:net listening handles with onconnection (use reuseport or none)',
      );
    handle.onconnection = (err: number, client: ClientHandle | undefined) =>
      this.#onConnection(listener, err, client);
    return listener;
  }

  #onConnection(listener: PrimaryListener, err: number, handle: ClientHandle | undefined): void {
    if (err !== 0 || handle === undefined) {
      // Accept failed (the kernel's or libuv's): nothing reached us to count per service.
      if (this.#acceptErrors++ % 1000 === 0)
        this.log.warn(
          { listener: listener.address, errno: err, errors: this.#acceptErrors },
          'accept failed',
        );
      return;
    }
    this.#dispatch(listener, handle);
  }

  #dispatch(listener: PrimaryListener, handle: ClientHandle): void {
    if (this.#targets.length === 0 && !this.#closed && this.#guard.admit()) {
      this.#guard.held++;
      this.#waiting.push({ handle, listener });
      return;
    }
    const target = this.#guard.admit() ? this.#pick() : undefined;
    if (target === undefined) {
      this.#refuse(listener, handle);
      return;
    }
    target.sent++;
    this.#guard.held++;
    target.pending.push({ handle, listener });
    target.send(listener.message, handle, target.onSent);
  }

  /** Round-robin over the workers, skipping any at its budget (estimated: report + sent since). */
  #pick(): Target | undefined {
    const n = this.#targets.length;
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n;
      const t = this.#targets[i]!;
      if (t.active + t.sent - t.handed < t.limit) {
        this.#next = i + 1 >= n ? 0 : i + 1;
        return t;
      }
    }
    if (n > 0) this.#saturation(true);
    return undefined;
  }

  /** The IPC write finished (or failed): the worker holds the descriptor now, or never will. */
  #sent(target: Target, err: Error | null): void {
    if (target.gone) return; // its pending handles were dispatched again
    const item = target.pending.shift();
    if (item === undefined) return;
    this.#guard.held--;
    if (err === null) {
      // The descriptor travels inside the written message; the primary's copy can go.
      item.handle.close();
      return;
    }
    // The channel is closed: this worker is gone; this connection and the queued ones go elsewhere.
    target.sent--;
    target.pending.unshift(item);
    this.#guard.held++;
    this.gone(target.id);
  }

  /** A reset (the client learns at once, no TIME_WAIT here), counted in the service. */
  #refuse(listener: PrimaryListener, handle: ClientHandle): void {
    this.#refused.set(listener.service, (this.#refused.get(listener.service) ?? 0) + 1);
    if (handle.reset === undefined || handle.reset(noop) !== 0) handle.close();
  }

  #checkRoom(): void {
    if (this.#saturated && this.#targets.some((t) => t.active + t.sent - t.handed < t.limit))
      this.#saturation(false);
  }

  /** Logs when every worker is full (at most once per 10 s) and when one has room again. */
  #saturation(saturated: boolean): void {
    if (saturated === this.#saturated) return;
    this.#saturated = saturated;
    if (!saturated) {
      if (this.#saturationLogged) this.log.info('workers have room again');
      this.#saturationLogged = false;
      return;
    }
    const now = Date.now();
    if (now - this.#saturationLoggedAt < SATURATION_LOG_EVERY) return;
    this.#saturationLoggedAt = now;
    this.#saturationLogged = true;
    this.log.warn(
      { refusedSoFar: [...this.#refused.values()].reduce((a, b) => a + b, 0) },
      'every worker is at its session limit: refusing new connections',
    );
  }
}
