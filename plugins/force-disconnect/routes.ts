import type { AdminRoute, FastifyRequest } from '../../plugin-sdk/admin.js';
import type { ForceDisconnect } from './switch.js';

const query = {
  type: 'object',
  additionalProperties: false,
  // Accepted for uniformity with the other admin endpoints; the switch is process-wide.
  properties: { service: { type: 'string' } },
} as const;

const body = {
  type: 'object',
  additionalProperties: false,
  required: ['enabled'],
  properties: { enabled: { type: 'boolean' } },
} as const;

/** `POST /force_disconnect {"enabled": bool}` and `GET /force_disconnect`, as in the original Go proxy. */
export function forceDisconnectRoutes(fd: ForceDisconnect): AdminRoute[] {
  return [
    {
      method: 'POST',
      url: '/force_disconnect',
      schema: { querystring: query, body },
      handler: async (request: FastifyRequest) =>
        fd.setFleetWide((request.body as { enabled: boolean }).enabled),
    },
    {
      method: 'GET',
      url: '/force_disconnect',
      schema: { querystring: query },
      handler: async () => fd.state(),
    },
  ];
}
