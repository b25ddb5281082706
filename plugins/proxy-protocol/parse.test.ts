import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildHeader, buildLocalHeader, V2_LOCAL } from './build.js';
import { crc32c } from './crc32c.js';
import { type ParseResult, parseProxyHeader, V2_SIGNATURE } from './parse.js';

const MAX = 16 + 216 + 2048;
const parse = (bytes: Buffer | string, max = MAX): ParseResult =>
  parseProxyHeader(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, max);

/** A v2 header from parts: command, family/transport byte, address block, TLVs. */
function v2(cmd: number, fam: number, addresses: Buffer, tlvs: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(16);
  V2_SIGNATURE.copy(head);
  head[12] = 0x20 | cmd;
  head[13] = fam;
  head.writeUInt16BE(addresses.length + tlvs.length, 14);
  return Buffer.concat([head, addresses, tlvs]);
}
const tlv = (type: number, value: Buffer | string) => {
  const v = typeof value === 'string' ? Buffer.from(value) : value;
  const out = Buffer.alloc(3 + v.length);
  out[0] = type;
  out.writeUInt16BE(v.length, 1);
  v.copy(out, 3);
  return out;
};
const ipv4Block = Buffer.from([192, 0, 2, 1, 198, 51, 100, 7, 0x30, 0x39, 0x01, 0xbb]); // 12345 → 443

