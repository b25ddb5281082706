import { formatIpv6, isIpv4, parseIp } from '../../plugin-sdk/index.js';
import { TLV, V2_FIXED_LENGTH, V2_SIGNATURE } from './parse.js';

/** PROXY protocol headers a sender writes (haproxy.org doc/proxy-protocol.txt). */

export type Version = 'v1' | 'v2';

/** What the header tells the backend: the client, where it connected, and TLS facts. */
export interface HeaderFacts {
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
  /** Server name (SNI) for the v2 AUTHORITY TLV. */
  authority?: string;
  /** Application protocol for the v2 ALPN TLV. */
  alpn?: string;
}

// Scratch buffers: building is synchronous, so one pair serves every header.
const src = new Uint8Array(16);
const dst = new Uint8Array(16);

/** v2 LOCAL: "a connection the proxy made on purpose" (health checks); 16 bytes, no address. */
export const V2_LOCAL = Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);

const V1_UNKNOWN = Buffer.from('PROXY UNKNOWN\r\n', 'latin1');

/**
 * The header for `facts`. Both endpoints IPv4 → TCP4; otherwise TCP6 with IPv4 ones in their
 * mapped form. Unparseable addresses (e.g. a client on a Unix socket) give v1 UNKNOWN or a v2
 * PROXY header with AF_UNSPEC: the backend then uses the connection's own endpoints.
 */
export function buildHeader(version: Version, facts: HeaderFacts): Buffer {
  const ok = parseIp(facts.sourceAddress, src) !== null && parseIp(facts.destinationAddress, dst) !== null;
  return version === 'v1' ? buildV1(ok, facts) : buildV2(ok, facts);
}

function buildV1(ok: boolean, facts: HeaderFacts): Buffer {
  if (!ok) return V1_UNKNOWN;
  const v4 = isIpv4(src) && isIpv4(dst);
  const line = v4
    ? `PROXY TCP4 ${src[12]}.${src[13]}.${src[14]}.${src[15]} ${dst[12]}.${dst[13]}.${dst[14]}.${dst[15]} ${facts.sourcePort} ${facts.destinationPort}\r\n`
    : `PROXY TCP6 ${formatIpv6(src)} ${formatIpv6(dst)} ${facts.sourcePort} ${facts.destinationPort}\r\n`;
  return Buffer.from(line, 'latin1');
}

function buildV2(ok: boolean, facts: HeaderFacts): Buffer {
  const v4 = ok && isIpv4(src) && isIpv4(dst);
  const addressLength = !ok ? 0 : v4 ? 12 : 36;
  const authority = facts.authority === undefined ? null : Buffer.from(facts.authority, 'utf8');
  const alpn = facts.alpn === undefined ? null : Buffer.from(facts.alpn, 'latin1');
  const tlvLength = (authority === null ? 0 : 3 + authority.length) + (alpn === null ? 0 : 3 + alpn.length);
  const out = Buffer.allocUnsafe(V2_FIXED_LENGTH + addressLength + tlvLength);
  V2_SIGNATURE.copy(out, 0);
  out[12] = 0x21; // version 2, PROXY
  out[13] = !ok ? 0x00 : v4 ? 0x11 : 0x21; // AF_UNSPEC, or TCP over IPv4 / IPv6
  out.writeUInt16BE(addressLength + tlvLength, 14);
  let at = V2_FIXED_LENGTH;
  if (ok) {
    if (v4) {
      out.set(src.subarray(12), at);
      out.set(dst.subarray(12), at + 4);
      at += 8;
    } else {
      out.set(src, at);
      out.set(dst, at + 16);
      at += 32;
    }
    out.writeUInt16BE(facts.sourcePort, at);
    out.writeUInt16BE(facts.destinationPort, at + 2);
    at += 4;
  }
  if (alpn !== null) at = writeTlv(out, at, TLV.ALPN, alpn);
  if (authority !== null) writeTlv(out, at, TLV.AUTHORITY, authority);
  return out;
}

function writeTlv(out: Buffer, at: number, type: number, value: Buffer): number {
  out[at] = type;
  out.writeUInt16BE(value.length, at + 1);
  value.copy(out, at + 3);
  return at + 3 + value.length;
}

/**
 * The header a health check sends: v2 LOCAL; v1 has no LOCAL, so (as the spec advises) a
 * PROXY line with the check connection's own endpoints (getsockname / getpeername).
 */
export function buildLocalHeader(
  version: Version,
  local: { address?: string; port?: number },
  remote: { address?: string; port?: number },
): Buffer {
  if (version === 'v2') return V2_LOCAL;
  return buildHeader('v1', {
    sourceAddress: local.address ?? '',
    sourcePort: local.port ?? 0,
    destinationAddress: remote.address ?? '',
    destinationPort: remote.port ?? 0,
  });
}
