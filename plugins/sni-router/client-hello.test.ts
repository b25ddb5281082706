import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { type ClientHello, type HelloResult, HelloScan, parseClientHello } from './client-hello.js';
import {
  alpnExtension,
  clientHello,
  extension,
  helloMessage,
  records,
  serverNameExtension,
} from './hello.test-support.js';

const LIMIT = 16_384;
const parse = (bytes: Buffer, limit = LIMIT): HelloResult => parseClientHello(bytes, limit, new HelloScan());

function hello(result: HelloResult): ClientHello {
  if (result === 'more' || 'problem' in result)
    throw new Error(`expected a hello, got ${JSON.stringify(result)}`);
  return result;
}

function problemOf(result: HelloResult): string {
  if (result === 'more') return 'more';
  return 'problem' in result ? result.problem : 'hello';
}

/** Feeds `bytes` in growing prefixes cut at `cuts`, as segments arrive, with one scan kept across calls. */
function feed(bytes: Buffer, cuts: number[], limit = LIMIT): { results: string[]; last: HelloResult } {
  const scan = new HelloScan();
  const results: string[] = [];
  let last: HelloResult = 'more';
  for (const end of [...cuts, bytes.length]) {
    last = parseClientHello(bytes.subarray(0, end), limit, scan);
    results.push(problemOf(last));
  }
  return { results, last };
}

describe('parseClientHello: what a hello says', () => {
  it('reads the server name and ALPN protocols, lower-cased and without the trailing dot', () => {
    const h = hello(parse(clientHello({ sni: 'API.Example.COM.', alpn: ['h2', 'http/1.1'] })));
    expect(h.sni).toBe('api.example.com');
    expect(h.alpn).toEqual(['h2', 'http/1.1']);
    expect(h.recordMinor).toBe(1);
  });

  it('a hello without server_name or ALPN, and one without any extension (TLS 1.2 allows it)', () => {
    expect(hello(parse(clientHello({})))).toMatchObject({ sni: undefined, alpn: undefined });
    expect(hello(parse(clientHello({ noExtensions: true })))).toMatchObject({
      sni: undefined,
      alpn: undefined,
    });
  });

  it('skips name types other than host_name and unknown extensions', () => {
    const list = Buffer.concat([
      Buffer.from([9, 0, 3]),
      Buffer.from('abc'),
      Buffer.from([0, 0, 3]),
      Buffer.from('x.y'),
    ]);
    const message = helloMessage(
      {},
      Buffer.concat([
        extension(0xfafa, Buffer.alloc(0)), // GREASE
        extension(0, Buffer.concat([Buffer.from([0, list.length]), list])),
      ]),
    );
    expect(hello(parse(records(message))).sni).toBe('x.y');
  });

  it('a hello split across TCP segments: "more" until the last byte, the same answer as in one piece', () => {
    const bytes = clientHello({ sni: 'split.example.com', alpn: ['h2'] }, undefined);
    const { results, last } = feed(bytes, [1, 3, 5, 9, 60, bytes.length - 1]);
    expect(results.slice(0, -1).every((r) => r === 'more')).toBe(true);
    expect(hello(last)).toEqual(hello(parse(bytes)));
  });

  it('a hello fragmented into many TLS records, the handshake header itself split', () => {
    const spec = { sni: 'frag.example.com', alpn: ['h2', 'http/1.1'] };
    for (const fragment of [1, 2, 3, 7, 100]) {
      const bytes = clientHello(spec, fragment);
      expect(hello(parse(bytes)).sni).toBe('frag.example.com');
      // Byte by byte, with the scan resumed each time.
      const cuts = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
      const { results, last } = feed(bytes, cuts);
      expect(results.filter((r) => r !== 'more')).toHaveLength(1);
      expect(hello(last).alpn).toEqual(['h2', 'http/1.1']);
    }
  });

  it('a trickled, finely fragmented hello costs linear work: the scan resumes where it stopped', () => {
    const bytes = clientHello({ sni: 'slow.example.com', padTo: 8000 }, 1);
    const scan = new HelloScan();
    for (let end = 1; end < bytes.length; end += 1) parseClientHello(bytes.subarray(0, end), LIMIT * 4, scan);
    // Each record is scanned once: the scan stands at the last complete record.
    expect(scan.records).toBe(Math.floor((bytes.length - 1) / 6));
    expect(hello(parseClientHello(bytes, LIMIT * 4, scan)).sni).toBe('slow.example.com');
  });
});

