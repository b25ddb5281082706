import type { Socket } from 'node:net';
import {
  type Backend,
  type BackendSpec,
  CidrList,
  definePlugin,
  LogThrottle,
  parseDuration,
  type Rejection,
  type Service,
  type Session,
  STAGE,
} from '../../plugin-sdk/index.js';
import { BeforeTlsHeaders } from './before-tls.js';
import { buildHeader, buildLocalHeader, type Version } from './build.js';
import {
  type BackendSetting,
  backendOptions,
  checkOptions,
  maxHeaderBytes,
  type ProxyProtocolOptions,
  schema,
  selectListeners,
} from './options.js';
import { type ProxyHeader, parseProxyHeader } from './parse.js';

export type { Version } from './build.js';
export type { ProxyProtocolOptions } from './options.js';
export type { Endpoint, ProxyHeader } from './parse.js';

/** The name the plugin provides its API under, and its key in `session.data`. */
export const PROXY_PROTOCOL = 'proxy-protocol';

/** Counters since start. */
export interface ProxyProtocolStats {
  /** Headers read, by version (LOCAL and UNKNOWN ones included). */
  received: { v1: number; v2: number };
  /** v2 LOCAL headers read (the sender's own health checks). */
  local: number;
  /** v1 UNKNOWN, or v2 families that name no TCP client: the peer stays the client. */
  unknown: number;
  /** Refused: not a valid header (rejection reason `proxy-protocol-invalid`). */
  invalid: number;
  /** Refused: the peer is not in `trusted` (rejection reason `proxy-protocol-untrusted`). */
  untrusted: number;
  /** Headers sent to backends, by version. */
  sent: { v1: number; v2: number };
  /** Headers sent on health checks. */
  checks: number;
  /** Sessions closed because a backend that must get a header is dialled over TLS (unsupported). */
  tlsBackend: number;
  /**
   * Connections closed waiting for a header read before TLS (listeners of tls-listener);
   * elsewhere the core counts them (`counters.peekTimeouts`).
   */
  timeouts: number;
}

/** What `service.use<ProxyProtocolApi>('proxy-protocol')` returns. */
export interface ProxyProtocolApi {
  readonly stats: Readonly<ProxyProtocolStats>;
  /** The header a session arrived with (undefined: none read, or not a listener that expects one). */
  headerOf(session: Session): ProxyHeader | undefined;
  /** The version sent to `backend`, or null for none. */
  versionFor(backend: Backend): Version | null;
}

const INVALID: Rejection = Object.freeze({ reason: 'proxy-protocol-invalid', reset: true });
const UNTRUSTED: Rejection = Object.freeze({ reason: 'proxy-protocol-untrusted', reset: true });
/** One warning per kind per this many ms. */
const LOG_INTERVAL = 10_000;

/**
 * The PROXY protocol (haproxy.org doc/proxy-protocol.txt), both directions. Accept: a peek tap
 * at `STAGE.CLAIM` reads and consumes the header, then `session.setClient` makes its source
 * the client for every hook after it. Send: an `established` tap writes a header before any
 * client byte reaches the backend. README.md has the whole story.
 */
