import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { RouteAuth } from './auth.js';

/**
 * Defences against what a web browser can be made to do to a server on the operator's machine.
 *
 * DNS rebinding: a page at `http://evil.example:9090` whose name the attacker then points at
 * 127.0.0.1 is same-origin with the admin API, so it reads and changes anything. Its requests
 * carry `Host: evil.example:9090`, so the API answers only the names it is reached by.
 * An IP literal is never a rebinding (the page's origin is then this very server), so every IP
 * is accepted; names must be `localhost` (or under `.localhost`, which resolves to loopback by
 * standard), the listen host, or in `allowed_hosts` — webpack-dev-server's `allowedHosts` rule.
 *
 * Cross-site requests: any page can make the browser send a GET (`<img>`, a link) or a form
 * POST to the admin API. Browsers label them (`Sec-Fetch-Site`, `Origin`), scripts and curl do
 * not, so requests that change state are refused when a browser says they come from elsewhere.
 */
export interface BrowserGuardSettings {
  /** Extra host names: `admin.example.com` exactly, `.example.com` for it and every subdomain. Read per request. */
  allowedHosts: readonly string[];
  /** The host of the admin API's `listen` option; a name there is allowed too. */
  listenHost: string;
}

/** Requests refused so far, by reason (admin-api's `refused()`, the metrics plugin). */
export interface GuardCounts {
  /** Host header not allowed (DNS rebinding, or a name missing from `allowed_hosts`). */
  host: number;
  /** A change a browser made for another site or origin. */
  crossSite: number;
}

/** Between two warnings about refused Host headers. */
const LOG_INTERVAL = 10_000;

/** The host name of a `Host` header (lower case, no port, no trailing dot, IPv6 without brackets), or undefined when malformed. */
export function hostNameOf(header: string): string | undefined {
  let name: string;
  if (header.startsWith('[')) {
    const close = header.indexOf(']');
    if (close < 0 || !/^(:\d{1,5})?$/.test(header.slice(close + 1))) return undefined;
    name = header.slice(1, close);
    return isIP(name) === 6 ? name.toLowerCase() : undefined;
  }
  name = header.replace(/:\d{1,5}$/, '');
  if (name === '' || !/^[A-Za-z0-9.-]+$/.test(name)) return undefined;
  return name.toLowerCase().replace(/\.$/, '');
}

/** Whether `name` (from `hostNameOf`) may reach the admin API. */
export function isAllowedHost(name: string, settings: BrowserGuardSettings): boolean {
  if (isIP(name) !== 0) return true;
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (name === settings.listenHost.toLowerCase().replace(/\.$/, '')) return true;
  return isListed(name, settings.allowedHosts);
}

/** Whether `name` matches an `allowed_hosts` entry (`.example.com` covers it and its subdomains). */
function isListed(name: string, allowedHosts: readonly string[]): boolean {
  return allowedHosts.some((entry) => {
    const e = entry.toLowerCase().replace(/\.$/, '');
    return e.startsWith('.') ? name === e.slice(1) || name.endsWith(e) : name === e;
  });
}

/**
 * `onRequest` hook: refuses (403) a request whose Host header names a host the admin API does
 * not answer to, logging at most once per interval how many were refused.
 */
export function hostCheck(settings: BrowserGuardSettings, counts: GuardCounts, log: Logger) {
  let lastLog = 0;
  return async function checkHost(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const header = request.headers.host;
    // Only HTTP/1.0 clients omit it (Node answers 400 to HTTP/1.1 without one); browsers never do.
    if (header === undefined || header === '') return;
    const name = hostNameOf(header);
    if (name !== undefined && isAllowedHost(name, settings)) return;
    counts.host++;
    const shown = JSON.stringify(header.slice(0, 100));
    const now = Date.now();
    if (now - lastLog >= LOG_INTERVAL) {
      lastLog = now;
      log.warn(
        { host: header.slice(0, 100), ip: request.ip, refusedSoFar: counts.host },
        'admin request with a Host header not in allowed_hosts refused (DNS rebinding?)',
      );
    }
    return reply.code(403).send({
      error: `Host ${shown} is not a name this admin API answers to; add it to admin-api "allowed_hosts" if it is yours`,
    });
  };
}

/** Sec-Fetch-Site values a browser sets for requests the user or the API's own pages started. */
const OWN_SITE = new Set(['same-origin', 'none']);

/**
 * `onRequest` hook for routes that change state: refuses (403) a request a browser made on
 * behalf of another site — `Sec-Fetch-Site` other than `same-origin`/`none` (typed in the
 * address bar), or an `Origin` that is not the admin API's own. Requests without either header
 * (curl, scripts, the original proxy's clients) pass.
 */
export function crossSiteCheck(settings: BrowserGuardSettings, counts: GuardCounts) {
  return async function checkSite(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const auth = (request.routeOptions.config ?? {}) as RouteAuth;
    if (auth.mutating !== true) return;
    const site = request.headers['sec-fetch-site'];
    if (site !== undefined && !OWN_SITE.has(site)) {
      counts.crossSite++;
      return reply.code(403).send({
        error: `cross-site request refused: this call changes state and the browser sent it for another site (Sec-Fetch-Site: ${site.slice(0, 40)})`,
      });
    }
    const origin = request.headers.origin;
    if (origin !== undefined && !isOwnOrigin(origin, request.headers.host, settings)) {
      counts.crossSite++;
      return reply.code(403).send({
        error: `cross-origin request refused: this call changes state and comes from a page at ${JSON.stringify(origin.slice(0, 100))}`,
      });
    }
  };
}

/**
 * An `Origin` is the API's own when its host and port are the request's Host (compared under
 * the origin's scheme, so `http://h` matches `Host: h:80`), or its host name is one the
 * operator listed in `allowed_hosts` (a TLS reverse proxy in front: `https://admin.example.com`).
 */
export function isOwnOrigin(
  origin: string,
  host: string | undefined,
  settings: BrowserGuardSettings,
): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // includes "null" (sandboxed frames, file: pages)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (host !== undefined) {
    try {
      if (new URL(`${url.protocol}//${host}`).host === url.host) return true;
    } catch {
      // a malformed Host never matches
    }
  }
  return isListed(url.hostname.replace(/\.$/, ''), settings.allowedHosts);
}
