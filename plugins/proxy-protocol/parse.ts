import { formatIp, parseIp } from '../../plugin-sdk/index.js';
import { crc32c } from './crc32c.js';

/**
 * PROXY protocol header parsing, versions 1 and 2 (haproxy.org doc/proxy-protocol.txt).
 * Strict: anything that does not exactly match the spec is refused, as the spec demands.
 */

/** The v2 signature: `\r\n\r\n\0\r\nQUIT\n`. */
export const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_SIGNATURE = Buffer.from('PROXY ', 'latin1');

/** Longest v1 line the spec allows, CRLF included. */
export const V1_MAX_LENGTH = 107;
/** Fixed part of a v2 header. */
export const V2_FIXED_LENGTH = 16;
/** Longest v2 address block (two AF_UNIX paths). */
export const V2_MAX_ADDRESS_LENGTH = 216;

/** TLV types read (pp2 `PP2_TYPE_*`). */
export const TLV = Object.freeze({ ALPN: 0x01, AUTHORITY: 0x02, CRC32C: 0x03, NOOP: 0x04, UNIQUE_ID: 0x05 });

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** What a header said. */
export interface ProxyHeader {
  readonly version: 1 | 2;
  /** `local`: v2 LOCAL (a health check of the sender itself); the connection's own endpoints apply. */
  readonly command: 'proxy' | 'local';
  /**
   * `tcp4` / `tcp6`: source and destination are set. `unknown`: v1 UNKNOWN, or a v2 family or
   * transport the receiver ignores (AF_UNSPEC, AF_UNIX, UDP) — the connection's own endpoints apply.
   */
  readonly family: 'tcp4' | 'tcp6' | 'unknown';
  readonly source?: Endpoint;
  readonly destination?: Endpoint;
  /** v2 TLV 0x02: the server name the client asked the first proxy for (SNI). */
  readonly authority?: string;
  /** v2 TLV 0x01: the application protocol (ALPN) of the client's connection. */
  readonly alpn?: string;
  /** v2 TLV 0x05: the sender's identifier of the connection, as hex. */
  readonly uniqueId?: string;
  /** Header bytes on the wire (consumed). */
  readonly length: number;
}

/** Not a header (yet): `more` = a valid prefix, wait for bytes; otherwise why it is refused. */
export type ParseResult = ProxyHeader | 'more' | { readonly invalid: string };

const invalid = (reason: string) => ({ invalid: reason });

/**
 * Parses the header at the start of `bytes`. `maxV2Length` caps a v2 header's declared length
 * (16 + address block + TLVs); longer ones are refused without waiting for them.
 */
export function parseProxyHeader(bytes: Buffer, maxV2Length: number): ParseResult {
  if (bytes.length === 0) return 'more';
  if (bytes[0] === 0x50) return parseV1(bytes);
  if (bytes[0] === 0x0d) return parseV2(bytes, maxV2Length);
  return invalid('not a PROXY protocol header');
}

/** True when `bytes` (shorter than `sig`) could still become `sig`. */
function prefixMatches(bytes: Buffer, sig: Buffer): boolean {
  const n = Math.min(bytes.length, sig.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== sig[i]) return false;
  return true;
}

// ---- version 1 ----

function parseV1(bytes: Buffer): ParseResult {
  if (!prefixMatches(bytes, V1_SIGNATURE)) return invalid('not a PROXY protocol header');
  const limit = Math.min(bytes.length, V1_MAX_LENGTH);
  let lf = -1;
  for (let i = V1_SIGNATURE.length; i < limit; i++) {
    const c = bytes[i]!;
    if (c === 0x0a) {
      lf = i;
      break;
    }
    // US-ASCII printable only; a CR must be the one before the LF.
    if (c === 0x0d) {
      if (i + 1 < bytes.length && bytes[i + 1] !== 0x0a) return invalid('v1: CR without LF');
    } else if (c < 0x20 || c > 0x7e) return invalid('v1: a byte that is not printable ASCII');
  }
  if (lf < 0) {
    if (bytes.length >= V1_MAX_LENGTH) return invalid(`v1: no CRLF in the first ${V1_MAX_LENGTH} bytes`);
    return 'more';
  }
  if (bytes[lf - 1] !== 0x0d) return invalid('v1: line ends with LF alone, not CRLF');
  const line = bytes.toString('latin1', 0, lf - 1);
  const length = lf + 1;
  const fields = line.split(' ');
  const proto = fields[1];
  if (proto === 'UNKNOWN') return { version: 1, command: 'proxy', family: 'unknown', length };
  if (proto !== 'TCP4' && proto !== 'TCP6') return invalid(`v1: unknown protocol "${proto ?? ''}"`);
  if (fields.length !== 6) return invalid(`v1: ${proto} needs 4 fields after it, got ${fields.length - 2}`);
  const v6 = proto === 'TCP6';
  const src = v1Address(fields[2]!, v6);
  const dst = v1Address(fields[3]!, v6);
  const sport = v1Port(fields[4]!);
  const dport = v1Port(fields[5]!);
  if (src === null || dst === null) return invalid(`v1: address is not ${v6 ? 'IPv6' : 'IPv4'}`);
  if (sport < 0 || dport < 0) return invalid('v1: port is not 0-65535 (no leading zeros)');
  return {
    version: 1,
    command: 'proxy',
    family: v6 ? 'tcp6' : 'tcp4',
    source: { address: src, port: sport },
    destination: { address: dst, port: dport },
    length,
  };
}

