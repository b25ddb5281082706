import type { FastifyRequest } from 'fastify';
import type { AdminRoute, Session } from '../../../plugin-sdk/index.js';
import type { AdminContext } from '../context.js';
import { type SessionsQuery, sessionsQuery } from '../schemas.js';

type WithJson = Session & { toJSON?(): Record<string, unknown> };

/** `GET /sessions`: how many sessions are live, and one page of them (oldest first). */
export function sessionRoutes(ctx: AdminContext): AdminRoute[] {
  return [
    {
      method: 'GET',
      url: '/sessions',
      schema: { querystring: sessionsQuery },
      handler: async (request) => {
        const { limit, offset } = (request as FastifyRequest<{ Querystring: SessionsQuery }>).query;
        const service = ctx.serviceOf(request);
        const sessions: Record<string, unknown>[] = [];
        let i = 0;
        for (const session of service.sessions.values()) {
          if (i++ < offset) continue;
          if (sessions.length >= limit) break;
          sessions.push(describe(session as WithJson));
        }
        return { service: service.name, count: service.sessionCount, offset, limit, sessions };
      },
    },
  ];
}

function describe(s: WithJson): Record<string, unknown> {
  if (typeof s.toJSON === 'function') return s.toJSON();
  return {
    id: s.id,
    service: s.service.name,
    listener: s.listener.address,
    client: `${s.remoteAddress}:${s.remotePort}`,
    backend: s.backend?.address ?? null,
    startedAt: new Date(s.startedAt).toISOString(),
    connected: s.connectedAt > 0,
    attempts: s.attempts,
    bytesIn: s.bytesIn,
    bytesOut: s.bytesOut,
    closeReason: s.closeReason,
  };
}
