import type { FastifyReply } from 'fastify';
import {
  ADMIN_ROUTES,
  type AdminRoute,
  type Backend,
  CLUSTER,
  type ClusterBridge,
  definePlugin,
  durationSchema,
  ENDPOINTS,
  type Endpoint,
  type Service,
} from '../../plugin-sdk/index.js';
import { loadAssets } from './assets.js';
import { type ConnectTimeSource, History } from './history.js';
import { checkOptions, type DashboardOptions, historySchema, TIMELINE_SCHEMA } from './options.js';
import { dashboardState, trackChanges } from './state.js';
import { Timeline } from './timeline.js';

export type { DashboardOptions } from './options.js';

/** What admin-api shares: read for the auth the page must use. */
interface AdminAuth {
  address?: () => string | null;
  auth?: () => { token: boolean; readsOpen: boolean };
}

/** Where the page finds its script, style sheet and state; fixed so the page can be static. */
export const ASSET_PREFIX = '/dashboard';

/**
 * The page only talks to its own origin; no inline script or style, so a value that slipped
 * through into markup still could not run.
 */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/**
 * The page and its files hold no data, and a browser cannot send a bearer token when it
 * navigates: they stay reachable when admin-api's `read_only_open` is false (the state route
 * does not; the page asks for the token). `public` is admin-api's route flag for probes.
 */
const PUBLIC = { public: true };

function send(reply: FastifyReply, type: string, body: string) {
  return reply.headers(SECURITY_HEADERS).type(type).send(body);
}

/** A static file of the page, under the asset prefix, public like the page itself. */
function asset(name: string, type: string, body: string): AdminRoute {
  return {
    method: 'GET',
    url: `${ASSET_PREFIX}/${name}`,
    config: PUBLIC,
    handler: (_req, reply) => send(reply, type, body),
  };
}

/**
 * A live stats page on the admin API (what HAProxy's stats page is to its users): services,
 * backends with weight, state, plugin statuses, sessions, bytes and rates, with drain / remove /
 * force-disconnect buttons that call the admin API with the operator's bearer token.
 */
export default definePlugin<DashboardOptions>({
  name: 'dashboard',
  scope: 'process',
  runsIn: 'primary',
  description: 'Live stats page with backend controls, served on the admin API.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      path: {
        type: 'string',
        pattern: '^/[^?#\\s]*$',
        default: '/',
        description: `Admin API path of the page (its files and state are under ${ASSET_PREFIX}/).`,
      },
      refresh: durationSchema('How often the page polls the state (250ms to 1m).', { default: '2s' }),
      history: historySchema,
      timeline: TIMELINE_SCHEMA,
    },
  },
  apply(runtime, options) {
    const samples = checkOptions(options, ASSET_PREFIX);
    // Read once: a missing file fails the start, not the first visitor.
    const assets = loadAssets();
    const changes = new Map<Service, WeakMap<Backend, number>>();
    const timeline = new Timeline(options.timeline);
    for (const service of runtime.services.values()) {
      changes.set(service, trackChanges(service));
      timeline.track(service);
    }
    const metrics = () => runtime.use<ConnectTimeSource>('metrics');
    const history = new History(
      runtime,
      samples,
      options.history.interval,
      options.history.max_backends,
      metrics,
    );
    let timer: NodeJS.Timeout | undefined;
    runtime.hooks.start.tap('dashboard', () => {
      history.sample();
      timer = setInterval(() => {
        try {
          history.sample();
        } catch (err) {
          runtime.log.error({ err }, 'dashboard: a history sample failed');
        }
        // Cluster primary: the workers' connect times arrive for the next sample.
        metrics()
          ?.refresh?.()
          .catch(() => {});
      }, options.history.interval);
      timer.unref();
    });
    runtime.hooks.stop.tap('dashboard', () => clearInterval(timer));
    const bridge = runtime.use<ClusterBridge>(CLUSTER);
    const extras = () => ({
      admin: runtime.use<AdminAuth>('admin-api')?.auth?.() ?? null,
      workers: runtime.role === 'primary' ? (bridge?.workerCount() ?? 0) : null,
      timeline: timeline.list(),
      history: {
        interval: options.history.interval,
        capacity: samples,
        connectTimes: metrics() !== undefined,
      },
    });

    const routes: AdminRoute[] = [
      {
        method: 'GET',
        url: options.path,
        config: PUBLIC,
        handler: (_req, reply) => send(reply, 'text/html; charset=utf-8', assets.html),
      },
      asset('dashboard.css', 'text/css; charset=utf-8', assets.css),
      asset('dashboard.js', 'text/javascript; charset=utf-8', assets.js),
      asset('uplot.js', 'text/javascript; charset=utf-8', assets.uplotJs),
      asset('uplot.css', 'text/css; charset=utf-8', assets.uplotCss),
      {
        method: 'GET',
        url: `${ASSET_PREFIX}/state`,
        handler: (_req, reply) =>
          reply
            .header('cache-control', 'no-store')
            .send(dashboardState(runtime, options.refresh, changes, extras())),
      },
      {
        method: 'GET',
        url: `${ASSET_PREFIX}/history`,
        schema: {
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { since: { type: 'integer', minimum: 0 } },
          },
        },
        handler: (req, reply) => {
          const since = (req.query as { since?: number }).since ?? 0;
          return reply.header('cache-control', 'no-store').send(history.view(since, metrics() !== undefined));
        },
      },
    ];
    for (const route of routes) runtime.contribute(ADMIN_ROUTES, route);
    runtime.contribute<Endpoint>(ENDPOINTS, {
      name: 'dashboard',
      url() {
        const address = runtime.use<AdminAuth>('admin-api')?.address?.();
        return address ? `http://${address}${options.path}` : null;
      },
    });

    if (!runtime.config.plugins.some((p) => p.name === 'admin-api'))
      runtime.log.warn('dashboard: the admin-api plugin is not enabled, so nothing serves the page');
  },
});
