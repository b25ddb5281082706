import type { Server, Socket } from 'node:net';
import {
  AsyncParallelHook,
  AsyncSeriesBailHook,
  AsyncSeriesHook,
  SyncBailHook,
  SyncHook,
  SyncWaterfallHook,
} from 'tapable';
import { PeekHook } from './peek.js';
import type { Backend, ListenerInfo, Rejection, Session } from './types.js';

/** Creates the server for one listener; `onConnection` must get every client socket. */
export type ServerFactory = (listener: ListenerInfo, onConnection: (socket: Socket) => void) => Server;

/**
 * What a `connect` tap returns: an upstream socket it created (or took from a pool).
 * `readyEvent` is the event the core waits for before piping (`connect` for a fresh TCP socket,
 * `secureConnect` for TLS), or `null` when the socket is connected already.
 */
export interface Dialed {
  socket: Socket;
  readyEvent: 'connect' | 'secureConnect' | null;
}

/** Why `unavailable` was called. */
export interface UnavailableInfo {
  /** Backends in the registry that are `up`, before any candidate filter. */
  up: number;
  /** Backends left after the candidate filters (0 here unless the balancer picked none). */
  candidates: number;
}

/**
 * The hooks of one service, in pipeline order. Taps happen once, when a plugin is applied:
 * tapable recompiles a hook on every tap, so tapping per connection is forbidden.
 * Per-connection hooks are synchronous except `unavailable`, which only runs on the slow path.
 */
