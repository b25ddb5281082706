import { isIP } from 'node:net';
import type { HostPort } from './types.js';

/**
 * Parses `host:port`, `[v6]:port` or `:port`. Returns an error message instead of throwing so
 * config and admin API callers can attach their own location.
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
  } else {
    const colon = input.lastIndexOf(':');
    if (colon < 0) return `"${input}" has no port (expected "host:port")`;
    host = input.slice(0, colon);
    portText = input.slice(colon + 1);
    if (host.includes(':')) return `"${input}": write IPv6 addresses in brackets, as "[::1]:8080"`;
    if (host === '') host = '0.0.0.0';
    else if (
      isIP(host) === 0 &&
      !/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/.test(host)
    )
      return `"${host}" is not a valid IP address or host name`;
  }
  if (!/^\d{1,5}$/.test(portText)) return `"${portText}" is not a port number`;
  const port = Number(portText);
  if (port < 1 || port > 65535) return `port ${port} is out of range 1-65535`;
  return { host, port };
}

/** The canonical text form: IPv6 in brackets. */
export function formatAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Like `parseAddress` but for listeners, where port 0 (any free port) is allowed. */
export function parseListenAddress(input: string): HostPort | string {
  if (typeof input === 'string' && /:0$/.test(input)) {
    const parsed = parseAddress(input.replace(/:0$/, ':1'));
    return typeof parsed === 'string' ? parsed : { host: parsed.host, port: 0 };
  }
  return parseAddress(input);
}
