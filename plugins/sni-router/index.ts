import {
  definePlugin,
  parseDuration,
  type Rejection,
  type Service,
  type Session,
} from '../../plugin-sdk/index.js';
import { alertFor } from './alerts.js';
import type { SniRefusal, SniRouterApi, SniRouterStats } from './api.js';
import { type HelloProblem, HelloScan, parseClientHello } from './client-hello.js';
import { checkOptions, DEFAULT_MAX_BYTES, type SniRouterOptions, schema } from './options.js';
import { RouteTable } from './route-table.js';

export type { SniRefusal, SniRouterApi, SniRouterStats } from './api.js';
export type { SniRouterOptions } from './options.js';

const NAME = 'sni-router';

const REFUSAL_OF: Record<HelloProblem, SniRefusal> = {
  'not-tls': 'not-tls',
  malformed: 'tls-malformed',
  'too-large': 'tls-too-large',
};

/** One shared, frozen rejection per reason: refusing allocates nothing. */
const REJECTIONS: Record<SniRefusal, Rejection> = {
  'not-tls': Object.freeze({ reason: 'not-tls' }),
  'tls-malformed': Object.freeze({ reason: 'tls-malformed' }),
  'tls-too-large': Object.freeze({ reason: 'tls-too-large' }),
  'no-route': Object.freeze({ reason: 'no-route' }),
};

/** The running router of one service; reload swaps `table`. */
interface Router {
  table: RouteTable;
  options: SniRouterOptions;
}
const routers = new WeakMap<Service, Router>();

/**
 * Several TLS services on one port without terminating TLS (NGINX `ssl_preread`, HAProxy
 * `req.ssl_sni`): the ClientHello is read in the peek stage, its server name and ALPN put on
 * `session.tls`, and the `route` step sends the session to the pool of the service its route
 * names. The bytes reach that pool's backend untouched; it terminates TLS itself. See README.md.
 */
export default definePlugin<SniRouterOptions>({
  name: NAME,
  description: 'Routes TLS connections by SNI/ALPN to other services’ pools, without terminating TLS.',
  schema,
  check: checkOptions,
  apply(service, options) {
    if (service.config.plugins.some((use) => use.name === 'tls-listener'))
      throw new Error(
        'sni-router reads the ClientHello itself; it cannot follow tls-listener, which ends TLS before the peek stage',
      );
    const maxBytes = options.max_bytes ?? DEFAULT_MAX_BYTES;
    // Options from code (not YAML) may still carry duration text.
    const timeout = parseDuration(options.timeout) ?? 5000;
    const router: Router = { table: new RouteTable(options), options };
    routers.set(service, router);
    const stats: SniRouterStats = {
      hellos: 0,
      withoutSni: 0,
      routed: {},
      refused: { 'not-tls': 0, 'tls-malformed': 0, 'tls-too-large': 0, 'no-route': 0 },
    };
    const debug = service.log.isLevelEnabled('debug');
    /** Progress of hellos that came in several reads; most come whole in the first one. */
    const partial = new WeakMap<Session, HelloScan>();
    const scratch = new HelloScan();

    const refuse = (session: Session, reason: SniRefusal, recordMinor: number, detail: string): Rejection => {
      stats.refused[reason]++;
      const alert = alertFor(reason, recordMinor);
      // Best effort, before the core closes the socket: the client learns why (openssl shows
      // "tlsv1 unrecognized name"). A client that does not speak TLS gets no alert.
      if (alert !== null && session.client.writable) session.client.write(alert);
      if (debug) service.log.debug({ session: session.id, reason, detail }, 'sni-router refused a session');
      return REJECTIONS[reason];
    };

    service.hooks.peek.tap({ name: NAME, maxBytes, timeout }, (session, bytes) => {
      if (bytes.length === 0) return 'more';
      const saved = partial.get(session);
      const scan = saved ?? scratch.reset();
      const result = parseClientHello(bytes, maxBytes, scan);
      if (result === 'more') {
        // Timeouts, a FIN before the hello ends and the size cap are the peek stage's to close.
        if (saved === undefined) partial.set(session, scan.copy());
        return 'more';
      }
      if (saved !== undefined) partial.delete(session);
      if ('problem' in result)
        return refuse(session, REFUSAL_OF[result.problem], bytes.length > 2 ? bytes[2]! : 1, result.detail);
      stats.hellos++;
      if (result.sni === undefined) stats.withoutSni++;
      session.tls = tlsFacts(result.sni, result.alpn);
      // Refused here rather than in `route`, where the client's record version (for the
      // alert) is no longer known; `route` looks the same name up again (two Map lookups).
      if (router.table.match(result.sni, result.alpn) === undefined)
        return refuse(
          session,
          'no-route',
          result.recordMinor,
          `no route for ${result.sni ?? 'a hello without SNI'}`,
        );
      return undefined;
    });

    service.hooks.route.tap(NAME, (session) => {
      const tls = session.tls;
      const target = router.table.match(tls?.sni, tls?.alpn);
      // Only when a reload removed the route between the peek and now.
      if (target === undefined) return refuse(session, 'no-route', 3, 'route removed by a reload');
      stats.routed[target] = (stats.routed[target] ?? 0) + 1;
      return target;
    });

    service.provide<SniRouterApi>(NAME, {
      stats,
      match: (sni, alpn) => router.table.match(sni, alpn),
    });
  },
  reconfigure(service, options) {
    const router = routers.get(service);
    if (router === undefined) return;
    const table = new RouteTable(options);
    const missing = [...table.targets].filter((name) => !service.runtime.services.has(name));
    if (missing.length > 0)
      throw new Error(
        `routes name services this process does not run (${missing.join(', ')}); restart to add them`,
      );
    router.table = table;
    const before = router.options;
    router.options = options;
    if (before.timeout !== options.timeout || before.max_bytes !== options.max_bytes)
      service.log.warn(
        { plugin: NAME },
        'sni-router: timeout and max_bytes take effect at restart; routes changed now',
      );
    service.log.info(
      { plugin: NAME, routes: Object.keys(options.routes).length },
      'sni-router: routes reloaded',
    );
  },
});

/** `session.tls` without keys for what the hello did not say. */
function tlsFacts(sni: string | undefined, alpn: string[] | undefined): Session['tls'] {
  if (alpn === undefined) return sni === undefined ? {} : { sni };
  return sni === undefined ? { alpn } : { sni, alpn };
}
