import { createHash, randomBytes } from 'node:crypto';
import type { Server, Socket } from 'node:net';
import { createServer, type SecureContext, type TLSSocket, type Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import {
  definePlugin,
  durationSchema,
  parseDuration,
  type ServerFactory,
  type Session,
  STAGE,
} from '../../plugin-sdk/index.js';
import {
  type CertificateOptions,
  type LoadedCertificates,
  loadCertificates,
  type SessionKeys,
  sameFiles,
} from './certificates.js';
import { checkOptions } from './check.js';
import { ReloadTrigger } from './reload-trigger.js';
import { SNI_PATTERN } from './sni.js';

export interface TlsListenerOptions extends CertificateOptions {
  /** `none`: no client certificate; `request`: optional, verified when sent; `require`: mandatory. */
  client_auth: 'none' | 'request' | 'require';
  alpn: string[];
  /** Listener addresses (as written in `listen`) or positions; omitted = every listener. */
  listeners?: Array<string | number>;
  /** ms */
  handshake_timeout: number;
  reload_on_sighup: boolean;
  watch: boolean;
  /** ms */
  watch_delay: number;
}

/** Counters shared through `service.use('tls-listener')` (metrics, admin). */
export interface TlsListenerStats {
  handshakes: number;
  /** Failed handshakes: protocol or cipher mismatch, bad or missing client certificate, timeout. */
  handshakeErrors: number;
  /** `client_auth: request` sessions closed because the client sent a certificate that failed verification. */
  clientCertRejected: number;
  reloads: number;
  reloadFailures: number;
}

export interface TlsListenerApi {
  readonly stats: Readonly<TlsListenerStats>;
  /** The certificates in use: subject, file and expiry of each. */
  certificates(): LoadedCertificates['info'];
  /** Reloads now, as SIGHUP does. Returns whether new certificates were installed. */
  reload(): boolean;
  /**
   * Whether TLS ends here on the listener at `index` (its position in `listen`): a plugin that
   * must read bytes sent before the handshake (a PROXY header) reads them on the raw socket.
   */
  terminates(index: number): boolean;
}

const VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
const file = (description: string, def?: string) => ({
  type: 'string',
  minLength: 1,
  description: `${description} Relative paths start from the proxy's working directory.`,
  ...(def === undefined ? {} : { default: def }),
});
const duration = (def: string, description: string) => durationSchema(description, { default: def });

/**
 * TLS termination. Taps `listen` late (`STAGE.LATE`) and wraps the factory it receives, so
 * socket-level wrappers tapped at the default stage (PROXY protocol, allow lists) still see
 * the raw TCP connection first and `max_connections` still counts on the TCP server. Each raw
 * socket is handed to a `tls.Server` that never listens itself; the decrypted socket goes to
 * the core at `secureConnection`. Certificates reload without touching established sessions.
 */
export default definePlugin<TlsListenerOptions>({
  name: 'tls-listener',
  description: 'Terminates TLS on the listeners (SNI, mTLS, certificate reload).',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      cert: file('PEM certificate (leaf first, then the chain) served by default.', 'server.crt'),
      key: file('PEM private key of `cert` (unencrypted).', 'server.key'),
      sni: {
        type: 'object',
        description:
          'More certificates, chosen by the server name the client sends: "name" or "*.domain" → { cert, key }.',
        default: {},
        propertyNames: { pattern: SNI_PATTERN },
        additionalProperties: {
          type: 'object',
          additionalProperties: false,
          required: ['cert', 'key'],
          properties: { cert: file('PEM certificate.'), key: file('PEM private key.') },
        },
      },
      min_version: { enum: VERSIONS, default: 'TLSv1.2', description: 'Oldest TLS version accepted.' },
      max_version: { enum: VERSIONS, default: 'TLSv1.3', description: 'Newest TLS version offered.' },
      ciphers: { type: 'string', minLength: 1, description: 'OpenSSL cipher list (TLS 1.2 and older).' },
      alpn: {
        type: 'array',
        items: { type: 'string', minLength: 1, maxLength: 255 },
        default: [],
        description: 'ALPN protocols to offer, in preference order (e.g. ["h2", "http/1.1"]).',
      },
      client_ca: file('PEM CA bundle that client certificates must chain to.'),
      client_auth: {
        enum: ['none', 'request', 'require'],
        default: 'none',
        description:
          'Client certificates: none; request (optional, but a certificate sent must verify); require.',
      },
      listeners: {
        type: 'array',
        minItems: 1,
        items: { type: ['string', 'integer'], minLength: 1, minimum: 0 },
        description:
          'Listeners that terminate TLS: addresses exactly as written in `listen`, or positions (0 = first). Default: all.',
      },
      handshake_timeout: duration('10s', 'Close connections that have not completed the handshake by then.'),
      reload_on_sighup: { type: 'boolean', default: true, description: 'Reload certificates on SIGHUP.' },
      watch: { type: 'boolean', default: true, description: 'Reload certificates when their files change.' },
      watch_delay: duration('500ms', 'Quiet time after the last file change before reloading.'),
    },
  },
  check: (options) => checkOptions(options),
  apply(service, options) {
    const log = service.log.child({ plugin: 'tls-listener' });
    const selected = selectListeners(options.listeners, service.config.listen);
    if (options.client_auth !== 'none' && options.client_ca === undefined)
      throw new Error(
        `client_auth "${options.client_auth}" needs client_ca (the CA client certificates chain to)`,
      );
    // Config loaded from code (not YAML) may still carry duration text.
    const handshakeTimeout = parseDuration(options.handshake_timeout) ?? 10_000;
    const watchDelay = parseDuration(options.watch_delay) ?? 500;

    const keys: SessionKeys = {
      ticketKeys: randomBytes(48),
      sessionIdContext: createHash('sha1').update(`switchyard:${service.name}`).digest('hex').slice(0, 32),
    };
    let current = loadCertificates(options, keys); // a bad file fails the start, naming the file
    warnExpired(current, log);
    const servers = new Set<TlsServer>();
    const stats: TlsListenerStats = {
      handshakes: 0,
      handshakeErrors: 0,
      clientCertRejected: 0,
      reloads: 0,
      reloadFailures: 0,
    };
    const debug = log.isLevelEnabled('debug');
    const optionalClientCert = options.client_auth === 'request';

    const reload = (trigger: string): boolean => {
      let next: LoadedCertificates;
      try {
        next = loadCertificates(options, keys);
      } catch (err) {
        stats.reloadFailures++;
        log.error(
          { trigger, err: (err as Error).message },
          'new certificates rejected, the current ones stay in use',
        );
        return false;
      }
      if (sameFiles(current, next)) {
        log.debug({ trigger }, 'certificate files unchanged');
        return false;
      }
      // Established sessions keep the context they were made with; new handshakes get `next`.
      for (const server of servers) server.setSecureContext(next.serverOptions);
      current = next;
      stats.reloads++;
      log.info({ trigger, certificates: next.info }, 'certificates reloaded');
      warnExpired(next, log);
      return true;
    };

    const api: TlsListenerApi = {
      stats,
      certificates: () => current.info,
      reload: () => reload('api'),
      terminates: (index) => selected === null || selected.has(index),
    };
    service.provide('tls-listener', api);

    const trigger = new ReloadTrigger(
      { sighup: options.reload_on_sighup, watch: options.watch, delay: watchDelay },
      [...current.contents.keys()],
      reload,
      log,
    );
    service.hooks.start.tap('tls-listener', () => {
      log.info({ certificates: current.info }, 'TLS certificates loaded');
      trigger.start();
    });
    service.hooks.stop.tap('tls-listener', () => trigger.stop());

    const sniCallback =
      Object.keys(options.sni).length === 0
        ? undefined
        : (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) =>
            cb(null, current.sni.lookup(servername));

    function onHandshakeError(this: TlsServer & { listenerAddress: string }, err: Error, socket: TLSSocket) {
      stats.handshakeErrors++;
      if (debug)
        log.debug(
          {
            err: (err as NodeJS.ErrnoException).code ?? err.message,
            client: socket.remoteAddress,
            listener: this.listenerAddress,
          },
          'TLS handshake failed',
        );
      // Node leaves the socket open after some handshake errors (a handshake timeout, for one).
      socket.destroy();
    }

    service.hooks.listen.tap({ name: 'tls-listener', stage: STAGE.LATE }, (previous, listener) => {
      if (selected !== null && !selected.has(listener.index)) return previous;
      const factory: ServerFactory = (info, onConnection) => {
        const tlsServer = createServer({
          ...current.serverOptions,
          allowHalfOpen: true,
          noDelay: true,
          handshakeTimeout,
          requestCert: options.client_auth !== 'none',
          rejectUnauthorized: options.client_auth === 'require',
          ...(sniCallback ? { SNICallback: sniCallback } : {}),
          ...(options.alpn.length > 0 ? { ALPNProtocols: options.alpn } : {}),
        }) as TlsServer & { listenerAddress: string };
        tlsServer.listenerAddress = info.address;
        tlsServer.on('tlsClientError', onHandshakeError);
        tlsServer.on('secureConnection', (socket: TLSSocket) => {
          if (optionalClientCert && !socket.authorized && socket.getPeerX509Certificate() !== undefined) {
            // nginx `ssl_verify_client optional`: no certificate is fine, a bad one is not.
            stats.clientCertRejected++;
            if (debug)
              log.debug(
                { client: socket.remoteAddress, reason: socket.authorizationError },
                'client certificate rejected',
              );
            socket.destroy();
            return;
          }
          stats.handshakes++;
          onConnection(socket);
        });
        servers.add(tlsServer);
        const rawSockets = new Set<Socket>();
        const server = previous(info, (raw: Socket) => {
          (raw as RawSocket)[kRawSockets] = rawSockets;
          rawSockets.add(raw);
          raw.once('close', forgetRawSocket);
          tlsServer.emit('connection', raw);
        });
        // The core waits for every connection of a closing listener to end; one still in its
        // handshake is no session yet, so stop would wait for handshake_timeout. Abort those.
        const close = server.close;
        server.close = function (this: Server, callback?: (err?: Error) => void) {
          abortHandshakes(rawSockets, service.sessions.values(), info.index);
          return close.call(this, callback);
        };
        server.once('close', () => servers.delete(tlsServer));
        return server;
      };
      return factory;
    });
  },
});

