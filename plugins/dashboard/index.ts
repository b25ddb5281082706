import type { FastifyReply } from 'fastify';
import {
  ADMIN_ROUTES,
  type AdminRoute,
  type Backend,
  definePlugin,
  durationSchema,
  type Service,
} from '../../plugin-sdk/index.js';
import { loadAssets } from './assets.js';
import { dashboardState, trackChanges } from './state.js';

export interface DashboardOptions {
  /** Admin API path of the page. */
  path: string;
  /** Poll interval of the page, ms (from a duration). */
  refresh: number;
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
    },
  },
  apply(runtime, options) {
    if (options.refresh < 250 || options.refresh > 60_000)
      throw new Error('refresh must be between 250ms and 1m');
    if (options.path.startsWith(`${ASSET_PREFIX}/`))
      throw new Error(`path must not be under ${ASSET_PREFIX}/ (the page's own files live there)`);
    // Read once: a missing file fails the start, not the first visitor.
    const assets = loadAssets();
    const changes = new Map<Service, WeakMap<Backend, number>>();
    for (const service of runtime.services.values()) changes.set(service, trackChanges(service));

    const routes: AdminRoute[] = [
      {
        method: 'GET',
        url: options.path,
        config: PUBLIC,
        handler: (_req, reply) => send(reply, 'text/html; charset=utf-8', assets.html),
      },
      {
        method: 'GET',
        url: `${ASSET_PREFIX}/dashboard.css`,
        config: PUBLIC,
        handler: (_req, reply) => send(reply, 'text/css; charset=utf-8', assets.css),
      },
      {
        method: 'GET',
        url: `${ASSET_PREFIX}/dashboard.js`,
        config: PUBLIC,
        handler: (_req, reply) => send(reply, 'text/javascript; charset=utf-8', assets.js),
      },
      {
        method: 'GET',
        url: `${ASSET_PREFIX}/state`,
        handler: (_req, reply) =>
          reply.header('cache-control', 'no-store').send(dashboardState(runtime, options.refresh, changes)),
      },
    ];
    for (const route of routes) runtime.contribute(ADMIN_ROUTES, route);

    if (!runtime.config.plugins.some((p) => p.name === 'admin-api'))
      runtime.log.warn('dashboard: the admin-api plugin is not enabled, so nothing serves the page');
  },
});