export interface ServiceHooks {
  /**
   * listen — once per listener at start, before it binds.
   * Waterfall over the server factory: return a factory that wraps or replaces the previous one
   * (TLS termination, PROXY protocol). Next: `accept` for each connection.
   */
  readonly listen: SyncWaterfallHook<[ServerFactory, ListenerInfo]>;
  /**
   * accept — once per client connection, before anything is read from it.
   * Bail: return a `Rejection` to refuse the session (closed, counted, `closed` still runs);
   * return undefined to let it through. Sees the TCP peer: a PROXY header is not read yet
   * (refuse by the real client in `admit`). Next: `peek`.
   */
  readonly accept: SyncBailHook<[Session], Rejection | undefined | void>;
  /**
   * peek — after `accept`, before `admit`: taps that need the client's first bytes (PROXY
   * header, TLS ClientHello) see them here, bounded in size and time (core/peek.ts). Nothing
   * is read from the client unless a tap asks for bytes. Next: `admit`.
   */
  readonly peek: PeekHook;
  /**
   * admit — once per session after `peek` (right after `accept` when nothing peeks): the
   * client is identified — `session.remoteAddress` is the real client when a PROXY header gave
   * one, `session.tls` is set when a ClientHello was parsed. Bail: return a `Rejection` to
   * refuse (per-source limits, allow lists); undefined lets it through. Next: `route`.
   */
  readonly admit: SyncBailHook<[Session], Rejection | undefined | void>;
  /**
   * route — once per session after `admit`, in the service whose listener accepted it; not
   * called when nothing taps it. Bail: return the name of a service to send the session to
   * that service's pool (its `candidates` … `established` hooks, balancer, health checks,
   * breakers, connect timeout and retries then apply; `session.pool` names it), a `Rejection`
   * to refuse (no route for this client), or undefined to stay in this service. Its own name
   * also stays. An unknown name fails the session (`internal-error`, detail `route`): route
   * plugins check their targets at config load. Next: `candidates` of the chosen pool.
   */
  readonly route: SyncBailHook<[Session], string | Rejection | undefined | void>;
  /**
   * The hooks from `candidates` to `connectFailed` run in the session's pool (`session.pool`):
   * the listening service itself, or the service a `route` tap chose. `established` and
   * `closed` run in the pool, then in the listening service when they differ.
   *
   * candidates — per connect attempt. Waterfall over the backends in state `up` (minus, on a
   * retry, those this session already failed on while others remain). Return the same array or
   * a filtered copy in the same order — never mutate the one received (balancers compare it
   * with `backends.up` by reference and walk both in order). Next: `select`.
   */
  readonly candidates: SyncWaterfallHook<[Backend[], Session]>;
  /**
   * select — per connect attempt, after `candidates`. Exactly one balancer plugin taps it.
   * Bail: return one of the candidates. An empty candidate list or no answer leads to
   * `unavailable`. What a balancer may rely on and must do: `BalancerSelect` in the plugin SDK
   * (docs/plugin-sdk.md, "Writing a balancer"). Next: `connect`.
   */
  readonly select: SyncBailHook<[Backend[], Session], Backend | undefined | void>;
  /**
   * unavailable — when no backend could be selected. Async (only on this slow path; skipped
   * when nothing taps it). Bail: return `'retry'` to run `candidates`/`select` again (a
   * queue plugin resolves once a slot frees), a `Rejection` to refuse with that reason, or
   * undefined to refuse with reason `no-backend`.
   */
  readonly unavailable: AsyncSeriesBailHook<
    [Session, UnavailableInfo],
    'retry' | Rejection | undefined | void
  >;
  /**
   * connect — per connect attempt, after `select` (`session.backend` is set). Bail: return a
   * `Dialed` to supply the upstream socket (pool, TLS); undefined lets the core dial TCP.
   * Next: `established`, or `connectFailed`.
   */
  readonly connect: SyncBailHook<[Session, Backend], Dialed | undefined | void>;
  /**
   * connectFailed — a connect attempt failed (refused, timeout, reset, TLS handshake). The
   * core retries on another backend afterwards while attempts remain. Next: `candidates`
   * (retry) or `closed`.
   */
  readonly connectFailed: SyncHook<[Session, Backend, Error]>;
  /**
   * established — the upstream is ready; piping starts right after the taps return.
   * Next: `closed`.
   */
  readonly established: SyncHook<[Session]>;
  /**
   * closed — once per session, after both sockets are closed; `closeReason`, bytes and
   * `endedAt` are final. Runs for refused sessions too (`session.backend` may be null).
   */
  readonly closed: SyncHook<[Session]>;
  /** backendAdded — a backend joined the registry (config load or at run time). */
  readonly backendAdded: SyncHook<[Backend]>;
  /** backendRemoved — a backend left the registry; its sessions may still be running. */
  readonly backendRemoved: SyncHook<[Backend]>;
  /**
   * backendChanged — weight, state (e.g. `up` ↔ `draining`), spec (a discovery source changed
   * its TLS fields: a new `backend.spec` object) or origin of a backend changed.
   */
  readonly backendChanged: SyncHook<[Backend]>;
  /**
   * backendWeight — `backend.effectiveWeight` changed: a modifier set its factor
   * (`backends.setWeightFactor`, e.g. a slow-start ramp step) or the weight was set (which
   * fires `backendChanged` too). Balancers that cache something derived from weights (a hash
   * table, an "all weights equal" flag) refresh it here; the others read `effectiveWeight` live.
   */
  readonly backendWeight: SyncHook<[Backend]>;
  /**
   * backendStatus — a plugin changed `backend.status[source]` (health up/down, breaker
   * open/closed, ...). Fired by `service.setBackendStatus`, once per actual change, and by
   * `service.clearBackendStatus` with status `''` when a source withdraws its status.
   * Lets plugins react to each other (a passing health check closes a breaker).
   */
  readonly backendStatus: SyncHook<[Backend, string, string]>;
  /**
   * backendPeerStatus — cluster workers only: the other workers' merged status of a backend
   * for `source` changed (`backend.peerStatus`), e.g. a breaker opened in another worker.
   * Arrives with the primary's peer view every ~500 ms. Lets a plugin act on what its
   * instances in other workers decided (circuit-breaker ejects there too).
   */
  readonly backendPeerStatus: SyncHook<[Backend, string, string]>;
  /** start — after all plugins are applied, before listeners bind. Start timers and servers here. */
  readonly start: AsyncParallelHook<[]>;
  /** stop — after listeners closed and sessions drained. Stop timers, close servers, in tap order. */
  readonly stop: AsyncSeriesHook<[]>;
}

