import type { FastifyRequest } from 'fastify';
import { type AdminRoute, CLUSTER, type ClusterBridge } from '../../../plugin-sdk/index.js';
import { CLUSTER_WINDOW, clusterSessions } from '../cluster-sessions.js';
import type { AdminContext } from '../context.js';
import { BadRequest, type SessionsQuery, sessionsQuery } from '../schemas.js';

/**
 * `GET /sessions`: how many sessions are live, and one page of them (oldest first). A cluster
 * primary holds no sessions: it asks the workers and merges their pages; each session then
 * carries `worker` and `pid`, since ids are per worker.
 */
export function sessionRoutes(ctx: AdminContext): AdminRoute[] {
  return [
    {
      method: 'GET',
      url: '/sessions',
      schema: { querystring: sessionsQuery },
      handler: async (request) => {
        const { limit, offset } = (request as FastifyRequest<{ Querystring: SessionsQuery }>).query;
        const service = ctx.serviceOf(request);
        const bridge = ctx.runtime.role === 'primary' ? ctx.runtime.use<ClusterBridge>(CLUSTER) : undefined;
        if (bridge !== undefined) {
          if (offset + limit > CLUSTER_WINDOW)
            throw new BadRequest(
              `with several workers, offset + limit must be at most ${CLUSTER_WINDOW} (got ${offset + limit})`,
            );
          const page = await clusterSessions(bridge, service.name, offset, limit);
          return {
            service: service.name,
            count: page.count,
            offset,
            limit,
            workers: page.workers,
            sessions: page.sessions,
          };
        }
        const sessions: Record<string, unknown>[] = [];
        let i = 0;
        for (const session of service.sessions.values()) {
          if (i++ < offset) continue;
          if (sessions.length >= limit) break;
          sessions.push(session.toJSON());
        }
        return { service: service.name, count: service.sessionCount, offset, limit, sessions };
      },
    },
  ];
}