const kRawSockets = Symbol('tls-listener.rawSockets');
type RawSocket = Socket & { [kRawSockets]?: Set<Socket> };

/** Shared 'close' listener of raw sockets (`this` = the socket): no closure per connection. */
function forgetRawSocket(this: RawSocket): void {
  this[kRawSockets]?.delete(this);
}

/** Destroys the listener's raw sockets that are not (yet) a session: handshakes in progress. */
function abortHandshakes(raw: Set<Socket>, sessions: Iterable<Session>, listenerIndex: number): void {
  if (raw.size === 0) return;
  const live = new Set<string>();
  for (const s of sessions)
    if (s.listener.index === listenerIndex) live.add(`${s.peerAddress}|${s.peerPort}`);
  for (const socket of raw) if (!live.has(`${socket.remoteAddress}|${socket.remotePort}`)) socket.destroy();
}

/** Listener positions that terminate TLS, or null for all. Unknown addresses are config errors. */
function selectListeners(wanted: Array<string | number> | undefined, listen: string[]): Set<number> | null {
  if (wanted === undefined) return null;
  const set = new Set<number>();
  for (const w of wanted) {
    if (typeof w === 'number') {
      if (w >= listen.length)
        throw new Error(`listeners: position ${w} is out of range (the service has ${listen.length})`);
      set.add(w);
      continue;
    }
    let found = false;
    listen.forEach((address, i) => {
      if (address === w) {
        set.add(i);
        found = true;
      }
    });
    if (!found)
      throw new Error(`listeners: "${w}" is not one of this service's listeners (${listen.join(', ')})`);
  }
  return set;
}

function warnExpired(certs: LoadedCertificates, log: Logger): void {
  for (const c of certs.info)
    if (c.expired) log.warn({ certificate: c }, 'certificate has expired; clients will reject it');
}
