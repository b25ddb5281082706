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
        if (problems.length === 0) return { ready: true, services: states };
        reply.code(503);
        return { ready: false, error: problems.join('; '), services: states };
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
  return { name: service.name, listening, backendsUp };
}
