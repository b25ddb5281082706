import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** What the auth check needs to know about a route (kept in fastify's route `config`). */
export interface RouteAuth {
  /** Changes state: needs the token whenever one is configured. */
  mutating?: boolean;
  /** Probes (`/healthz`, `/readyz`): never need a token. */
  public?: boolean;
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./i.test(host) || host === '0:0:0:0:0:0:0:1';
  return false;
}

/** Whether a method may change state when the route does not say (`mutating` default). */
export function isMutatingMethod(method: string | string[]): boolean {
  const methods = Array.isArray(method) ? method : [method];
  return methods.some((m) => m !== 'GET' && m !== 'HEAD');
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * The token settings the check reads on every request, so a reload can rotate the token
 * (`reconfigure`) without restarting the server. `token` undefined: no check (loopback only).
 */
export interface AuthSettings {
  token: string | undefined;
  readOnlyOpen: boolean;
}

/**
 * The bearer token check as a fastify `onRequest` hook. Digests have equal length, so
 * `timingSafeEqual` compares in constant time and the token's length does not leak either.
 * A token that is presented must be right even where none is needed: a stale token is a
 * configuration error worth surfacing.
 */
export function bearerAuth(settings: AuthSettings) {
  // Recomputed only when a reload changes the token.
  let digestOf: string | undefined;
  let expected = Buffer.alloc(0);
  const deny = (reply: FastifyReply, error: string) =>
    reply.code(401).header('www-authenticate', 'Bearer realm="switchyard-admin"').send({ error });

  return async function checkToken(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { token, readOnlyOpen } = settings;
    if (token === undefined) return;
    if (token !== digestOf) {
      digestOf = token;
      expected = digest(token);
    }
    const auth = (request.routeOptions.config ?? {}) as RouteAuth;
    const header = request.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
      if (match === null) return deny(reply, 'malformed Authorization header; expected "Bearer <token>"');
      if (!timingSafeEqual(digest(match[1]!), expected)) return deny(reply, 'invalid token');
      return;
    }
    if (auth.public === true) return;
    const mutating = auth.mutating ?? isMutatingMethod(request.method);
    if (!mutating && readOnlyOpen) return;
    return deny(reply, 'missing token: send "Authorization: Bearer <token>"');
  };
}
