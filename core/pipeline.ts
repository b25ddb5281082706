import { connect as netConnect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { BackendRegistry } from './backend-registry.js';
import type { Capacity } from './capacity.js';
import { type PipelineCounters, zeroCounters } from './counters.js';
import type { ServiceHooks } from './hooks.js';
import { forwardPeeked, startPeek, stopPeek } from './peek-stage.js';
import { SessionImpl as CoreSession, type SessionSocket as CoreSessionSocket, kSession } from './session.js';
import type { Backend, ListenerInfo, Rejection, ServiceRef } from './types.js';

/** A session of this pipeline (its `pipeline` field is typed as `Pipeline`). */
type SessionImpl = CoreSession<Pipeline>;
type SessionSocket = CoreSessionSocket<Pipeline>;

/** The per-service timing and retry settings the pipeline reads on every session. */
export interface PipelineSettings {
  /** ms; 0 = no limit (the OS decides). */
  connectTimeout: number;
  /** ms of inactivity in both directions before the session is closed; 0 = never. */
  idleTimeout: number;
  /** Connect attempts per session: 1 + retries. */
  maxAttempts: number;
  /** TCP_NODELAY on upstream sockets. */
  noDelay: boolean;
}

/** Finds the pipeline of another service by name, for the `route` step; undefined when unknown. */
export type PoolLookup = (service: string) => Pipeline | undefined;

const NO_POOLS: PoolLookup = () => undefined;

/**
 * accept → peek → admit → route → select → acquire → pipe → release for one service.
 * A session routed to another service's pool is accepted, peeked, admitted and released by
 * the pipeline of the listening service (`session.pipeline`), and selected, dialled and
 * piped by the pool's (`session.target`); both keep it in their session tables. Socket listeners are shared
 * module-level functions that find their session through `socket[kSession]`, so a session
 * costs no closures; hooks are called only when something taps them.
 */
export class Pipeline {
  readonly sessions = new Map<number, SessionImpl>();
  readonly counters: PipelineCounters = zeroCounters();
  /** Set by the service during stop: new connections are closed at once. */
  stopping = false;
  /** Resolves waiters when the session table empties (graceful stop). */
  #emptyWaiters: Array<() => void> = [];
  /** Debug logging on: per-session debug lines are built only then. */
  readonly debug: boolean;
  #idleSweep: NodeJS.Timeout | null = null;

  constructor(
    readonly service: ServiceRef,
    readonly hooks: ServiceHooks,
    readonly registry: BackendRegistry,
    readonly settings: PipelineSettings,
    readonly log: Logger,
    /** Shared by every service of the process. */
    readonly capacity: Capacity,
    /** The pipelines of the other services, for `route` (a service alone: none). */
    readonly pools: PoolLookup = NO_POOLS,
  ) {
    this.debug = log.isLevelEnabled('debug');
  }

  /** Entry point for every client socket of every listener of the service. */
  accept(client: Socket, listener: ListenerInfo): void {
    if (this.stopping) {
      client.destroy();
      return;
    }
    if (this.capacity.active >= this.capacity.limit) {
      this.counters.overloaded++;
      this.capacity.overloaded();
      client.on('error', ignore);
      client.resetAndDestroy();
      return;
    }
    this.capacity.active++;
    client.pause();
    const session: SessionImpl = new CoreSession(this, listener, client);
    (client as SessionSocket)[kSession] = session;
    client.on('error', onClientError);
    client.on('close', onClientClose);
    this.sessions.set(session.id, session);
    this.counters.accepted++;
    // The peer address is a getpeername syscall; `closed` taps (access log) need it after the
    // socket is gone, so read it now only when someone taps `closed`.
    if (this.hooks.closed.isUsed()) void session.remoteAddress;
    if (this.debug) this.log.debug({ session: session.id, client: session.remoteAddress }, 'accepted');

    if (this.hooks.accept.isUsed()) {
      let rejection: Rejection | undefined | void;
      try {
        rejection = this.hooks.accept.call(session);
      } catch (err) {
        this.tapFailed(session, err, 'accept');
        return;
      }
      if (rejection) {
        this.refuse(session, rejection);
        return;
      }
    }
    if (this.hooks.peek.isUsed()) startPeek(this, session);
    else this.admit(session);
  }

  /** After the peek stage (or accept, when nothing peeks): `admit`, then select. */
  admit(session: SessionImpl): void {
    if (this.hooks.admit.isUsed()) {
      let rejection: Rejection | undefined | void;
      try {
        rejection = this.hooks.admit.call(session);
      } catch (err) {
        this.tapFailed(session, err, 'admit');
        return;
      }
      if (rejection) {
        this.refuse(session, rejection);
        return;
      }
    }
    if (this.hooks.route.isUsed()) this.route(session);
    else this.dial(session);
  }

  /**
   * The route step: a tap may hand the session to another service's pool, whose pipeline
   * then selects, dials and pipes it. The session stays in this service's table too (it was
   * accepted here; `release` runs here), as a frontend and a backend both count it in HAProxy.
   */
  route(session: SessionImpl): void {
    let answer: string | Rejection | undefined | void;
    try {
      answer = this.hooks.route.call(session);
    } catch (err) {
      this.tapFailed(session, err, 'route');
      return;
    }
    if (answer === undefined || answer === this.service.name) {
      this.dial(session);
      return;
    }
    if (typeof answer === 'object' && answer !== null) {
      this.refuse(session, answer);
      return;
    }
    const pool = typeof answer === 'string' ? this.pools(answer) : undefined;
    if (pool === undefined) {
      this.tapFailed(session, new Error(`route: no service named ${JSON.stringify(answer)}`), 'route');
      return;
    }
    if (pool.stopping) {
      session.close('shutdown', `pool ${pool.service.name} is stopping`);
      return;
    }
    session.target = pool;
    this.counters.routed++;
    pool.counters.routedIn++;
    pool.sessions.set(session.id, session);
    pool.dial(session);
  }

  /** A plugin threw on this session's path: fail this session only, never the process. */
  tapFailed(session: SessionImpl, err: unknown, phase: string): void {
    this.log.error({ err, session: session.id, phase }, 'a plugin hook threw; closing this session');
    session.close('internal-error', phase);
  }

  /** select + acquire: one connect attempt on a backend picked by the plugins. */
  dial(session: SessionImpl): void {
    if (session.clientClosed) return;
    try {
      this.#dial(session);
    } catch (err) {
      this.tapFailed(session, err, 'connect');
    }
  }

  #dial(session: SessionImpl): void {
    const up = this.registry.up as Backend[];
    let candidates = up;
    if (session.tried !== null) candidates = withoutTried(up, session.tried);
    if (this.hooks.candidates.isUsed()) candidates = this.hooks.candidates.call(candidates, session);
    const backend = candidates.length > 0 ? this.hooks.select.call(candidates, session) : undefined;
    if (!backend) {
      this.unavailable(session, up.length, candidates.length);
      return;
    }

    session.backend = backend;
    session.attempts++;
    backend.active++;
    session.counted = true;

    let upstream: Socket;
    let readyEvent: 'connect' | 'secureConnect' | null = 'connect';
    const dialed = this.hooks.connect.isUsed() ? this.hooks.connect.call(session, backend) : undefined;
    if (dialed) {
      upstream = dialed.socket;
      readyEvent = dialed.readyEvent;
    } else {
      upstream = netConnect({
        host: backend.host,
        port: backend.port,
        allowHalfOpen: true,
        noDelay: this.settings.noDelay,
      });
    }
    session.upstream = upstream;
    (upstream as SessionSocket)[kSession] = session;
    upstream.on('error', onUpstreamError);
    upstream.on('close', onUpstreamClose);
    if (readyEvent === null) {
      this.established(session);
    } else {
      // A plain timer, not socket.setTimeout: that one would stay on the socket after the
      // connect and be refreshed on every chunk for the whole session.
      if (this.settings.connectTimeout > 0)
        session.connectTimer = setTimeout(onConnectTimeout, this.settings.connectTimeout, session);
      upstream.once(readyEvent, onUpstreamReady);
    }
  }

  /** The upstream is ready: start piping both ways. */
  established(session: SessionImpl): void {
    const { client } = session;
    const upstream = session.upstream!;
    session.connectedAt = Date.now();
    session.backend!.total++;
    this.counters.established++;
    clearConnectTimer(session);
    if (this.settings.idleTimeout > 0) {
      session.idleSince = session.connectedAt;
      if (this.#idleSweep === null) this.#startIdleSweep();
    }
    // Routed: the listening service's idle_timeout applies too (the shorter one wins).
    const front = session.pipeline;
    if (front !== this && front.settings.idleTimeout > 0) {
      session.idleSince = session.connectedAt;
      if (front.#idleSweep === null) front.#startIdleSweep();
    }
    if (this.hooks.established.isUsed()) {
      try {
        this.hooks.established.call(session);
      } catch (err) {
        this.tapFailed(session, err, 'established');
        return;
      }
    }
    if (this.debug) this.log.debug({ session: session.id, backend: session.backend!.address }, 'established');
    if (session.peek !== null) forwardPeeked(session, upstream);
    client.on('data', onClientData);
    client.on('end', onClientEnd);
    client.on('drain', onClientDrain);
    upstream.on('data', onUpstreamData);
    upstream.on('end', onUpstreamEnd);
    upstream.on('drain', onUpstreamDrain);
    client.resume();
    upstream.resume();
  }

  /**
   * Idle timeout without a timer per socket (which Node refreshes on every chunk): a sweep
   * compares the bytes read on both sockets with the previous sweep. A session is closed after
   * `idleTimeout` without a byte either way, never earlier, at most two sweep intervals later.
   */
  #startIdleSweep(): void {
    const idle = this.settings.idleTimeout;
    const interval = Math.min(1000, Math.max(10, Math.floor(idle / 4)));
    this.#idleSweep = setInterval(() => {
      const now = Date.now();
      for (const session of this.sessions.values()) {
        if (session.connectedAt === 0 || session.upstream === null) continue;
        const mark = session.client.bytesRead + session.upstream.bytesRead;
        if (mark !== session.idleMark) {
          session.idleMark = mark;
          session.idleSince = now;
        } else if (now - session.idleSince >= idle) {
          session.close('idle-timeout');
        }
      }
    }, interval);
    this.#idleSweep.unref();
  }

  /** Stops the pipeline's own timers (service stop). */
  dispose(): void {
    if (this.#idleSweep !== null) clearInterval(this.#idleSweep);
    this.#idleSweep = null;
  }

  /** A connect attempt failed: tell plugins, then retry elsewhere or give up. */
  connectFailed(session: SessionImpl, upstream: Socket, error: Error): void {
    clearConnectTimer(session);
    const backend = session.backend!;
    upstream.destroy();
    session.upstream = null;
    this.uncount(session);
    backend.connectFailures++;
    this.counters.connectFailures++;
    if (session.tried === null) session.tried = [backend];
    else session.tried.push(backend);
    if (this.hooks.connectFailed.isUsed()) {
      try {
        this.hooks.connectFailed.call(session, backend, error);
      } catch (err) {
        this.log.error({ err, session: session.id }, 'a connectFailed hook threw');
      }
    }
    if (this.debug)
      this.log.debug({ session: session.id, backend: backend.address, err: error.message }, 'connect failed');
    if (session.clientClosed) {
      release(session);
      return;
    }
    if (session.attempts < this.settings.maxAttempts && !this.stopping) {
      this.counters.retries++;
      this.dial(session);
    } else {
      session.close('connect-failed', (error as NodeJS.ErrnoException).code ?? error.message);
    }
  }

  /** No backend selected: let plugins queue or refuse, else refuse with `no-backend`. */
  unavailable(session: SessionImpl, up: number, candidates: number): void {
    if (!this.hooks.unavailable.isUsed()) {
      this.noBackend(session, up);
      return;
    }
    this.hooks.unavailable.promise(session, { up, candidates }).then(
      (answer) => {
        if (session.clientClosed) return;
        if (answer === 'retry') this.dial(session);
        else if (answer) this.refuse(session, answer);
        else this.noBackend(session, up);
      },
      (err: Error) => {
        this.log.error({ err, session: session.id }, 'an unavailable hook failed');
        this.noBackend(session, up);
      },
    );
  }

  noBackend(session: SessionImpl, up: number): void {
    this.counters.noBackend++;
    if (session.tried !== null) {
      session.close('connect-failed', 'no other backend to retry');
      return;
    }
    this.log.debug({ session: session.id, up }, 'no backend available');
    session.close('no-backend');
  }

  refuse(session: SessionImpl, rejection: Rejection): void {
    this.counters.rejected++;
    if (rejection.reset === true) {
      session.closeReason = 'rejected';
      session.closeDetail = rejection.reason;
      session.client.resetAndDestroy();
    } else {
      session.close('rejected', rejection.reason);
    }
  }

  uncount(session: SessionImpl): void {
    if (session.counted) {
      session.counted = false;
      const backend = session.backend!;
      backend.active--;
      this.registry.released(backend);
    }
  }

  /**
   * Forgets a released session: out of the table, counted as closed, `closed` taps run.
   * Called on the pool first, then on the listening service, when they differ.
   */
  leave(session: SessionImpl): void {
    this.sessions.delete(session.id);
    this.counters.closed++;
    if (this.hooks.closed.isUsed()) {
      try {
        this.hooks.closed.call(session);
      } catch (err) {
        this.log.error({ err, session: session.id }, 'a closed hook threw');
      }
    }
    if (this.sessions.size === 0 && this.#emptyWaiters.length > 0) {
      const waiters = this.#emptyWaiters;
      this.#emptyWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Resolves when no session is left. */
  whenEmpty(): Promise<void> {
    if (this.sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#emptyWaiters.push(resolve));
  }

  /** Closes every session of a backend (drain timeout or force). Returns how many. */
  closeBackendSessions(backend: Backend, reason: 'drained' | 'killed' = 'drained'): number {
    let n = 0;
    for (const session of this.sessions.values()) {
      if (session.backend === backend && session.counted) {
        session.close(reason);
        n++;
      }
    }
    return n;
  }
}

function ignore(): void {}

/** Both sockets are closed: account, run `closed` (pool, then listening service), forget the session. */
function release(session: SessionImpl): void {
  if (session.released) return;
  session.released = true;
  clearConnectTimer(session);
  if (session.peek !== null) stopPeek(session);
  session.endedAt = Date.now();
  session.bytesIn = session.client.bytesRead;
  session.bytesOut = session.client.bytesWritten;
  if (session.closeReason === null) session.closeReason = 'client-closed';
  const backend = session.backend;
  if (backend !== null && session.connectedAt > 0) {
    backend.bytesIn += session.bytesIn;
    backend.bytesOut += session.bytesOut;
  }
  const front = session.pipeline;
  const pool = session.target;
  pool.uncount(session);
  front.capacity.active--;
  if (pool !== front) pool.leave(session);
  front.leave(session);
  if (front.debug) {
    // The service's logger binds `service` already; a second one is a duplicate JSON key.
    const { service: _service, ...line } = session.toJSON();
    front.log.debug(line, 'closed');
  }
}

function withoutTried(up: Backend[], tried: Backend[]): Backend[] {
  const rest = up.filter((b) => !tried.includes(b));
  // With every backend tried once, allow them again rather than fail while retries remain.
  return rest.length > 0 ? rest : up;
}

function sessionOf(socket: Socket): SessionImpl {
  return (socket as SessionSocket)[kSession]!;
}

/** The pipeline that dials and pipes the session: its pool's. */
function poolOf(session: SessionImpl): Pipeline {
  return session.target;
}

// ---- client socket listeners (this = client socket) ----

function onClientData(this: Socket, chunk: Buffer): void {
  if (!sessionOf(this).upstream!.write(chunk)) this.pause();
}

function onClientDrain(this: Socket): void {
  const upstream = sessionOf(this).upstream;
  if (upstream !== null && !upstream.destroyed) upstream.resume();
}

function onClientEnd(this: Socket): void {
  const session = sessionOf(this);
  if (session.closeReason === null) session.closeReason = 'client-closed';
  // Half-close: the backend gets a FIN after everything written so far, and may still answer.
  session.upstream?.end();
}

function onClientError(this: Socket, err: NodeJS.ErrnoException): void {
  const session = sessionOf(this);
  if (session.closeReason === null) {
    session.closeReason = err.code === 'ECONNRESET' ? 'client-reset' : 'client-error';
    session.closeDetail = err.code ?? err.message;
  }
}

function onClientClose(this: Socket, hadError: boolean): void {
  const session = sessionOf(this);
  session.clientClosed = true;
  const upstream = session.upstream;
  if (upstream === null || upstream.destroyed) {
    release(session);
    return;
  }
  if (session.connectedAt === 0) {
    // Client gone while dialling: abandon the attempt.
    if (session.closeReason === null) session.closeReason = 'client-closed';
    upstream.destroy();
  } else if (hadError) {
    upstream.resetAndDestroy();
  } else {
    // Both directions of the client are done; let the upstream flush what it still holds.
    upstream.end();
  }
}

// ---- upstream socket listeners (this = upstream socket) ----

function onUpstreamReady(this: Socket): void {
  const session = sessionOf(this);
  if (session.upstream !== this || session.clientClosed) return;
  poolOf(session).established(session);
}

function onConnectTimeout(session: SessionImpl): void {
  session.connectTimer = null;
  const upstream = session.upstream;
  if (upstream === null || session.connectedAt !== 0 || session.released) return;
  const err: NodeJS.ErrnoException = new Error('connect timeout');
  err.code = 'ETIMEDOUT';
  poolOf(session).connectFailed(session, upstream, err);
}

function clearConnectTimer(session: SessionImpl): void {
  if (session.connectTimer !== null) {
    clearTimeout(session.connectTimer);
    session.connectTimer = null;
  }
}

function onUpstreamData(this: Socket, chunk: Buffer): void {
  if (!sessionOf(this).client.write(chunk)) this.pause();
}

function onUpstreamDrain(this: Socket): void {
  const client = sessionOf(this).client;
  if (!client.destroyed) client.resume();
}

function onUpstreamEnd(this: Socket): void {
  const session = sessionOf(this);
  if (session.closeReason === null) session.closeReason = 'backend-closed';
  session.client.end();
}

function onUpstreamError(this: Socket, err: NodeJS.ErrnoException): void {
  const session = sessionOf(this);
  if (session.upstream !== this) return;
  if (session.connectedAt === 0) {
    poolOf(session).connectFailed(session, this, err);
    return;
  }
  if (session.closeReason === null) {
    session.closeReason = err.code === 'ECONNRESET' ? 'backend-reset' : 'backend-error';
    session.closeDetail = err.code ?? err.message;
  }
}

function onUpstreamClose(this: Socket, hadError: boolean): void {
  const session = sessionOf(this);
  if (session.upstream !== this) return; // an abandoned connect attempt
  if (session.connectedAt === 0) {
    // Closed before ready without an error event (e.g. TLS socket ended during handshake).
    if (!session.clientClosed) {
      const err: NodeJS.ErrnoException = new Error('upstream closed before it was ready');
      err.code = 'ECONNRESET';
      poolOf(session).connectFailed(session, this, err);
      return;
    }
  } else if (!session.clientClosed) {
    if (hadError) session.client.resetAndDestroy();
    else session.client.end();
    return;
  }
  if (session.clientClosed) release(session);
}
