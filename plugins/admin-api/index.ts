import type { AddressInfo } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import {
  ADMIN_ROUTES,
  type AdminRoute,
  definePlugin,
  ENDPOINTS,
  type Endpoint,
  formatAddress,
  parseListenAddress,
  REGISTRY_WRITER,
  type RegistryWriter,
  type Runtime,
  type Service,
} from '../../plugin-sdk/index.js';
import { type AuthSettings, isLoopbackHost } from './auth.js';
import type { BrowserGuardSettings, GuardCounts } from './browser-guard.js';
import { checkOptions } from './check.js';
import { type AdminContext, NotPersisted, Unavailable } from './context.js';
import { type AdminApiOptions, optionsSchema, TOKEN_ENV } from './options.js';
import type { BackendPersistence } from './persistence.js';
import { backendRoutes } from './routes/backends.js';
import { healthRoutes } from './routes/health.js';
import { legacyRoutes } from './routes/legacy.js';
import { sessionRoutes } from './routes/sessions.js';
import { workerRoutes } from './routes/workers.js';

/** What admin-api provides to other plugins and tests: `runtime.use<AdminApi>('admin-api')`. */
export interface AdminApi {
  /** The bound `host:port` (IPv6 in brackets), or null while not listening. */
  address(): string | null;
  /**
   * What callers must send: `token` whether a token is configured (none: every call is
   * accepted, loopback only); `readsOpen` whether GET/HEAD calls pass without it. Read live
   * (a reload may rotate the token). The dashboard enables its buttons from this.
   */
  auth(): { token: boolean; readsOpen: boolean };
  /** Requests refused since start, by reason; a copy. */
  refused(): AdminRefusals;
}

/** What `AdminApi.refused()` counts. */
export interface AdminRefusals extends GuardCounts {
  /** Connections closed at accept because `max_connections` were open. */
  connections: number;
}

/**
 * The admin HTTP API (fastify): backends (REST and the original Go proxy's endpoints),
 * sessions, probes, and the routes other plugins contribute through `ADMIN_ROUTES`.
 */
/** What `reconfigure` changes in place, per runtime. */
const states = new WeakMap<
  Runtime,
  { options: AdminApiOptions; auth: AuthSettings; guard: BrowserGuardSettings; log: Logger }
>();

/**
 * The token in effect: the option, else the environment. Throws when none is set but the
 * listen address is reachable from other hosts.
 */
function tokenOf(options: AdminApiOptions, log: Logger): string | undefined {
  const token = options.token ?? (process.env[TOKEN_ENV] || undefined);
  if (token === undefined && !isLoopbackHost(parseListen(options.listen).host))
    throw new Error(
      `admin-api: listen address ${options.listen} is reachable from other hosts, so a token is mandatory: set the "token" option or ${TOKEN_ENV}`,
    );
  if (token !== undefined && token.length < 16)
    log.warn('the admin token is shorter than 16 characters; use a long random one');
  return token;
}