describe('PROXY v1', () => {
  it('reads TCP4 and TCP6 lines and says how long they are', () => {
    const line = 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n';
    expect(parse(`${line}GET / HTTP/1.1\r\n`)).toEqual({
      version: 1,
      command: 'proxy',
      family: 'tcp4',
      source: { address: '192.168.0.1', port: 56324 },
      destination: { address: '192.168.0.11', port: 443 },
      length: line.length,
    });
    expect(parse('PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 1 65535\r\n')).toMatchObject({
      family: 'tcp6',
      source: { address: '2001:db8::1', port: 1 },
      destination: { address: '::1', port: 65535 },
    });
    // The longest line the spec allows (107 bytes) is accepted.
    const longest = `PROXY UNKNOWN ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 65535\r\n`;
    expect(longest.length).toBe(107);
    expect(parse(longest)).toMatchObject({ family: 'unknown', length: 107 });
    expect(parse('PROXY UNKNOWN\r\nx')).toEqual({
      version: 1,
      command: 'proxy',
      family: 'unknown',
      length: 15,
    });
  });

  it('asks for more on every strict prefix of a valid line', () => {
    const line = 'PROXY TCP4 10.0.0.1 10.0.0.2 1000 2000\r\n';
    for (let n = 1; n < line.length; n++) expect([n, parse(line.slice(0, n))]).toEqual([n, 'more']);
    expect(parse(line)).toMatchObject({ length: line.length });
  });

  it.each([
    ['proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n', 'not a PROXY'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', 'LF alone'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\n', 'CR without LF'],
    ['PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n', 'not IPv4'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n', 'port'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n', 'port'],
    ['PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n', 'fields'],
    ['PROXY TCP4 ::1 ::1 1 2\r\n', 'not IPv4'],
    ['PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n', 'not IPv6'],
    ['PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n', 'not IPv6'],
    ['PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n', 'unknown protocol'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', 'fields'],
    ['PROXY TCP4 1.2.3.4\x00 5.6.7.8 1 2\r\n', 'printable'],
    [`PROXY UNKNOWN ${'x'.repeat(100)}`, 'no CRLF in the first 107'],
    ['GET / HTTP/1.1\r\n', 'not a PROXY'],
  ])('refuses %j (%s)', (text, why) => {
    const result = parse(text);
    expect(result).toHaveProperty('invalid');
    expect((result as { invalid: string }).invalid).toMatch(new RegExp(why));
  });

  it('refuses early: a wrong first byte or signature is known before the line ends', () => {
    expect(parse('G')).toHaveProperty('invalid');
    expect(parse('PROXX')).toHaveProperty('invalid');
  });
});

describe('PROXY v2', () => {
  it('reads TCP over IPv4 and IPv6, with the TLVs it knows', () => {
    expect(parse(v2(1, 0x11, ipv4Block))).toEqual({
      version: 2,
      command: 'proxy',
      family: 'tcp4',
      source: { address: '192.0.2.1', port: 12345 },
      destination: { address: '198.51.100.7', port: 443 },
      length: 28,
    });
    const v6 = Buffer.alloc(36);
    v6[0] = 0x20;
    v6[1] = 0x01;
    v6[2] = 0x0d;
    v6[3] = 0xb8;
    v6[15] = 1;
    v6[31] = 1; // destination ::1
    v6.writeUInt16BE(40000, 32);
    v6.writeUInt16BE(8443, 34);
    const tlvs = Buffer.concat([
      tlv(0x04, Buffer.alloc(5)), // NOOP
      tlv(0x02, 'API.Example.COM'),
      tlv(0x01, 'h2'),
      tlv(0x05, Buffer.from([1, 2, 3])),
      tlv(0xea, 'vpce-0123'), // a custom TLV (AWS) is skipped
    ]);
    const header = v2(1, 0x21, v6, tlvs);
    expect(parse(Buffer.concat([header, Buffer.from('payload')]))).toEqual({
      version: 2,
      command: 'proxy',
      family: 'tcp6',
      source: { address: '2001:db8::1', port: 40000 },
      destination: { address: '::1', port: 8443 },
      authority: 'api.example.com',
      alpn: 'h2',
      uniqueId: '010203',
      length: header.length,
    });
  });

  it('LOCAL, AF_UNSPEC, AF_UNIX and UDP name no TCP client: the real endpoints apply', () => {
    expect(parse(V2_LOCAL)).toEqual({ version: 2, command: 'local', family: 'unknown', length: 16 });
    // LOCAL may still carry addresses; they are skipped.
    expect(parse(v2(0, 0x11, ipv4Block))).toMatchObject({ command: 'local', family: 'unknown', length: 28 });
    expect(parse(v2(1, 0x00, Buffer.alloc(0)))).toMatchObject({ command: 'proxy', family: 'unknown' });
    expect(parse(v2(1, 0x31, Buffer.alloc(216)))).toMatchObject({ family: 'unknown', length: 232 });
    expect(parse(v2(1, 0x12, ipv4Block))).toMatchObject({ family: 'unknown' });
  });

  it('verifies a CRC32C TLV', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    const header = v2(1, 0x11, ipv4Block, tlv(0x03, Buffer.alloc(4)));
    header.writeUInt32BE(crc32c(header), header.length - 4);
    expect(parse(header)).toMatchObject({ family: 'tcp4' });
    header[17] ^= 1; // flip a bit in the source address
    expect(parse(header)).toEqual({ invalid: 'v2: CRC32C checksum mismatch' });
  });

  it('asks for more on every strict prefix of a valid header', () => {
    const header = v2(1, 0x11, ipv4Block, tlv(0x02, 'example.com'));
    for (let n = 1; n < header.length; n++) expect([n, parse(header.subarray(0, n))]).toEqual([n, 'more']);
  });

  it.each([
    ['version 1', () => Object.assign(v2(1, 0x11, ipv4Block), { 12: 0x11 }), 'version 1'],
    ['command 2', () => Object.assign(v2(1, 0x11, ipv4Block), { 12: 0x22 }), 'command 2'],
    ['family 4', () => v2(1, 0x41, ipv4Block), 'family 4'],
    ['transport 3', () => v2(1, 0x13, ipv4Block), 'transport protocol 3'],
    ['short address block', () => v2(1, 0x21, ipv4Block), 'cannot hold'],
    ['truncated TLV', () => v2(1, 0x11, ipv4Block, Buffer.from([0x02, 0x00])), 'truncated TLV'],
    ['TLV past the end', () => v2(1, 0x11, ipv4Block, Buffer.from([0x02, 0x00, 0x09, 0x61])), 'runs past'],
    ['oversized unique id', () => v2(1, 0x11, ipv4Block, tlv(0x05, Buffer.alloc(129))), 'UNIQUE_ID'],
    ['CRC of 3 bytes', () => v2(1, 0x11, ipv4Block, tlv(0x03, Buffer.alloc(3))), 'CRC32C TLV'],
  ])('refuses %s', (_name, make, why) => {
    const result = parse(make());
    expect((result as { invalid: string }).invalid).toMatch(new RegExp(why));
  });

  it('refuses a declared length over the cap from the first 16 bytes, without waiting for it', () => {
    const head = v2(1, 0x11, ipv4Block, tlv(0xe0, Buffer.alloc(3000))).subarray(0, 16);
    expect(parse(head)).toEqual({ invalid: 'v2: header of 3031 bytes is over the 2280-byte limit' });
  });

  it('never throws on random input, and never claims more bytes than it was given', () => {
    for (let n = 0; n < 5000; n++) {
      const body = randomBytes(n % 300);
      const start = n % 3 === 0 ? V2_SIGNATURE : n % 3 === 1 ? Buffer.from('PROXY ') : Buffer.alloc(0);
      const bytes = Buffer.concat([start, Buffer.from([0x20 | (n & 1), n & 0xff]), body]);
      const result = parse(bytes, 300);
      if (typeof result === 'object' && 'length' in result)
        expect(result.length).toBeLessThanOrEqual(bytes.length);
    }
  });
});

