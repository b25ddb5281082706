import type { FastifyReply } from 'fastify';
import type { AdminRoute, Service } from '../../../plugin-sdk/index.js';
import { isUsable } from '../backend-json.js';
import type { AdminContext } from '../context.js';
import { type ServiceQuery, serviceQuery } from '../schemas.js';

export interface ServiceReadiness {
  name: string;
  /** Every configured listener is bound and the service is not stopping. */
  listening: boolean;
  /** Backends taking sessions: state `up` and no plugin status `down`, `open` or `ejected`. */
  backendsUp: number;
  /** Discovery sources (dns-discovery, etcd-registry) and whether each reads its store. */
  sources?: Array<{ name: string; ok: boolean; detail: string | null; since: string; listed: number }>;
}

/**
 * Probes. They never need the token (probes seldom carry secrets, and they reveal nothing
 * an open port does not). `/readyz` checks every service, or only `?service=`.
 */
export function healthRoutes(ctx: AdminContext): AdminRoute[] {
  const started = Date.now();
  return [
    {
      method: 'GET',
      url: '/healthz',
      config: { public: true },
      schema: { querystring: serviceQuery },
      handler: async () => ({ status: 'ok', uptime: Math.round((Date.now() - started) / 1000) }),
    },
    {
      method: 'GET',
      url: '/readyz',
      config: { public: true },
      schema: { querystring: serviceQuery },
      handler: async (request, reply: FastifyReply) => {
        const only = (request.query as ServiceQuery).service;
        const services = only === undefined ? [...ctx.runtime.services.values()] : [ctx.serviceOf(request)];
        const states = services.map(readiness);
        const problems = states.flatMap((s) => {
          if (!s.listening) return [`service ${s.name} is not listening`];
          if (s.backendsUp === 0) return [`service ${s.name} has no backend up`];
          return [];
        });
        // A source that cannot read its store (etcd down, DNS failing) leaves the service on its
        // last known backends: still serving, so still ready — a front load balancer must not
        // take every instance out because the registry is down. Reported as `degraded`.
        const degraded = states.flatMap((s) =>
          (s.sources ?? [])
            .filter((src) => !src.ok)
            .map(
              (src) =>
                `service ${s.name}: ${src.name} ${src.detail ?? 'is failing'} (since ${src.since}); serving its last known backends`,
            ),
        );
        const extra = degraded.length > 0 ? { degraded } : {};
        if (problems.length === 0) return { ready: true, ...extra, services: states };
        reply.code(503);
        return { ready: false, error: problems.join('; '), ...extra, services: states };
      },
    },
  ];
}

function readiness(service: Service): ServiceReadiness {
  let listening = false;
  if (service.state === 'running') {
    try {
      listening = service.addresses().length === service.config.listen.length;
    } catch {
      listening = false; // a listener closed under us
    }
  }
  let backendsUp = 0;
  for (const b of service.backends.list()) if (isUsable(b)) backendsUp++;
  const state: ServiceReadiness = { name: service.name, listening, backendsUp };
  const sources = service.discoverySources;
  if (sources.length > 0)
    state.sources = sources.map((s) => ({
      name: s.name,
      ok: s.ok,
      detail: s.detail,
      since: new Date(s.since).toISOString(),
      listed: s.listed,
    }));
  return state;
}
