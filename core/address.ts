import { isIP } from 'node:net';
import { formatIp, formatIpv6, isIpv4, parseIp } from './ip.js';
import type { HostPort } from './types.js';

/*
 * One backend, one identity. A backend is identified by its address as written, normalised so
 * that spellings of the same text address are one backend (docs/configuration.md, "Backend
 * identity"):
 * - host names in lower case, without a trailing dot (DNS names are case-insensitive);
 * - IPv4 as four decimal numbers without leading zeros (`127.0.0.1`). Short, octal, hex and
 *   zero-padded forms (`127.1`, `0x7f.0.0.1`, `127.000.0.1`) are refused: resolvers read them
 *   differently (a leading zero means octal to inet_aton), so they name no one address;
 * - IPv6 in the canonical text of RFC 5952: lower case, no leading zeros, the longest run of
 *   zero groups as `::`, IPv4-mapped addresses as `::ffff:a.b.c.d`; a zone (`%eth0`) kept;
 * - the port as a number.
 * Names are not resolved: `localhost:80` and `127.0.0.1:80` are two backends, as they may be
 * two servers, and what a name resolves to changes while the backend stays.
 */

/** Host names: letters, digits and hyphens in dot-separated labels of 1-63, optional final dot. */
const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/;

/** A last label that makes resolvers read the whole name as an IPv4 address (WHATWG URL "ends in a number"). */
const NUMERIC_LABEL = /^(\d+|0x[0-9a-f]*)$/i;

/**
 * Parses `host:port`, `[v6]:port` or `:port` into the normalised host and the port. Returns an
 * error message instead of throwing so config and admin API callers can attach their own
 * location.
 */
export function parseAddress(input: string): HostPort | string {
  if (typeof input !== 'string' || input.length === 0)
    return 'address must be a non-empty "host:port" string';
  if (input.length > 300) return 'address is too long';
  let host: string;
  let portText: string;
  if (input.startsWith('[')) {
    const close = input.indexOf(']');
    if (close < 0 || input[close + 1] !== ':') return `"${input}" is not "[ipv6]:port"`;
    host = input.slice(1, close);
    portText = input.slice(close + 2);
    if (isIP(host) !== 6) return `"${host}" is not an IPv6 address`;
    host = canonicalIPv6(host);
  } else {
    const colon = input.lastIndexOf(':');
    if (colon < 0) return `"${input}" has no port (expected "host:port")`;
    host = input.slice(0, colon);
    portText = input.slice(colon + 1);
    if (host.includes(':')) return `"${input}": write IPv6 addresses in brackets, as "[::1]:8080"`;
    if (host === '') host = '0.0.0.0';
    else if (isIP(host) === 0) {
      if (!HOST_NAME.test(host)) return `"${host}" is not a valid IP address or host name`;
      const name = host.toLowerCase().replace(/\.$/, '');
      if (NUMERIC_LABEL.test(name.slice(name.lastIndexOf('.') + 1)))
        return `"${host}" is not an IPv4 address as four decimal numbers without leading zeros (a.b.c.d); short, octal, hex and zero-padded forms are read differently by different resolvers`;
      host = name;
    }
  }
  if (!/^\d{1,5}$/.test(portText)) return `"${portText}" is not a port number`;
  const port = Number(portText);
  if (port < 1 || port > 65535) return `port ${port} is out of range 1-65535`;
  return { host, port };
}

/** The canonical text form: IPv6 in brackets. Give it a host from `parseAddress` for a backend's identity. */
export function formatAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * A backend's identity: the normalised `host:port` of `input`, or an error message (the rules
 * at the top of this file). Two specs with the same identity are one backend.
 */
export function backendIdentity(input: string): { address: string } | { error: string } {
  const parsed = parseAddress(input);
  return typeof parsed === 'string'
    ? { error: parsed }
    : { address: formatAddress(parsed.host, parsed.port) };
}

/** Like `parseAddress` but for listeners, where port 0 (any free port) is allowed. */
export function parseListenAddress(input: string): HostPort | string {
  if (typeof input === 'string' && /:0$/.test(input)) {
    const parsed = parseAddress(input.replace(/:0$/, ':1'));
    return typeof parsed === 'string' ? parsed : { host: parsed.host, port: 0 };
  }
  return parseAddress(input);
}

/** RFC 5952 text of an address `isIP` accepts as IPv6 (a zone id is kept as written). */
export function canonicalIPv6(text: string): string {
  const pct = text.indexOf('%');
  const zone = pct < 0 ? '' : text.slice(pct);
  const bytes = parseIp(pct < 0 ? text : text.slice(0, pct));
  // parseIp is stricter than isIP in corners (zero-padded embedded IPv4): keep such text as is.
  if (bytes === null) return text.toLowerCase();
  return `${isIpv4(bytes) ? `::ffff:${formatIp(bytes)}` : formatIpv6(bytes)}${zone}`;
}
