import type { AdminRoute, FastifyRequest } from '../../plugin-sdk/admin.js';
import type { Runtime } from '../../plugin-sdk/index.js';
import type { SourceLimitsApi } from './index.js';

const query = {
  type: 'object',
  additionalProperties: false,
  properties: {
    service: { type: 'string', minLength: 1, maxLength: 200 },
    limit: { type: 'integer', minimum: 0, maximum: 1000, default: 20 },
  },
} as const;

/** An error fastify answers with its status code and message. */
function httpError(statusCode: number, message: string): Error {
  return Object.assign(new Error(message), { statusCode });
}

/**
 * `GET /source-limits?service=&limit=`: a service's counters and its busiest sources (HAProxy's
 * `show table`). One route for every service of the process.
 */
export function sourceLimitsRoutes(runtime: Runtime): AdminRoute[] {
  return [
    {
      method: 'GET',
      url: '/source-limits',
      schema: { querystring: query },
      handler: async (request: FastifyRequest) => {
        const { service: name, limit } = request.query as { service?: string; limit: number };
        const service = name === undefined ? runtime.defaultService : runtime.services.get(name);
        if (service === undefined) throw httpError(404, `no service "${name}"`);
        if (runtime.role === 'primary')
          throw httpError(
            409,
            'with several workers each worker keeps its own source table; refusals are counted in the metrics (switchyard_service_rejections_total)',
          );
        const api = service.use<SourceLimitsApi>('source-limits');
        if (api === undefined)
          throw httpError(404, `source-limits is not enabled in service "${service.name}"`);
        return { service: service.name, stats: api.stats, sources: api.sources, top: api.top(limit) };
      },
    },
  ];
}