export default definePlugin<AdminApiOptions>({
  name: 'admin-api',
  scope: 'process',
  runsIn: 'primary',
  description: 'Admin HTTP API: backends, sessions, probes and routes contributed by other plugins.',
  schema: optionsSchema,
  check: (options) => checkOptions(options),
  async apply(runtime, options) {
    const log = runtime.log.child({ plugin: 'admin-api' });
    const listen = parseListen(options.listen);
    const share = runtime.capacity.listeners.reserveShare('admin-api', options.max_connections);
    // Imported here, as fastify is below: cluster workers import this module but never apply
    // it, and the state file's validators would put ajv in their heap.
    const persistence: BackendPersistence | undefined =
      options.state_file === undefined
        ? undefined
        : new (await import('./persistence.js')).BackendPersistence(runtime, options.state_file, log);
    let app: FastifyInstance | undefined;
    let bound: string | null = null;

    const serviceOf = (request: FastifyRequest): Service =>
      runtime.service((request.query as { service?: string } | undefined)?.service) as Service;
    const ctx: AdminContext = {
      runtime,
      log,
      serviceOf,
      writerFor(service) {
        const writer = runtime.use<RegistryWriter>(REGISTRY_WRITER);
        return writer?.holds(service) === true ? writer : undefined;
      },
      serviceToChange(request) {
        const service = serviceOf(request);
        if (isStarting(service)) throw new Unavailable(`service ${service.name} is starting; retry shortly`);
        return service;
      },
      async changed(request, service, op, backend) {
        log.info(
          {
            service: service.name,
            backend: backend.address,
            state: backend.state,
            weight: backend.weight,
            op,
            ip: request.ip,
          },
          `backend ${op} via admin API`,
        );
        // A shared store keeps it (and every instance has it); the state file is for local lists.
        if (persistence === undefined || ctx.writerFor(service) !== undefined) return;
        try {
          await persistence.record(service);
        } catch (err) {
          log.error({ err, file: persistence.path }, 'cannot save the state file');
          throw new NotPersisted(err as Error);
        }
      },
    };

    const auth: AuthSettings = { token: undefined, readOnlyOpen: options.read_only_open };
    const refused: GuardCounts = { host: 0, crossSite: 0 };
    runtime.contribute<Endpoint>(ENDPOINTS, {
      name: 'admin',
      url: () => (bound === null ? null : `http://${bound}/`),
    });
    runtime.provide<AdminApi>('admin-api', {
      address: () => bound,
      auth: () => ({ token: auth.token !== undefined, readsOpen: auth.readOnlyOpen }),
      refused: () => ({ ...refused, connections: share.refused }),
    });

    const guard: BrowserGuardSettings = { allowedHosts: options.allowed_hosts, listenHost: listen.host };
    states.set(runtime, { options, auth, guard, log });

    runtime.hooks.start.tapPromise('admin-api', async () => {
      const token = tokenOf(options, log);
      auth.token = token;
      await persistence?.restore();

      const routes: AdminRoute[] = [
        ...healthRoutes(ctx),
        ...backendRoutes(ctx),
        ...legacyRoutes(ctx),
        ...sessionRoutes(ctx),
        ...workerRoutes(ctx),
        ...runtime.contributions<AdminRoute>(ADMIN_ROUTES),
      ];
      // Imported here, not at the top: every process imports this module, and cluster workers
      // (which never run the admin API) need not load fastify.
      const { createServer } = await import('./server.js');
      const server = createServer(
        {
          runtime,
          log,
          auth,
          guard,
          refused,
          bodyLimit: options.body_limit,
          idleTimeout: options.idle_timeout,
          headerTimeout: options.header_timeout,
          requestTimeout: options.request_timeout,
        },
        routes,
      );
      runtime.capacity.listeners.guard(share, server.server);
      try {
        await server.listen({ host: listen.host, port: listen.port });
      } catch (err) {
        await server.close();
        const e = err as NodeJS.ErrnoException;
        throw new Error(`admin-api cannot listen on ${options.listen}: ${e.code ?? e.message}`);
      }
      app = server;
      const a = server.server.address() as AddressInfo;
      bound = formatAddress(a.address, a.port);
      log.info(
        { address: bound, token: token !== undefined, stateFile: persistence?.path },
        'admin API listening',
      );
    });

    runtime.hooks.stop.tapPromise('admin-api', async () => {
      const server = app;
      app = undefined;
      bound = null;
      await server?.close();
      await persistence?.flush();
    });
  },
  /**
   * Reload (cluster primary): `token`, `read_only_open` and `allowed_hosts` change in place, so
   * a token is rotated with a SIGHUP; `listen`, `state_file`, `body_limit`, `max_connections`
   * and the timeouts need a restart.
   */
  reconfigure(runtime, options) {
    const state = states.get(runtime);
    if (!state) return;
    const { log, auth, guard } = state;
    const restart = (
      [
        'listen',
        'state_file',
        'body_limit',
        'max_connections',
        'idle_timeout',
        'header_timeout',
        'request_timeout',
      ] as const
    ).filter((k) => options[k] !== state.options[k]);
    if (restart.length > 0) log.warn({ options: restart }, 'admin-api: these options change at restart only');
    if (options.listen !== state.options.listen) options = { ...options, listen: state.options.listen };
    let token: string | undefined;
    try {
      token = tokenOf(options, log);
    } catch (err) {
      log.error({ err }, 'admin-api: reloaded options rejected; keeping the current token');
      return;
    }
    const rotated = token !== auth.token;
    auth.token = token;
    auth.readOnlyOpen = options.read_only_open;
    guard.allowedHosts = options.allowed_hosts;
    state.options = options;
    log.info(
      { token: token !== undefined, rotated, readOnlyOpen: auth.readOnlyOpen },
      'admin-api: options reloaded',
    );
  },
});

/** Between the admin server's start and the end of the service's own start (backends added, listeners bound). */
function isStarting(service: Service): boolean {
  if (service.state === 'new') return true;
  if (service.state !== 'running') return false;
  // A cluster primary binds nothing (its workers do): running means started.
  if (service.runtime.role === 'primary') return false;
  try {
    return service.addresses().length < service.config.listen.length;
  } catch {
    return false;
  }
}

/** `listen` as host and port; port 0 (any free port) is allowed here, unlike for backends. */
function parseListen(text: string): { host: string; port: number } {
  const parsed = parseListenAddress(text);
  if (typeof parsed === 'string') throw new Error(`admin-api: listen: ${parsed}`);
  return parsed;
}