/** Where a contained tap's exception is reported: the hook, the tap's (plugin's) name, the error. */
export type TapErrorReporter = (hook: string, tap: string, err: unknown) => void;

/**
 * The hooks that tell plugins what happened (registry changes, statuses). Their callers are
 * timers, IPC handlers and admin routes that must finish what they were doing, so each tap runs
 * contained: an exception is reported with the tap's name and the other taps still run.
 */
export const CONTAINED_HOOKS = [
  'backendAdded',
  'backendRemoved',
  'backendChanged',
  'backendWeight',
  'backendStatus',
  'backendPeerStatus',
] as const satisfies readonly (keyof ServiceHooks)[];

const defaultReporter: TapErrorReporter = (hook, tap, err) => {
  console.error(`switchyard: a "${hook}" tap of "${tap}" threw; the other taps still ran`, err);
};

/**
 * The hooks of one service. `onTapError` hears of exceptions from the taps of
 * `CONTAINED_HOOKS`; the per-connection hooks are contained where the pipeline calls them
 * (the session closes with `internal-error`, or the call goes on for `connectFailed` and
 * `closed`), and `listen`, `start` and `stop` fail the start or stop they belong to.
 */
export function createServiceHooks(onTapError: TapErrorReporter = defaultReporter): ServiceHooks {
  const hooks: ServiceHooks = Object.freeze({
    listen: new SyncWaterfallHook<[ServerFactory, ListenerInfo]>(['factory', 'listener']),
    accept: new SyncBailHook<[Session], Rejection | undefined | void>(['session']),
    peek: new PeekHook(),
    admit: new SyncBailHook<[Session], Rejection | undefined | void>(['session']),
    route: new SyncBailHook<[Session], string | Rejection | undefined | void>(['session']),
    candidates: new SyncWaterfallHook<[Backend[], Session]>(['backends', 'session']),
    select: new SyncBailHook<[Backend[], Session], Backend | undefined | void>(['candidates', 'session']),
    unavailable: new AsyncSeriesBailHook<[Session, UnavailableInfo], 'retry' | Rejection | undefined | void>([
      'session',
      'info',
    ]),
    connect: new SyncBailHook<[Session, Backend], Dialed | undefined | void>(['session', 'backend']),
    connectFailed: new SyncHook<[Session, Backend, Error]>(['session', 'backend', 'error']),
    established: new SyncHook<[Session]>(['session']),
    closed: new SyncHook<[Session]>(['session']),
    backendAdded: new SyncHook<[Backend]>(['backend']),
    backendRemoved: new SyncHook<[Backend]>(['backend']),
    backendChanged: new SyncHook<[Backend]>(['backend']),
    backendWeight: new SyncHook<[Backend]>(['backend']),
    backendStatus: new SyncHook<[Backend, string, string]>(['backend', 'source', 'status']),
    backendPeerStatus: new SyncHook<[Backend, string, string]>(['backend', 'source', 'status']),
    start: new AsyncParallelHook<[]>([]),
    stop: new AsyncSeriesHook<[]>([]),
  });
  for (const name of CONTAINED_HOOKS) contain(hooks[name], name, onTapError);
  return hooks;
}

/** Wraps every tap of a sync hook, present and future, in a try/catch that reports and goes on. */
function contain(hook: SyncHook<any>, name: string, report: TapErrorReporter): void {
  hook.intercept({
    register(tap) {
      const fn = tap.fn as (...args: unknown[]) => unknown;
      return {
        ...tap,
        fn: (...args: unknown[]) => {
          try {
            return fn(...args);
          } catch (err) {
            report(name, tap.name, err);
            return undefined;
          }
        },
      };
    },
  });
}
