import { Socket } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import {
  type Backend,
  type Dialed,
  definePlugin,
  parseAddress,
  STAGE,
  UPSTREAM_TLS,
} from '../../plugin-sdk/index.js';
import { type BackendTls, TLS_ONLY_FIELDS, UpstreamContexts, type UpstreamDefaults } from './contexts.js';

export interface TlsUpstreamOptions extends UpstreamDefaults {
  session_resumption: boolean;
  reload_on_sighup: boolean;
}

export interface TlsUpstreamApi {
  readonly stats: Readonly<{ contextsBuilt: number; reloads: number; reloadFailures: number }>;
  /** Re-reads CA and client certificate files, as SIGHUP does. Returns the number of failures. */
  reload(): number;
}

const VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
const file = (description: string) => ({
  type: 'string',
  minLength: 1,
  description: `${description} Relative paths start from the proxy's working directory.`,
});

const kTls = Symbol('tls-upstream');
type UpstreamSocket = TLSSocket & { [kTls]?: BackendTls };

/** Shared 'session' listener (`this` = the upstream socket): keeps the newest ticket per backend. */
function rememberSession(this: UpstreamSocket, session: Buffer): void {
  const tls = this[kTls];
  if (tls !== undefined) tls.session = session;
}

/** A socket that fails on the next tick, so the core counts a connect failure and retries. */
function failingSocket(error: Error): Socket {
  const socket = new Socket();
  process.nextTick(() => socket.destroy(error));
  return socket;
}

/**
 * TLS origination: backends with `tls: true` are dialled over TLS, verified unless
 * `insecure_skip_verify` says otherwise. `connect` is a bail hook, so the stage matters: taps
 * that only observe (circuit-breaker, backend-limits: `STAGE.OBSERVE`) run first and see every
 * attempt; this tap (`STAGE.CLAIM`) then answers for TLS backends, ahead of socket suppliers at the
 * default stage such as connection-pool, which must never hand a plain socket to a TLS
 * backend. For plain backends it returns nothing and the next tap, or the core, dials.
 */
export const CONNECT_STAGE = STAGE.CLAIM;

export default definePlugin<TlsUpstreamOptions>({
  name: 'tls-upstream',
  // The core accepts `tls: true` backends only when a plugin provides this.
  provides: [UPSTREAM_TLS],
  description: 'Dials backends marked `tls: true` over TLS (verification, SNI, client certificates).',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      ca: file('Default PEM CA bundle for backends without their own `ca` (replaces the system roots).'),
      cert: file('Default client certificate (PEM) for backends without their own `cert`.'),
      key: file('Default client key (PEM) for backends without their own `key`.'),
      servername: {
        type: 'string',
        minLength: 1,
        description: 'Default SNI name (and name to verify) for backends without their own `servername`.',
      },
      min_version: { enum: VERSIONS, default: 'TLSv1.2', description: 'Oldest TLS version offered.' },
      max_version: { enum: VERSIONS, default: 'TLSv1.3', description: 'Newest TLS version offered.' },
      ciphers: { type: 'string', minLength: 1, description: 'OpenSSL cipher list (TLS 1.2 and older).' },
      session_resumption: {
        type: 'boolean',
        default: true,
        description: 'Resume TLS sessions with each backend (saves a full handshake per connection).',
      },
      reload_on_sighup: {
        type: 'boolean',
        default: true,
        description: 'Re-read CA and client certificate files on SIGHUP.',
      },
    },
  },
  apply(service, options) {
    const log = service.log.child({ plugin: 'tls-upstream' });
    const contexts = new UpstreamContexts(options);
    const byBackend = new Map<Backend, BackendTls>();
    const stats = { contextsBuilt: 0, reloads: 0, reloadFailures: 0 };
    const resumption = options.session_resumption;

    // Configured backends are checked now, so a bad file fails the start and names itself.
    for (const spec of service.config.backends) {
      if (spec.tls === true) {
        const parsed = parseAddress(spec.address);
        if (typeof parsed !== 'string') contexts.forBackend({ address: spec.address, ...parsed, spec });
      } else {
        const stray = TLS_ONLY_FIELDS.filter((f) => spec[f] !== undefined && spec[f] !== false);
        if (stray.length > 0)
          log.warn(
            { backend: spec.address, fields: stray },
            'backend has TLS settings but not tls: true; ignored',
          );
      }
    }

    /** Builds (or rebuilds) a backend's TLS state; never throws, so registry calls never fail here. */
    const track = (backend: Backend): BackendTls | undefined => {
      if (backend.spec.tls !== true) {
        byBackend.delete(backend);
        return undefined;
      }
      let tls: BackendTls;
      try {
        tls = contexts.forBackend(backend);
      } catch (err) {
        log.error(
          { backend: backend.address, err: (err as Error).message },
          'TLS settings unusable; connects fail',
        );
        tls = { spec: backend.spec, contextKey: '', options: null!, session: undefined, error: err as Error };
      }
      stats.contextsBuilt = contexts.built;
      byBackend.set(backend, tls);
      return tls;
    };

    service.hooks.backendAdded.tap('tls-upstream', track);
    service.hooks.backendChanged.tap('tls-upstream', (backend) => {
      if (byBackend.get(backend)?.spec !== backend.spec) track(backend);
    });
    service.hooks.backendRemoved.tap('tls-upstream', (backend) => {
      if (byBackend.delete(backend)) contexts.prune(Array.from(byBackend.values(), (t) => t.contextKey));
    });

    service.hooks.connect.tap(
      { name: 'tls-upstream', stage: CONNECT_STAGE },
      (_session, backend): Dialed | undefined => {
        if (backend.spec.tls !== true) return undefined;
        let tls = byBackend.get(backend);
        if (tls === undefined || tls.spec !== backend.spec) tls = track(backend)!;
        if (tls.error !== null) return { socket: failingSocket(tls.error), readyEvent: 'connect' };
        const dial = tls.options;
        // tls.connect copies its options, so one object per backend serves every connection.
        dial.session = resumption ? tls.session : undefined;
        const socket = tlsConnect(dial) as UpstreamSocket;
        if (resumption) {
          socket[kTls] = tls;
          socket.on('session', rememberSession);
        }
        return { socket, readyEvent: 'secureConnect' };
      },
    );

    // A ticket that failed once is not offered again (as Node's https agent does).
    service.hooks.connectFailed.tap('tls-upstream', (_session, backend) => {
      const tls = byBackend.get(backend);
      if (tls !== undefined) tls.session = undefined;
    });

    const reload = (trigger: string): number => {
      const errors = contexts.reload();
      for (const tls of byBackend.values()) {
        if (tls.error !== null) continue;
        tls.options.secureContext = contexts.context(tls.contextKey);
        tls.session = undefined;
      }
      stats.contextsBuilt = contexts.built;
      if (errors.length > 0) {
        stats.reloadFailures++;
        for (const err of errors)
          log.error({ trigger, err: err.message }, 'TLS files rejected, the current ones stay in use');
      } else {
        stats.reloads++;
        log.info({ trigger, contexts: contexts.size }, 'upstream TLS files reloaded');
      }
      return errors.length;
    };
    const onSighup = () => reload('SIGHUP');
    if (options.reload_on_sighup) {
      service.hooks.start.tap('tls-upstream', () => {
        process.on('SIGHUP', onSighup);
      });
      service.hooks.stop.tap('tls-upstream', () => {
        process.removeListener('SIGHUP', onSighup);
      });
    }

    const api: TlsUpstreamApi = { stats, reload: () => reload('api') };
    service.provide('tls-upstream', api);
  },
});
