import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { CloseReason } from './close-reasons.js';

export type { CloseReason };

/** A `host:port` pair as parsed from config or the admin API. IPv6 hosts are stored without brackets. */
export interface HostPort {
  host: string;
  port: number;
}

/** What a user writes for one backend (config file or admin API). */
export interface BackendSpec {
  /** `host:port`, IPv6 as `[::1]:9001`. */
  address: string;
  /** Relative share of new sessions, 1..256. Default 1. */
  weight?: number;
  /** Dial this backend over TLS (used by the tls-upstream plugin). */
  tls?: boolean;
  /** Skip certificate verification when dialling over TLS. Default false. */
  insecure_skip_verify?: boolean;
  /** Extra per-backend options read by plugins (ca, servername, ...). */
  [option: string]: unknown;
}

/**
 * Lifecycle of a backend in the registry.
 * - `up`: takes new sessions (subject to plugins' candidate filters).
 * - `draining`: no new sessions, existing ones continue (removed, or drained by an operator).
 * - `removed`: gone from the registry; the object lives on while its sessions finish.
 */
export type BackendState = 'up' | 'draining' | 'removed';

/** A backend of a service. One object per address for as long as it has sessions. */
export interface Backend {
  /** Canonical `host:port` (IPv6 in brackets); the key in the registry. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Relative share, 1..256, as configured. Changed through the registry so balancers are told. */
  weight: number;
  /**
   * The weight balancers read: `weight` times the factors modifier plugins set with
   * `service.backends.setWeightFactor` (slow-start ramps a new backend from a fraction of its
   * weight). Equals `weight` when no modifier acts; may be fractional; always above 0.
   * Maintained by the core; changes fire `backendWeight`.
   */
  readonly effectiveWeight: number;
  state: BackendState;
  /** The spec this backend was created from (tls fields and plugin options). */
  spec: BackendSpec;
  /**
   * Who put it in the registry and manages it: `config` (the config file), `api` (the admin
   * API or code calling `registry.add`), or the name of a discovery source (`dns-discovery`,
   * `etcd-registry`, ...). Set by the registry; a config reload touches only `config`
   * backends, a source only its own (docs/plugin-sdk.md, "Discovery sources").
   */
  origin: string;
  /** Sessions currently assigned to this backend (connecting or piping). Maintained by the core. */
  active: number;
  /** Sessions ever assigned (counted when the upstream connects). */
  total: number;
  /** Failed connect attempts ever. */
  connectFailures: number;
  /** Bytes read from / written to clients by this backend's closed sessions (added at release). */
  bytesIn: number;
  bytesOut: number;
  /**
   * Cluster primary: bytes the workers' open sessions on this backend have moved so far, as of
   * their last reports (up to ~500 ms old; docs/multi-process.md). 0 in a worker and with one
   * process, where a plugin adds `service.openBytes()` (this process's open sessions)
   * instead. `bytesIn + openBytesIn` never decreases: a session's bytes leave `openBytesIn`
   * in the same report that adds them to `bytesIn`.
   */
  openBytesIn: number;
  openBytesOut: number;
  /**
   * Status set by plugins, keyed by plugin name: e.g. `{ "health-check": "down",
   * "circuit-breaker": "open" }`. Change it through `service.setBackendStatus` so the
   * `backendStatus` hook fires; the admin API and metrics report it as is.
   */
  readonly status: Record<string, string>;
  /**
   * Cluster worker: sessions on this backend in the *other* workers, as of their last reports
   * (up to ~1 s old; docs/multi-process.md). 0 with one process. Balancers that count
   * sessions add it to `active` to see the whole cluster.
   */
  peerActive: number;
  /**
   * Cluster worker: the other workers' statuses of this backend, merged per source (a
   * taking-no-sessions value such as `open` wins). Empty with one process. Changes fire the
   * `backendPeerStatus` hook.
   */
  readonly peerStatus: Record<string, string>;
}

/** Returned by an `accept` or `unavailable` tap to refuse a session. */
export interface Rejection {
  /** Short machine-readable reason, e.g. `force-disconnect`, `max-connections`. */
  reason: string;
  /** Close with a TCP reset instead of a FIN. Default false. */
  reset?: boolean;
}