export default definePlugin<ProxyProtocolOptions>({
  name: PROXY_PROTOCOL,
  description: 'PROXY protocol v1/v2: accept the real client from a load balancer, send it to backends.',
  schema,
  check: checkOptions,
  backendOptions,
  // Health checks run in the cluster primary: their LOCAL header must be registered there too.
  runsIn: 'any',
  apply(service, options) {
    const log = service.log.child({ plugin: PROXY_PROTOCOL });
    const throttle = new LogThrottle(log, LOG_INTERVAL);
    const stats: ProxyProtocolStats = {
      received: { v1: 0, v2: 0 },
      local: 0,
      unknown: 0,
      invalid: 0,
      untrusted: 0,
      sent: { v1: 0, v2: 0 },
      checks: 0,
      tlsBackend: 0,
      timeouts: 0,
    };
    const send = options.send ?? null;
    const versionOf = (spec: BackendSpec): Version | null => {
      const own = spec.proxy_protocol as BackendSetting | undefined;
      if (own === undefined) return send;
      return own === 'none' ? null : own;
    };
    const versionFor = (backend: Backend) => versionOf(backend.spec);
    refuseTlsBackends(service, versionOf);

    if (options.accept) tapAccept(service, options, stats, throttle);
    service.hooks.established.tap(PROXY_PROTOCOL, (session) => {
      const version = versionFor(session.backend!);
      if (version === null) return;
      const upstream = session.upstream!;
      if ((upstream as Socket & { encrypted?: boolean }).encrypted === true) {
        // The header must precede the TLS handshake, which tls-upstream has done already.
        stats.tlsBackend++;
        throttle.warn(
          'tls',
          { backend: session.backend!.address },
          'cannot send a PROXY header to a TLS backend (tls: true); session closed',
        );
        session.closeReason = 'killed';
        session.closeDetail = 'proxy-protocol: TLS backend';
        upstream.destroy();
        session.client.destroy();
        return;
      }
      upstream.write(buildHeader(version, factsOf(session)));
      stats.sent[version]++;
    });

    if (options.health_checks) {
      service.hooks.start.tap(PROXY_PROTOCOL, () => {
        const health = service.use<HealthCheckView>('health-check');
        health?.setProbePrefix?.(PROXY_PROTOCOL, (backend, socket) => {
          const version = versionFor(backend);
          if (version === null) return null;
          stats.checks++;
          return buildLocalHeader(
            version,
            { address: socket.localAddress, port: socket.localPort },
            { address: socket.remoteAddress, port: socket.remotePort },
          );
        });
      });
    }

    service.provide<ProxyProtocolApi>(PROXY_PROTOCOL, {
      stats,
      headerOf: (session) => session.data[PROXY_PROTOCOL] as ProxyHeader | undefined,
      versionFor,
    });
  },
});

/** The part of health-check's API used here (no import of that plugin). */
interface HealthCheckView {
  setProbePrefix?(owner: string, prefix: ((backend: Backend, socket: Socket) => Buffer | null) | null): void;
}

