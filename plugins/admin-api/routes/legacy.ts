import type { FastifyRequest } from 'fastify';
import type { AdminRoute } from '../../../plugin-sdk/index.js';
import { backendJson } from '../backend-json.js';
import type { AdminContext } from '../context.js';
import { addBody, type RemoveQuery, removeQuery, serviceQuery } from '../schemas.js';
import { addBackend, removeBackend } from './backends.js';

/**
 * The endpoints of the original Go proxy, kept so its users' scripts keep working:
 * `POST /add`, `GET /remove?address=`, `GET /get`. (`/force_disconnect` comes from the
 * force-disconnect plugin.)
 */
export function legacyRoutes(ctx: AdminContext): AdminRoute[] {
  return [
    {
      method: 'POST',
      url: '/add',
      schema: { querystring: serviceQuery, body: addBody },
      handler: async (request) => backendJson(await addBackend(ctx, request, ctx.serviceToChange(request))),
    },
    {
      method: 'GET',
      url: '/remove',
      // A GET that changes state (as in the original): it needs the token like any other change.
      mutating: true,
      schema: { querystring: removeQuery },
      handler: async (request) => {
        const query = (request as FastifyRequest<{ Querystring: RemoveQuery }>).query;
        return backendJson(
          await removeBackend(ctx, request, ctx.serviceToChange(request), query.address, query),
        );
      },
    },
    {
      method: 'GET',
      url: '/get',
      schema: { querystring: serviceQuery },
      handler: async (request) => ctx.serviceOf(request).backends.list().map(backendJson),
    },
  ];
}