/** The listener a session arrived on. */
export interface ListenerInfo {
  /** As configured, e.g. `127.0.0.1:8080`. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Position in the service's `listen` list. */
  readonly index: number;
}

/**
 * One accepted client connection, from accept to release. The same object is the context of
 * every per-connection hook, so plugins can keep state on `data` without allocating.
 */
export interface Session {
  readonly id: number;
  /** The service whose listener accepted the session (its `accept` … `route` hooks ran). */
  readonly service: ServiceRef;
  /**
   * The service whose backends serve the session: `service` itself, unless a `route` tap sent
   * the session to another service's pool (sni-router). Its balancer, candidate filters,
   * connect hooks, connect timeout and retries apply; its session table and counters hold the
   * session too (docs/hooks.md, "Routing to a pool").
   */
  readonly pool: ServiceRef;
  readonly listener: ListenerInfo;
  readonly client: Socket;
  /** Set once a backend is being dialled. */
  upstream: Socket | null;
  /** The backend of the current (or last) connect attempt. */
  backend: Backend | null;
  /**
   * The client's address: the TCP peer's, unless a plugin set the real client with
   * `setClient` (a PROXY protocol header). Every hook after that sees the real client here —
   * access log, allow lists, limits, balancers that hash on the source, metrics, admin API.
   * Read on first use while the client socket is open; when anything taps `closed` the core
   * reads it at accept, so it is there in `closed` too.
   */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /**
   * The TCP peer as the listener saw it (a load balancer in front, when one sends a PROXY
   * header). Same as `remoteAddress` unless a plugin called `setClient`.
   */
  readonly peerAddress: string;
  readonly peerPort: number;
  /**
   * Where the client connected to: the listening socket's local address, or the original
   * destination a plugin set with `setClient` (from a PROXY header). Read while the socket is open.
   */
  readonly localAddress: string;
  readonly localPort: number;
  /**
   * Sets the real client (and, when known, the address it originally connected to), as learnt
   * from the connection itself — a PROXY protocol header. Call it from `accept` or a `peek`
   * tap, before a backend is selected; `address` must be an IP address. Throws otherwise.
   */
  setClient(address: string, port: number, destination?: HostPort): void;
  /**
   * What is known of the client's TLS connection without terminating it here: set by a plugin
   * that parses the ClientHello from peeked bytes, or that read it from a PROXY v2 header
   * (SNI and ALPN TLVs). Null when unknown. A plugin that sets it replaces the whole object.
   */
  tls: SessionTls | null;
  /** `Date.now()` at accept. */
  readonly startedAt: number;
  /** `Date.now()` when the upstream connected; 0 before. */
  connectedAt: number;
  /** `Date.now()` at release; 0 before. */
  endedAt: number;
  /** Connect attempts made so far (1 on the first dial). */
  attempts: number;
  /** Backends tried and failed by this session, excluded from retries while others remain. */
  tried: Backend[] | null;
  /** Bytes from client to backend and from backend to client (final at release). */
  bytesIn: number;
  bytesOut: number;
  /** Set when the session ends. */
  closeReason: CloseReason | null;
  /** Detail of the close: rejection reason, error code, ... */
  closeDetail: string | null;
  /** Free slot for plugins; key by plugin name. Allocated on first access. */
  readonly data: Record<string, unknown>;
  /** A JSON view (admin API, debug logs): live byte counts while connected, final ones after. */
  toJSON(): Record<string, unknown>;
}

/** The client's TLS connection as far as the proxy knows it (it may not terminate TLS). */
export interface SessionTls {
  /** Server name the client asked for (SNI), lower-case; undefined when it sent none. */
  readonly sni?: string;
  /**
   * ALPN protocol names: the one negotiated when it is known (one entry: TLS ended here, or a
   * PROXY v2 header said so), otherwise the protocols the client offered, in its order.
   */
  readonly alpn?: readonly string[];
}

/** The minimal view of a service that sessions and contexts carry. */
export interface ServiceRef {
  readonly name: string;
  readonly log: Logger;
}