/** The canonical text of a v1 address of the announced family, or null. */
function v1Address(text: string, v6: boolean): string | null {
  if (text.includes(':') !== v6 || text.includes('%')) return null;
  const bytes = parseIp(text);
  return bytes === null ? null : v6 ? formatV6(bytes) : text;
}

function v1Port(text: string): number {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return -1;
  const n = Number(text);
  return n <= 65535 ? n : -1;
}

/** An IPv6 header address as Node writes socket addresses (IPv4-mapped stays `::ffff:a.b.c.d`). */
function formatV6(bytes: Uint8Array): string {
  const text = formatIp(bytes);
  return text.includes(':') ? text : `::ffff:${text}`;
}

// ---- version 2 ----

function parseV2(bytes: Buffer, maxLength: number): ParseResult {
  if (!prefixMatches(bytes, V2_SIGNATURE)) return invalid('not a PROXY protocol header');
  if (bytes.length < V2_FIXED_LENGTH) return 'more';
  const verCmd = bytes[12]!;
  if (verCmd >> 4 !== 2) return invalid(`v2: version ${verCmd >> 4}, expected 2`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return invalid(`v2: unknown command ${cmd}`);
  const famProto = bytes[13]!;
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  if (family > 3) return invalid(`v2: unknown address family ${family}`);
  if (transport > 2) return invalid(`v2: unknown transport protocol ${transport}`);
  const declared = bytes.readUInt16BE(14);
  const length = V2_FIXED_LENGTH + declared;
  if (length > maxLength) return invalid(`v2: header of ${length} bytes is over the ${maxLength}-byte limit`);
  if (bytes.length < length) return 'more';
  const addressLength = family === 1 ? 12 : family === 2 ? 36 : family === 3 ? 216 : 0;
  if (declared < addressLength) return invalid(`v2: ${declared} bytes cannot hold the announced addresses`);
  const tlvs = parseTlvs(bytes, V2_FIXED_LENGTH + addressLength, length);
  if ('invalid' in tlvs) return tlvs;
  const extra = { version: 2 as const, length, ...tlvs };
  if (cmd === 0) return { ...extra, command: 'local', family: 'unknown' };
  // Only TCP over IPv4/IPv6 names a client; other valid combinations use the real endpoints.
  if (transport !== 1 || (family !== 1 && family !== 2))
    return { ...extra, command: 'proxy', family: 'unknown' };
  const at = V2_FIXED_LENGTH;
  let source: string;
  let destination: string;
  let ports: number;
  if (family === 1) {
    source = `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`;
    destination = `${bytes[at + 4]}.${bytes[at + 5]}.${bytes[at + 6]}.${bytes[at + 7]}`;
    ports = at + 8;
  } else {
    source = formatV6(bytes.subarray(at, at + 16));
    destination = formatV6(bytes.subarray(at + 16, at + 32));
    ports = at + 32;
  }
  return {
    ...extra,
    command: 'proxy',
    family: family === 1 ? 'tcp4' : 'tcp6',
    source: { address: source, port: bytes.readUInt16BE(ports) },
    destination: { address: destination, port: bytes.readUInt16BE(ports + 2) },
  };
}

interface Tlvs {
  authority?: string;
  alpn?: string;
  uniqueId?: string;
}

/** Reads the TLVs in `bytes[from, to)`; verifies a CRC32C one over the whole header. */
function parseTlvs(bytes: Buffer, from: number, to: number): Tlvs | { invalid: string } {
  const out: Tlvs = {};
  let i = from;
  let crcAt = -1;
  while (i < to) {
    if (to - i < 3) return invalid('v2: truncated TLV');
    const type = bytes[i]!;
    const len = bytes.readUInt16BE(i + 1);
    const value = i + 3;
    if (value + len > to) return invalid(`v2: TLV 0x${type.toString(16)} runs past the header`);
    if (type === TLV.AUTHORITY) {
      const name = bytes.toString('utf8', value, value + len);
      // A host name: printable, no spaces; anything else is not passed on.
      if (len > 0 && len <= 255 && /^[\x21-\x7e\u0080-\uffff]+$/.test(name) && !name.includes('\ufffd'))
        out.authority = name.toLowerCase();
    } else if (type === TLV.ALPN) {
      if (len > 0 && len <= 255) out.alpn = bytes.toString('latin1', value, value + len);
    } else if (type === TLV.UNIQUE_ID) {
      if (len > 128) return invalid('v2: UNIQUE_ID TLV longer than 128 bytes');
      out.uniqueId = bytes.toString('hex', value, value + len);
    } else if (type === TLV.CRC32C) {
      if (len !== 4) return invalid('v2: CRC32C TLV is not 4 bytes');
      crcAt = value;
    }
    i = value + len;
  }
  if (crcAt >= 0) {
    const header = Buffer.from(bytes.subarray(0, to));
    const expected = header.readUInt32BE(crcAt);
    header.fill(0, crcAt, crcAt + 4);
    if (crc32c(header) !== expected) return invalid('v2: CRC32C checksum mismatch');
  }
  return out;
}
