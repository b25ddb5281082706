import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  type AdminRoute,
  type Backend,
  type BackendSpec,
  formatAddress,
  ORIGIN_API,
  ORIGIN_CONFIG,
  parseAddress,
  RegistryError,
  type Service,
} from '../../../plugin-sdk/index.js';
import { backendJson } from '../backend-json.js';
import type { AdminContext } from '../context.js';
import {
  type AddBody,
  addBody,
  addressParams,
  BadRequest,
  type DrainQuery,
  drainQuery,
  drainTimeoutOf,
  type PatchBody,
  patchBody,
  serviceQuery,
} from '../schemas.js';

type AddressRequest = FastifyRequest<{ Params: { address: string }; Querystring: DrainQuery }>;

/** Where a backend lives in the REST API (the service is kept when it is not the default). */
export function backendLocation(ctx: AdminContext, service: Service, address: string): string {
  const path = `/backends/${encodeURIComponent(address)}`;
  return service === ctx.runtime.defaultService
    ? path
    : `${path}?service=${encodeURIComponent(service.name)}`;
}

/** The registered backend at `address`: 400 when malformed, 404 when unknown (as the registry words it). */
export function requireBackend(service: Service, address: string): Backend {
  const parsed = parseAddress(address);
  if (typeof parsed === 'string')
    throw new RegistryError('SWITCHYARD_E_BACKEND_INVALID', `backend address: ${parsed}`);
  const backend = service.backends.get(address);
  if (backend === undefined)
    throw new RegistryError(
      'SWITCHYARD_E_BACKEND_NOT_FOUND',
      `no backend ${formatAddress(parsed.host, parsed.port)}`,
    );
  return backend;
}

/** Adds a backend from a validated body; shared by `POST /backends` and the legacy `POST /add`. */
export async function addBackend(ctx: AdminContext, request: FastifyRequest, service: Service) {
  const body = request.body as AddBody;
  const spec: BackendSpec = { address: body.address };
  if (body.weight !== undefined) spec.weight = body.weight;
  if (body.tls !== undefined) spec.tls = body.tls;
  if (body.insecure_skip_verify !== undefined) spec.insecure_skip_verify = body.insecure_skip_verify;
  const writer = ctx.writerFor(service);
  let backend: Backend;
  if (writer !== undefined) backend = await writer.add(service, spec);
  else {
    refuseIfExclusive(service);
    backend = service.backends.add(spec, { origin: ORIGIN_API });
  }
  await ctx.changed(request, service, 'add', backend);
  return backend;
}

/**
 * Without a writer for it, a service whose whole list an exclusive source holds cannot be
 * changed here: the next update of the source would undo it.
 */
function refuseIfExclusive(service: Service): void {
  const source = service.exclusiveSource;
  if (source !== undefined)
    throw new RegistryError(
      'SWITCHYARD_E_BACKEND_MANAGED',
      `the backends of service ${service.name} come from ${source}; change them there`,
    );
}

/**
 * A discovery source's backend cannot be removed here (its next update would bring it back);
 * drain and weight stay allowed, as operational overrides until the source changes them.
 */
function refuseIfDiscovered(backend: Backend): void {
  if (backend.origin !== ORIGIN_CONFIG && backend.origin !== ORIGIN_API)
    throw new RegistryError(
      'SWITCHYARD_E_BACKEND_MANAGED',
      `backend ${backend.address} comes from ${backend.origin}; remove it there (or drain it here)`,
    );
}

/** Removes (drains) a backend; shared by `DELETE /backends/{address}` and the legacy `GET /remove`. */
export async function removeBackend(
  ctx: AdminContext,
  request: FastifyRequest,
  service: Service,
  address: string,
  query: DrainQuery,
) {
  const drainTimeout = drainTimeoutOf(query);
  const options = drainTimeout === undefined ? {} : { drainTimeout };
  const writer = ctx.writerFor(service);
  let backend: Backend;
  if (writer !== undefined) backend = await writer.remove(service, address, options);
  else {
    refuseIfDiscovered(requireBackend(service, address));
    backend = service.backends.remove(address, options);
  }
  await ctx.changed(request, service, 'remove', backend);
  return backend;
}

/** The REST resource `/backends`. */
export function backendRoutes(ctx: AdminContext): AdminRoute[] {
  return [
    {
      method: 'GET',
      url: '/backends',
      schema: { querystring: serviceQuery },
      handler: async (request) => {
        const service = ctx.serviceOf(request);
        return { service: service.name, backends: service.backends.list().map(backendJson) };
      },
    },
    {
      method: 'POST',
      url: '/backends',
      schema: { querystring: serviceQuery, body: addBody },
      handler: async (request, reply: FastifyReply) => {
        const service = ctx.serviceToChange(request);
        const backend = await addBackend(ctx, request, service);
        reply.code(201).header('location', backendLocation(ctx, service, backend.address));
        return backendJson(backend);
      },
    },
    {
      method: 'GET',
      url: '/backends/:address',
      schema: { params: addressParams, querystring: serviceQuery },
      handler: async (request) => {
        const { address } = (request as AddressRequest).params;
        return backendJson(requireBackend(ctx.serviceOf(request), address));
      },
    },
    {
      method: 'PATCH',
      url: '/backends/:address',
      schema: { params: addressParams, querystring: drainQuery, body: patchBody },
      handler: async (request) => {
        const { params, query } = request as AddressRequest;
        const body = request.body as PatchBody;
        const service = ctx.serviceToChange(request);
        const drainTimeout = drainTimeoutOf(query);
        if (drainTimeout !== undefined && body.drain !== true)
          throw new BadRequest('query.drain_timeout applies only with "drain": true');
        const writer = ctx.writerFor(service);
        let backend: Backend;
        if (writer !== undefined) {
          backend = await writer.update(service, params.address, {
            ...(body.weight === undefined ? {} : { weight: body.weight }),
            ...(body.drain === undefined ? {} : { draining: body.drain }),
            ...(drainTimeout === undefined ? {} : { drainTimeout }),
          });
        } else {
          backend = requireBackend(service, params.address);
          if (body.weight !== undefined) service.backends.setWeight(backend.address, body.weight);
          if (body.drain !== undefined)
            service.backends.setDraining(
              backend.address,
              body.drain,
              drainTimeout === undefined ? {} : { drainTimeout },
            );
        }
        await ctx.changed(request, service, 'update', backend);
        return backendJson(backend);
      },
    },
    {
      method: 'DELETE',
      url: '/backends/:address',
      schema: { params: addressParams, querystring: drainQuery },
      handler: async (request) => {
        const { params, query } = request as AddressRequest;
        const service = ctx.serviceToChange(request);
        return backendJson(await removeBackend(ctx, request, service, params.address, query));
      },
    },
  ];
}
