import { normalizeServerName } from './names.js';

/**
 * Reads a TLS ClientHello from the first bytes of a connection, without terminating TLS: the
 * server name (SNI, RFC 6066) and the ALPN protocols offered (RFC 7301). TLS 1.0 to 1.3 send
 * the same ClientHello layout (RFC 8446 §4.1.2 keeps the 1.2 one), so one parser serves all.
 *
 * The hello may be split across TCP segments (the caller calls again with more bytes) and
 * across TLS records (RFC 8446 §5.1 allows a handshake message to be fragmented). Everything
 * is bounds-checked: a malformed or oversized hello yields a reason, never an exception.
 */

/** Why a connection's first bytes are not an acceptable ClientHello. */
export type HelloProblem =
  /** The first bytes are not a TLS handshake record (plain text, SSLv2, another protocol). */
  | 'not-tls'
  /** A TLS handshake that breaks the format: bad lengths, not a ClientHello, a bad name. */
  | 'malformed'
  /** The hello needs more bytes than the configured limit. */
  | 'too-large';

/** What a complete ClientHello said. */
export interface ClientHello {
  /** Server name, lower-case, without a trailing dot; undefined when the client sent none. */
  sni: string | undefined;
  /** Protocols offered, in the client's order; undefined without an ALPN extension. */
  alpn: string[] | undefined;
  /** Record-layer minor version of the first record (1: TLS 1.0 ... 3: TLS 1.2/1.3), for alerts. */
  recordMinor: number;
}

/** `'more'`: incomplete so far; else the hello or a problem (`detail` says what, for logs). */
export type HelloResult = 'more' | ClientHello | { problem: HelloProblem; detail: string };

const RECORD_HEADER = 5;
const HANDSHAKE_HEADER = 4;
const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
/** TLSPlaintext.length may not exceed 2^14 (RFC 8446 §5.1). */
const MAX_RECORD = 16_384;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const NAME_TYPE_HOST = 0;
/** Real clients offer a handful; more is an attempt to make us allocate. */
const MAX_ALPN_PROTOCOLS = 32;

function problem(p: HelloProblem, detail: string): { problem: HelloProblem; detail: string } {
  return { problem: p, detail };
}

/**
 * Where a scan of the records stopped: resumed by the next call with more bytes, so a hello
 * trickled in many segments costs O(bytes) in all, not O(bytes²). Records are only passed
 * once complete, so resuming is exact.
 */
export class HelloScan {
  /** Start of the first record not yet scanned. */
  offset = 0;
  /** Handshake bytes in the records scanned. */
  got = 0;
  /** Handshake header bytes read (type + 24-bit length): 0..4. */
  headSeen = 0;
  head = 0;
  /** Handshake message length with its header; -1 until the header is read. */
  needed = -1;
  records = 0;
  recordMinor = 0;

  reset(): this {
    this.offset = 0;
    this.got = 0;
    this.headSeen = 0;
    this.head = 0;
    this.needed = -1;
    this.records = 0;
    this.recordMinor = 0;
    return this;
  }

  copy(): HelloScan {
    return Object.assign(new HelloScan(), this);
  }
}

/**
 * Parses the ClientHello at the start of `bytes`, needing at most `limit` bytes in all (record
 * headers included). Returns `'more'` while the bytes end before the hello does; `scan` then
 * holds the progress to pass with the next, longer `bytes` (same start). Decides as early as
 * the bytes allow: a first byte that is not a handshake record is `not-tls` at once, a length
 * over the limit `too-large` before its bytes arrive.
 */