describe('parseClientHello: refusals', () => {
  it('not TLS: plain text, an SSLv2-style hello, another record version', () => {
    expect(problemOf(parse(Buffer.from('GET / HTTP/1.1\r\n')))).toBe('not-tls');
    expect(problemOf(parse(Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02])))).toBe('not-tls');
    expect(problemOf(parse(Buffer.from([22, 2])))).toBe('not-tls');
    expect(problemOf(parse(Buffer.from([22, 3, 9, 0, 5, 1, 0, 0, 1, 0])))).toBe('not-tls');
    // Decided on the first byte, before a whole record header arrived.
    expect(problemOf(parse(Buffer.from('G')))).toBe('not-tls');
  });

  const good = helloMessage({ sni: 'a.example.com', alpn: ['h2'] });
  /** The hello with `patch` applied to a copy of its handshake message. */
  const patched = (patch: (m: Buffer) => void) => {
    const m = Buffer.from(good);
    patch(m);
    return records(m);
  };
  const sidAt = 4 + 2 + 32;
  const suitesAt = sidAt + 1 + 32;

  const malformed: Array<[string, Buffer]> = [
    ['a ServerHello instead', patched((m) => (m[0] = 2))],
    ['an empty handshake record', Buffer.from([22, 3, 1, 0, 0])],
    ['a record over 2^14 bytes', Buffer.from([22, 3, 1, 0x40, 0x01, 1])],
    [
      'another record type inside the hello',
      Buffer.concat([records(good.subarray(0, 10)), Buffer.from([23, 3, 3, 0, 1, 0])]),
    ],
    ['client version 2.0', patched((m) => (m[4] = 2))],
    ['a session id of 33 bytes', patched((m) => (m[sidAt] = 33))],
    ['cipher suites of odd length', patched((m) => m.writeUInt16BE(3, suitesAt))],
    ['cipher suites past the end', patched((m) => m.writeUInt16BE(4000, suitesAt))],
    ['no compression method', patched((m) => (m[suitesAt + 6] = 0))],
    [
      'extensions length off by one',
      patched((m) => m.writeUInt16BE(m.readUInt16BE(suitesAt + 8) + 1, suitesAt + 8)),
    ],
    ['an empty hello body', records(Buffer.from([1, 0, 0, 0]))],
    ['a server name with a space', clientHello({ sni: 'bad name.example.com' })],
    [
      'a server name with a non-ASCII byte',
      records(helloMessage({}, serverNameExtension(Buffer.from('caf\xc3\xa9.example', 'latin1')))),
    ],
    ['a server name with an empty label', clientHello({ sni: 'a..example.com' })],
    ['a label over 63 characters', clientHello({ sni: `${'a'.repeat(64)}.example.com` })],
    ['a server name of zero bytes', clientHello({ sni: '' })],
    [
      'two host names',
      records(helloMessage({}, extension(0, Buffer.from([0, 10, 0, 0, 1, 0x61, 0, 0, 3, 0x62, 0x2e, 0x63])))),
    ],
    [
      'two server_name extensions',
      records(helloMessage({}, Buffer.concat([serverNameExtension('a.b'), serverNameExtension('c.d')]))),
    ],
    [
      'two ALPN extensions',
      records(helloMessage({}, Buffer.concat([alpnExtension(['h2']), alpnExtension(['h2'])]))),
    ],
    ['an empty ALPN list', records(helloMessage({}, extension(16, Buffer.from([0, 0]))))],
    ['an empty ALPN name', records(helloMessage({}, extension(16, Buffer.from([0, 1, 0]))))],
    ['too many ALPN names', records(helloMessage({ alpn: Array.from({ length: 33 }, (_, i) => `p${i}`) }))],
    ['an extension overrunning the hello', records(helloMessage({}, Buffer.from([0, 0, 0, 50, 0, 1])))],
    ['a truncated extension header', records(helloMessage({}, Buffer.from([0, 0, 0])))],
  ];
  it.each(malformed)('malformed: %s', (_what, bytes) => {
    expect(problemOf(parse(bytes))).toBe('malformed');
  });

  it('too large: decided from the lengths, before the bytes arrive', () => {
    const big = clientHello({ sni: 'big.example.com', padTo: 3000 });
    expect(problemOf(parse(big.subarray(0, 9), 1024))).toBe('too-large');
    expect(problemOf(parse(big, 1024))).toBe('too-large');
    // A record header that announces more than the limit.
    expect(problemOf(parse(Buffer.from([22, 3, 1, 0x10, 0x00]), 1024))).toBe('too-large');
    // Many small records: the headers count too.
    const fragmented = clientHello({ sni: 'big.example.com', padTo: 900 }, 10);
    expect(problemOf(parse(fragmented, 1024))).toBe('too-large');
    expect(hello(parse(fragmented, 2048)).sni).toBe('big.example.com');
  });

  it('never throws on mangled input (bounded fuzz of a real hello)', () => {
    const base = clientHello({ sni: 'fuzz.example.com', alpn: ['h2', 'http/1.1'] });
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(base.subarray(0, 1 + rand(base.length)));
      for (let k = 0; k < 1 + rand(4); k++) bytes[rand(bytes.length)] = rand(256);
      seen.add(problemOf(parse(bytes)));
    }
    expect([...seen].every((r) => ['more', 'hello', 'not-tls', 'malformed', 'too-large'].includes(r))).toBe(
      true,
    );
    expect(seen.has('malformed')).toBe(true);
  });
});

