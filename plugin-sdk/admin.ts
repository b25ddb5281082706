import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify';

/**
 * The admin API contract. Any plugin adds HTTP routes to the admin server with
 * `runtime.contribute(ADMIN_ROUTES, route)` in its `apply` — never by importing admin-api.
 * admin-api collects them when it starts; without admin-api they are simply not served.
 */
export const ADMIN_ROUTES = 'admin.routes';

/**
 * A fastify route. `mutating` routes need the bearer token when one is configured
 * (default: true for every method but GET and HEAD). A route with `config: { public: true }`
 * never needs a token, even with admin-api `read_only_open: false` (probes, static pages).
 */
export type AdminRoute = RouteOptions & { mutating?: boolean };

export type { FastifyReply, FastifyRequest };