export function parseClientHello(bytes: Buffer, limit: number, scan: HelloScan): HelloResult {
  const n = bytes.length;
  if (n === 0) return 'more';
  if (bytes[0] !== CONTENT_HANDSHAKE) return problem('not-tls', `first byte 0x${hex(bytes[0]!)}`);
  while (scan.needed < 0 || scan.got < scan.needed) {
    const offset = scan.offset;
    if (n - offset < RECORD_HEADER) {
      if (offset + RECORD_HEADER > limit) return problem('too-large', `over ${limit} bytes`);
      // The record-layer version is checkable before the header is whole.
      if (n > offset + 1 && bytes[offset + 1] !== 3) return badVersion(offset, bytes[offset + 1]!);
      if (n > offset && bytes[offset] !== CONTENT_HANDSHAKE) return otherRecord(bytes[offset]!);
      return 'more';
    }
    if (bytes[offset] !== CONTENT_HANDSHAKE) return otherRecord(bytes[offset]!);
    const major = bytes[offset + 1]!;
    const minor = bytes[offset + 2]!;
    if (major !== 3 || minor > 4) return badVersion(offset, major, minor);
    const length = bytes.readUInt16BE(offset + 3);
    if (length === 0) return problem('malformed', 'empty handshake record');
    if (length > MAX_RECORD) return problem('malformed', `record of ${length} bytes (max ${MAX_RECORD})`);
    const start = offset + RECORD_HEADER;
    const end = start + length;
    if (end > limit) return problem('too-large', `over ${limit} bytes`);
    // The handshake header (type, 24-bit length) may itself be split across records; every
    // earlier record was whole, so this record's first byte is handshake byte `got`.
    let headSeen = scan.headSeen;
    let head = scan.head;
    for (let i = start; headSeen < HANDSHAKE_HEADER && i < end && i < n; i++) {
      const b = bytes[i]!;
      if (headSeen === 0) {
        if (b !== HANDSHAKE_CLIENT_HELLO)
          return problem('malformed', `handshake message of type ${b}, not a ClientHello`);
      } else head = head * 256 + b;
      headSeen++;
      if (headSeen === HANDSHAKE_HEADER && HANDSHAKE_HEADER + head + RECORD_HEADER > limit)
        return problem('too-large', `a ClientHello of ${HANDSHAKE_HEADER + head} bytes`);
    }
    if (end > n) return 'more';
    if (scan.records === 0) scan.recordMinor = minor;
    scan.headSeen = headSeen;
    scan.head = head;
    if (headSeen === HANDSHAKE_HEADER) scan.needed = HANDSHAKE_HEADER + head;
    scan.got += length;
    scan.offset = end;
    scan.records++;
  }
  const hello = handshakeBytes(bytes, scan.records, scan.needed);
  return parseHelloBody(hello.subarray(HANDSHAKE_HEADER, scan.needed), scan.recordMinor);
}

function otherRecord(type: number): { problem: HelloProblem; detail: string } {
  return problem('malformed', `record of type ${type} before the ClientHello ended`);
}

function badVersion(
  offset: number,
  major: number,
  minor?: number,
): { problem: HelloProblem; detail: string } {
  const version = minor === undefined ? `${major}.x` : `${major}.${minor}`;
  return offset === 0
    ? problem('not-tls', `record version ${version}`)
    : problem('malformed', `record version ${version} inside the ClientHello`);
}

/** The handshake message's bytes: a view when it sits in one record, else a copy joined from all. */
function handshakeBytes(bytes: Buffer, records: number, needed: number): Buffer {
  if (records === 1) return bytes.subarray(RECORD_HEADER, RECORD_HEADER + needed);
  const out = Buffer.allocUnsafe(needed);
  let offset = 0;
  let at = 0;
  for (let r = 0; r < records && at < needed; r++) {
    const length = bytes.readUInt16BE(offset + 3);
    const take = Math.min(length, needed - at);
    bytes.copy(out, at, offset + RECORD_HEADER, offset + RECORD_HEADER + take);
    at += take;
    offset += RECORD_HEADER + length;
  }
  return out;
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}

/**
 * The ClientHello body (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2): version, random, session id,
 * cipher suites, compression methods, then extensions (absent in some TLS 1.0-1.2 hellos).
 */