describe('building headers', () => {
  const facts = (source: string, destination: string, tls: { authority?: string; alpn?: string } = {}) => ({
    sourceAddress: source,
    sourcePort: 5000,
    destinationAddress: destination,
    destinationPort: 25,
    ...tls,
  });

  it('v1: TCP4, TCP6 (IPv4-mapped written in hex), UNKNOWN', () => {
    expect(buildHeader('v1', facts('10.0.0.1', '10.0.0.2')).toString()).toBe(
      'PROXY TCP4 10.0.0.1 10.0.0.2 5000 25\r\n',
    );
    expect(buildHeader('v1', facts('::ffff:10.0.0.1', '::ffff:10.0.0.2')).toString()).toBe(
      'PROXY TCP4 10.0.0.1 10.0.0.2 5000 25\r\n',
    );
    expect(buildHeader('v1', facts('2001:db8::1', '10.0.0.2')).toString()).toBe(
      'PROXY TCP6 2001:db8::1 ::ffff:a00:2 5000 25\r\n',
    );
    expect(buildHeader('v1', facts('', '10.0.0.2')).toString()).toBe('PROXY UNKNOWN\r\n');
  });

  it('round-trips through the parser, v1 and v2, with SNI and ALPN TLVs on v2', () => {
    for (const [s, d] of [
      ['192.0.2.1', '198.51.100.2'],
      ['2001:db8::1', '2001:db8::2'],
      ['::ffff:192.0.2.1', '2001:db8::2'],
    ] as const) {
      for (const version of ['v1', 'v2'] as const) {
        const built = buildHeader(version, facts(s, d, { authority: 'api.example.com', alpn: 'h2' }));
        const parsed = parse(built);
        expect(parsed).toMatchObject({
          source: { port: 5000 },
          destination: { port: 25 },
          length: built.length,
        });
        if (version === 'v2') expect(parsed).toMatchObject({ authority: 'api.example.com', alpn: 'h2' });
      }
    }
    expect(parse(buildHeader('v2', facts('no', 'where')))).toMatchObject({
      command: 'proxy',
      family: 'unknown',
    });
  });

  it("health checks: v2 LOCAL; v1 a line with the check connection's own endpoints", () => {
    expect(buildLocalHeader('v2', {}, {})).toBe(V2_LOCAL);
    expect(
      buildLocalHeader(
        'v1',
        { address: '127.0.0.1', port: 40000 },
        { address: '127.0.0.2', port: 25 },
      ).toString(),
    ).toBe('PROXY TCP4 127.0.0.1 127.0.0.2 40000 25\r\n');
  });
});