function tapAccept(
  service: Service,
  options: ProxyProtocolOptions,
  stats: ProxyProtocolStats,
  throttle: LogThrottle,
): void {
  const trusted = CidrList.parse(options.trusted ?? [], 'trusted');
  if (trusted.size === 0) throw new Error('accept: true needs trusted: the peers allowed to send a header');
  const covered = selectListeners(options.listeners, service.config.listen);
  const maxBytes = maxHeaderBytes(options);
  // Config loaded from code (not YAML) may still carry duration text.
  const timeout = parseDuration(options.timeout) ?? 5000;

  // Listeners where TLS ends here read the header on the raw socket, before the handshake.
  const beforeTls = new BeforeTlsHeaders({ trusted, maxBytes, timeout, throttle, stats });
  const tlsListeners = new Set<number>();
  service.hooks.listen.tap({ name: PROXY_PROTOCOL, stage: STAGE.DEFAULT }, (previous, listener) => {
    if (covered !== null && !covered.has(listener.index)) return previous;
    const wrapped = beforeTls.factory(previous);
    return (info, onConnection) => {
      // Asked when the listener opens: every plugin has applied by then.
      const tls = service.use<TlsListenerView>('tls-listener');
      if (tls?.terminates?.(info.index) !== true) return previous(info, onConnection);
      tlsListeners.add(info.index);
      return wrapped(info, onConnection);
    };
  });

  service.hooks.peek.tap(
    { name: PROXY_PROTOCOL, stage: STAGE.CLAIM, maxBytes, timeout },
    (session, bytes) => {
      if (covered !== null && !covered.has(session.listener.index)) return undefined;
      if (tlsListeners.size > 0 && tlsListeners.has(session.listener.index)) {
        const header = beforeTls.take(session.peerAddress, session.peerPort);
        // Every connection of such a listener gave its header before its handshake.
        if (header === undefined) return INVALID;
        adopt(session, header, false);
        return undefined;
      }
      if (bytes.length === 0) {
        // Called before anything is read: an untrusted peer is refused without reading.
        const peer = session.peerAddress;
        if (trusted.has(peer)) return 'more';
        if (peer === '') {
          // getpeername failed: the peer reset the connection before it was accepted (a
          // load balancer's health check does: header, then RST). Nobody to refuse and
          // nothing to trust; closed as the reset it is, not counted as an untrusted peer.
          if (session.closeReason === null) {
            session.closeReason = 'client-reset';
            session.closeDetail = 'proxy-protocol: reset before the peer could be checked';
          }
          session.client.destroy();
          return 'more';
        }
        stats.untrusted++;
        throttle.warn(
          'untrusted',
          { peer: session.peerAddress },
          'PROXY header from a peer not in trusted; refused',
        );
        return UNTRUSTED;
      }
      const result = parseProxyHeader(bytes, maxBytes);
      if (result === 'more') return 'more';
      if ('invalid' in result) {
        stats.invalid++;
        throttle.warn(
          'invalid',
          { peer: session.peerAddress, error: result.invalid },
          'bad PROXY header; refused',
        );
        return INVALID;
      }
      adopt(session, result, true);
      return result.length;
    },
  );

  /** The header names the session's client; counted once it is. */
  function adopt(session: Session, header: ProxyHeader, tlsFacts: boolean): void {
    stats.received[header.version === 1 ? 'v1' : 'v2']++;
    if (header.command === 'local') stats.local++;
    else if (header.family === 'unknown') stats.unknown++;
    if (header.source !== undefined && header.destination !== undefined)
      session.setClient(header.source.address, header.source.port, {
        host: header.destination.address,
        port: header.destination.port,
      });
    // TLS that ends here knows its own SNI and ALPN; the header's describe the client's TLS upstream.
    if (tlsFacts && (header.authority !== undefined || header.alpn !== undefined))
      session.tls = {
        ...(header.authority === undefined ? {} : { sni: header.authority }),
        ...(header.alpn === undefined ? {} : { alpn: [header.alpn] }),
      };
    session.data[PROXY_PROTOCOL] = header;
  }
}

/** The part of tls-listener's API used here (no import of that plugin). */
interface TlsListenerView {
  terminates?(index: number): boolean;
}

/** Source, destination and TLS facts of a session, as the header sends them on. */
function factsOf(session: Session) {
  const tls = session.tls ?? tlsOfTerminated(session.client);
  const alpn = tls?.alpn;
  return {
    sourceAddress: session.remoteAddress,
    sourcePort: session.remotePort,
    destinationAddress: session.localAddress,
    destinationPort: session.localPort,
    authority: tls?.sni,
    // The TLV names one protocol: the one in use. A list of offers is not sent.
    alpn: alpn !== undefined && alpn.length === 1 ? alpn[0] : undefined,
  };
}

/** SNI and ALPN of a client connection whose TLS ends here (tls-listener). */
function tlsOfTerminated(client: Socket): { sni?: string; alpn?: readonly string[] } | null {
  const tls = client as Socket & {
    encrypted?: boolean;
    servername?: string | false;
    alpnProtocol?: string | false;
  };
  if (tls.encrypted !== true) return null;
  return {
    ...(typeof tls.servername === 'string' ? { sni: tls.servername.toLowerCase() } : {}),
    ...(typeof tls.alpnProtocol === 'string' ? { alpn: [tls.alpnProtocol] } : {}),
  };
}

/** Configured TLS backends that would need a header: refuse the config rather than fail sessions. */
function refuseTlsBackends(service: Service, versionOf: (spec: BackendSpec) => Version | null): void {
  for (const spec of service.config.backends) {
    if (spec.tls !== true) continue;
    const version = versionOf(spec);
    if (version !== null)
      throw new Error(
        `backend ${spec.address} has tls: true and would get a PROXY ${version} header; sending one before a TLS handshake to a backend is not supported (set proxy_protocol: none on it)`,
      );
  }
}