function parseHelloBody(body: Buffer, recordMinor: number): HelloResult {
  const n = body.length;
  let p = 0;
  if (n < 2 + 32 + 1) return problem('malformed', 'ClientHello too short');
  if (body[0] !== 3) return problem('malformed', `client version ${body[0]}.${body[1]}`);
  p = 2 + 32;
  const sessionId = body[p]!;
  if (sessionId > 32) return problem('malformed', `session id of ${sessionId} bytes`);
  p += 1 + sessionId;
  if (p + 2 > n) return problem('malformed', 'ClientHello ends in the cipher suites');
  const suites = body.readUInt16BE(p);
  if (suites < 2 || suites % 2 !== 0) return problem('malformed', `cipher suites of ${suites} bytes`);
  p += 2 + suites;
  if (p + 1 > n) return problem('malformed', 'ClientHello ends in the cipher suites');
  const compression = body[p]!;
  if (compression < 1) return problem('malformed', 'no compression method');
  p += 1 + compression;
  if (p > n) return problem('malformed', 'ClientHello ends in the compression methods');
  const hello: ClientHello = { sni: undefined, alpn: undefined, recordMinor };
  if (p === n) return hello; // no extensions: no name, no ALPN
  if (p + 2 > n) return problem('malformed', 'truncated extensions length');
  const extensionsEnd = p + 2 + body.readUInt16BE(p);
  if (extensionsEnd !== n) return problem('malformed', 'extensions length does not match the ClientHello');
  p += 2;
  let seenName = false;
  let seenAlpn = false;
  while (p < extensionsEnd) {
    if (p + 4 > extensionsEnd) return problem('malformed', 'truncated extension header');
    const type = body.readUInt16BE(p);
    const length = body.readUInt16BE(p + 2);
    const start = p + 4;
    const end = start + length;
    if (end > extensionsEnd) return problem('malformed', `extension ${type} overruns the ClientHello`);
    if (type === EXT_SERVER_NAME) {
      if (seenName) return problem('malformed', 'two server_name extensions');
      seenName = true;
      const name = readServerName(body, start, end);
      if (typeof name !== 'string') return name;
      hello.sni = name;
    } else if (type === EXT_ALPN) {
      if (seenAlpn) return problem('malformed', 'two ALPN extensions');
      seenAlpn = true;
      const alpn = readAlpn(body, start, end);
      if (!Array.isArray(alpn)) return alpn;
      hello.alpn = alpn;
    }
    p = end;
  }
  return hello;
}

/** server_name (RFC 6066 §3): a list of (type, name); one host_name at most. */
function readServerName(
  body: Buffer,
  start: number,
  end: number,
): string | { problem: HelloProblem; detail: string } {
  if (end - start < 2 || start + 2 + body.readUInt16BE(start) !== end)
    return problem('malformed', 'server_name list length does not match its extension');
  let p = start + 2;
  let host: string | undefined;
  while (p < end) {
    if (p + 3 > end) return problem('malformed', 'truncated server_name entry');
    const type = body[p]!;
    const length = body.readUInt16BE(p + 1);
    const nameStart = p + 3;
    const nameEnd = nameStart + length;
    if (nameEnd > end) return problem('malformed', 'server name overruns its extension');
    if (type === NAME_TYPE_HOST) {
      if (host !== undefined) return problem('malformed', 'two host names in server_name');
      // latin1 maps each byte to one character, so a non-ASCII byte fails the name check.
      const normalized = normalizeServerName(body.toString('latin1', nameStart, nameEnd));
      if (normalized === undefined) return problem('malformed', 'server name is not a valid host name');
      host = normalized;
    }
    p = nameEnd;
  }
  if (host === undefined) return problem('malformed', 'server_name without a host name');
  return host;
}

/** application_layer_protocol_negotiation (RFC 7301 §3.1): non-empty list of non-empty names. */
function readAlpn(
  body: Buffer,
  start: number,
  end: number,
): string[] | { problem: HelloProblem; detail: string } {
  if (end - start < 2 || start + 2 + body.readUInt16BE(start) !== end)
    return problem('malformed', 'ALPN list length does not match its extension');
  if (end - start === 2) return problem('malformed', 'empty ALPN list');
  const protocols: string[] = [];
  let p = start + 2;
  while (p < end) {
    const length = body[p]!;
    if (length === 0) return problem('malformed', 'empty ALPN protocol name');
    if (p + 1 + length > end) return problem('malformed', 'ALPN protocol name overruns its extension');
    if (protocols.length === MAX_ALPN_PROTOCOLS)
      return problem('malformed', `more than ${MAX_ALPN_PROTOCOLS} ALPN protocols`);
    protocols.push(body.toString('latin1', p + 1, p + 1 + length));
    p += 1 + length;
  }
  return protocols;
}