describe('parseClientHello: real clients', () => {
  let server: Server | undefined;
  afterEach(async () => {
    if (server) await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
  });

  /** Records the first bytes of each connection until a whole hello arrived. */
  async function capture(): Promise<{ port: number; next(): Promise<Buffer> }> {
    const waiting: Array<(b: Buffer) => void> = [];
    server = createServer((socket: Socket) => {
      let got = Buffer.alloc(0);
      const scan = new HelloScan();
      socket.on('data', (c) => {
        got = Buffer.concat([got, c]);
        if (parseClientHello(got, 65_536, scan) !== 'more') {
          waiting.shift()?.(got);
          socket.destroy();
        }
      });
      socket.on('error', () => {});
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return {
      port: (server.address() as AddressInfo).port,
      next: () => new Promise((resolve) => waiting.push(resolve)),
    };
  }

  it('Node (OpenSSL) TLS 1.2 and 1.3 clients', async () => {
    const { port, next } = await capture();
    for (const [min, max] of [
      ['TLSv1.2', 'TLSv1.2'],
      ['TLSv1.3', 'TLSv1.3'],
    ] as const) {
      const got = next();
      const socket = tlsConnect({
        host: '127.0.0.1',
        port,
        servername: 'node.example.com',
        ALPNProtocols: ['h2', 'http/1.1'],
        minVersion: min,
        maxVersion: max,
        rejectUnauthorized: false,
      });
      socket.on('error', () => {});
      const h = hello(parse(await got, 65_536));
      expect(h).toMatchObject({ sni: 'node.example.com', alpn: ['h2', 'http/1.1'] });
      socket.destroy();
    }
  });

  it('openssl s_client -servername, with -tls1_2 and -tls1_3', async () => {
    const { port, next } = await capture();
    for (const version of ['-tls1_2', '-tls1_3']) {
      const got = next();
      const child = spawn(
        'openssl',
        ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'S.Example.com', '-alpn', 'h2', version],
        { stdio: ['pipe', 'ignore', 'ignore'] },
      );
      child.stdin.end();
      const h = hello(parse(await got, 65_536));
      expect(h.sni).toBe('s.example.com');
      expect(h.alpn).toEqual(['h2']);
      if (child.exitCode === null) await once(child, 'exit');
    }
  });
});
