/**
 * Hand-built TLS ClientHellos for tests: the same layout real clients send (RFC 8446 §4.1.2),
 * with knobs to break it one field at a time.
 */

export interface HelloSpec {
  /** Server name; omit for a hello without the server_name extension. */
  sni?: string;
  /** ALPN protocols offered. */
  alpn?: string[];
  /** Record-layer version minor (1: TLS 1.0 record, what TLS 1.3 clients send; 3: TLS 1.2). */
  recordMinor?: number;
  /** Extra extensions as [type, data]. */
  extensions?: Array<[number, Buffer]>;
  /** Leave out the extensions block entirely (TLS 1.2 and earlier allow it). */
  noExtensions?: boolean;
  /** Pad the hello with a padding extension (RFC 7685) to about this many bytes. */
  padTo?: number;
}

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u24 = (n: number) => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);

export function extension(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), u16(data.length), data]);
}

export function serverNameExtension(name: string | Buffer, nameType = 0): Buffer {
  const bytes = typeof name === 'string' ? Buffer.from(name, 'latin1') : name;
  const entry = Buffer.concat([Buffer.from([nameType]), u16(bytes.length), bytes]);
  return extension(0, Buffer.concat([u16(entry.length), entry]));
}

export function alpnExtension(protocols: string[]): Buffer {
  const list = Buffer.concat(
    protocols.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])),
  );
  return extension(16, Buffer.concat([u16(list.length), list]));
}

/** The ClientHello handshake message (type 1, 24-bit length, body) for `spec`. */
export function helloMessage(spec: HelloSpec = {}, rawExtensions?: Buffer): Buffer {
  const exts: Buffer[] = [];
  if (spec.sni !== undefined) exts.push(serverNameExtension(spec.sni));
  if (spec.alpn !== undefined) exts.push(alpnExtension(spec.alpn));
  // supported_versions with TLS 1.3 and 1.2, as a 1.3 client sends.
  exts.push(extension(43, Buffer.from([4, 3, 4, 3, 3])));
  for (const [type, data] of spec.extensions ?? []) exts.push(extension(type, data));
  let extBytes = rawExtensions ?? Buffer.concat(exts);
  const fixed = 2 + 32 + 1 + 32 + 2 + 4 + 2;
  if (spec.padTo !== undefined && rawExtensions === undefined) {
    const pad = Math.max(0, spec.padTo - fixed - 4 - extBytes.length - 4 - 2);
    extBytes = Buffer.concat([extBytes, extension(21, Buffer.alloc(pad))]);
  }
  const body = Buffer.concat([
    Buffer.from([3, 3]), // legacy_version TLS 1.2
    Buffer.alloc(32, 7), // random
    Buffer.from([32]),
    Buffer.alloc(32, 9), // legacy_session_id
    u16(4),
    Buffer.from([0x13, 0x01, 0xc0, 0x2f]), // TLS_AES_128_GCM_SHA256, ECDHE-RSA-AES128-GCM-SHA256
    Buffer.from([1, 0]), // compression: null
    ...(spec.noExtensions ? [] : [u16(extBytes.length), extBytes]),
  ]);
  return Buffer.concat([Buffer.from([1]), u24(body.length), body]);
}

/** Wraps handshake bytes into records of at most `fragment` bytes each (default: one record). */
export function records(message: Buffer, fragment = 16_384, minor = 1): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < message.length; i += fragment) {
    const part = message.subarray(i, i + fragment);
    out.push(Buffer.from([22, 3, minor, part.length >> 8, part.length & 0xff]), part);
  }
  return Buffer.concat(out);
}

/** A whole ClientHello as the first bytes of a connection. */
export function clientHello(spec: HelloSpec = {}, fragment?: number): Buffer {
  return records(helloMessage(spec), fragment, spec.recordMinor ?? 1);
}
