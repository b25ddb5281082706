import {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
  fastify,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { type AdminRoute, RegistryError, type Runtime } from '../../plugin-sdk/index.js';
import { type AuthSettings, bearerAuth, isMutatingMethod, type RouteAuth } from './auth.js';
import { backendJson } from './backend-json.js';
import { type BrowserGuardSettings, crossSiteCheck, type GuardCounts, hostCheck } from './browser-guard.js';
import { describeValidation, validatorCompiler } from './validation.js';

export interface ServerSettings {
  runtime: Runtime;
  log: Logger;
  /** Read per request: a reload may change it (index.ts `reconfigure`). */
  auth: AuthSettings;
  /** Read per request, like `auth`. */
  guard: BrowserGuardSettings;
  /** Refusals by the Host and cross-site checks, counted here. */
  refused: GuardCounts;
  bodyLimit: number;
  /** ms; see the options of the same names. */
  idleTimeout: number;
  headerTimeout: number;
  requestTimeout: number;
}

/** An error whose status and message are meant for the client. */
class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The fastify instance: strict JSON parsing, token check, `?service=` check, JSON errors,
 * then every route (the plugin's own and those other plugins contributed).
 */
export function createServer(settings: ServerSettings, routes: readonly AdminRoute[]): FastifyInstance {
  const { runtime, log, bodyLimit } = settings;
  const app = fastify({
    // fastify's own info lines ("Server listening at ...") repeat the plugin's start line;
    // keep its warnings and errors, and everything at debug.
    loggerInstance: (log.isLevelEnabled('debug')
      ? log
      : log.child({}, { level: 'warn' })) as FastifyBaseLogger,
    // Changes are logged by the handlers (audit lines); per-request lines would only add noise.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    // A slot held by a client that sends nothing, or sends slowly, is a slot the operator
    // lacks: silent connections end after idleTimeout (socket inactivity, also between
    // keep-alive requests), slow ones after headerTimeout / requestTimeout with a 408.
    connectionTimeout: settings.idleTimeout,
    keepAliveTimeout: settings.idleTimeout,
    requestTimeout: settings.requestTimeout,
    // Node checks header and request deadlines every connectionsCheckingInterval (30 s by default).
    // (Node wants the header deadline within the request deadline, which includes it anyway.)
    http: {
      headersTimeout: Math.min(settings.headerTimeout, settings.requestTimeout),
      connectionsCheckingInterval: 1000,
    },
    return503OnClosing: true,
  });
  app.setValidatorCompiler(validatorCompiler);

  // Only JSON bodies: other types get 415. Requiring application/json also means a browser page
  // cannot send a state change without a CORS preflight, which this server never answers.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') {
      done(new HttpError(400, 'request body is empty; send a JSON object'), undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(new HttpError(400, `malformed JSON body: ${(err as Error).message}`), undefined);
    }
  });

  // Host first (a rebinding page must learn nothing, not even whether it needs a token), then
  // where a browser says a change comes from, then the token.
  app.addHook('onRequest', hostCheck(settings.guard, settings.refused, log));
  app.addHook('onRequest', crossSiteCheck(settings.guard, settings.refused));
  app.addHook('onRequest', bearerAuth(settings.auth));

  app.addHook('preValidation', async (request, reply) => {
    const name = (request.query as Record<string, unknown> | undefined)?.service;
    if (name === undefined) return;
    if (typeof name !== 'string') return reply.code(400).send({ error: 'query.service must be given once' });
    if (!runtime.services.has(name)) {
      const known = [...runtime.services.keys()].join(', ');
      return reply.code(404).send({ error: `unknown service "${name}" (services: ${known})` });
    }
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}` });
  });

  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply) => {
    if (err.validation) {
      reply.code(400).send({ error: describeValidation(err.validationContext, err.validation) });
      return;
    }
    if (err instanceof RegistryError) {
      // The stable code (docs/errors.md) lets scripts tell "exists" from "managed by a source";
      // a duplicate says which backend it duplicates, as the API shows it.
      reply
        .code(err.status)
        .send(
          err.existing === undefined
            ? { error: err.message, code: err.code }
            : { error: err.message, code: err.code, existing: backendJson(err.existing) },
        );
      return;
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      reply.code(status).send({ error: clientMessage(err, bodyLimit, request) });
      return;
    }
    // Only errors written for the client (a change that could not be saved, a service still
    // starting) show their message; anything else is a bug, logged here and hidden.
    const exposed = (err as { expose?: boolean }).expose === true;
    if (!exposed) log.error({ err, method: request.method, url: request.url }, 'admin request failed');
    reply.code(status).send({ error: exposed ? err.message : 'internal error' });
  });

  for (const route of routes) {
    const { mutating, ...options } = route;
    const auth: RouteAuth = {
      ...(options.config as RouteAuth | undefined),
      mutating: mutating ?? isMutatingMethod(options.method),
    };
    try {
      app.route({ ...options, config: { ...(options.config as object | undefined), ...auth } });
    } catch (err) {
      throw new Error(`admin route ${String(options.method)} ${options.url}: ${(err as Error).message}`);
    }
  }
  return app;
}

/** fastify's own client errors, reworded to say what to do. */
function clientMessage(err: FastifyError, bodyLimit: number, request: FastifyRequest): string {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `request body is larger than ${bodyLimit} bytes`;
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return `unsupported content type "${request.headers['content-type'] ?? ''}"; send JSON with "Content-Type: application/json"`;
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'request body size does not match Content-Length';
    default:
      return err.message;
  }
}
