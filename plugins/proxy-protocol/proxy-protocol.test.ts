import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { ORIGIN_CONFIG, type Session } from '../../plugin-sdk/index.js';
import { createTestKit, type TestBackend, type TestProxy, waitFor } from '../../testing/index.js';
import { buildHeader, V2_LOCAL } from './build.js';
import type { ProxyProtocolApi } from './index.js';
import { type ProxyHeader, parseProxyHeader } from './parse.js';
import { closed, line, type RawClient, rawClient, readBytes } from './socket.test-support.js';

const kit = createTestKit();
afterEach(kit.close);
let proxy: TestProxy | undefined;
const startProxy = (yaml: string) => kit.proxy(yaml);
const startServer = (onConnection: Parameters<typeof kit.backend>[0]) => kit.backend(onConnection);

/** A raw client of the proxy (or `address`), destroyed when the test ends. */
async function client(address = proxy!.address): Promise<RawClient> {
  const socket = await rawClient(address);
  kit.defer(() => socket.destroy());
  return socket;
}

/**
 * A backend that expects a PROXY header (or none, when `expect` is false): answers one line
 * `<family> <source> -> <destination>` (or `none`), then echoes what follows.
 */
async function ppBackend(expect = true): Promise<TestBackend & { headers: Array<ProxyHeader | null> }> {
  const headers: Array<ProxyHeader | null> = [];
  const server = await startServer((socket) => {
    let buffered = Buffer.alloc(0);
    let done = !expect;
    if (done) {
      headers.push(null);
      socket.write('none\n');
      socket.pipe(socket);
      return;
    }
    socket.on('data', function onData(chunk: Buffer) {
      if (done) return;
      buffered = Buffer.concat([buffered, chunk]);
      const result = parseProxyHeader(buffered, 4096);
      if (result === 'more') return;
      done = true;
      socket.removeListener('data', onData);
      if ('invalid' in result) {
        headers.push(null);
        socket.end(`invalid ${result.invalid}\n`);
        return;
      }
      headers.push(result);
      const s = result.source;
      const d = result.destination;
      socket.write(
        `${result.family} ${s ? `${s.address}:${s.port}` : '-'} -> ${d ? `${d.address}:${d.port}` : '-'}\n`,
      );
      socket.write(buffered.subarray(result.length));
      socket.pipe(socket);
    });
  });
  return Object.assign(server, { headers });
}

async function start(backends: string, plugin: Record<string, unknown>, extra = ''): Promise<TestProxy> {
  proxy = await startProxy(`
listen: 127.0.0.1:0
backends:
${backends}
plugins:
  proxy-protocol: ${JSON.stringify(plugin)}
${extra}
`);
  return proxy;
}

function sessionsClosed(p: TestProxy): Session[] {
  const seen: Session[] = [];
  p.service.hooks.closed.tap('test', (s) => {
    seen.push(s);
  });
  return seen;
}

const api = () => proxy!.service.use<ProxyProtocolApi>('proxy-protocol')!;

const ipv4Facts = {
  sourceAddress: '198.51.100.7',
  sourcePort: 40000,
  destinationAddress: '192.0.2.1',
  destinationPort: 443,
};

describe('accept', () => {
  it('v1 and v2 from a trusted peer: the header is consumed and its source is the client everywhere', async () => {
    const backend = await ppBackend(false);
    await start(`  - address: ${backend.address}`, { accept: true, trusted: ['127.0.0.0/8'] }, '');
    const seen = sessionsClosed(proxy!);
    const admitted: string[] = [];
    proxy!.service.hooks.admit.tap('test', (s) => {
      admitted.push(`${s.remoteAddress}:${s.remotePort}`);
    });

    const a = await client();
    a.write('PROXY TCP4 203.0.113.9 192.0.2.10 40001 443\r\nhello');
    expect(await line(a)).toBe('none');
    expect((await readBytes(a, 5)).toString()).toBe('hello');

    const b = await client();
    b.write(
      buildHeader('v2', {
        sourceAddress: '2001:db8::42',
        sourcePort: 7,
        destinationAddress: '2001:db8::1',
        destinationPort: 443,
        authority: 'shop.example',
        alpn: 'h2',
      }),
    );
    b.write('world');
    expect(await line(b)).toBe('none');
    expect((await readBytes(b, 5)).toString()).toBe('world');

    expect(admitted).toEqual(['203.0.113.9:40001', '2001:db8::42:7']);
    const live = [...proxy!.service.sessions.values()];
    expect(live.map((s) => s.toJSON().client)).toEqual(['203.0.113.9:40001', '2001:db8::42:7']);
    expect(live[1]!.tls).toEqual({ sni: 'shop.example', alpn: ['h2'] });
    expect(live[1]!.localAddress).toBe('2001:db8::1');
    expect(api().headerOf(live[0]!)).toMatchObject({ version: 1, family: 'tcp4' });
    a.end();
    b.end();
    await waitFor(() => seen.length === 2);
    expect(seen.map((s) => s.peerAddress)).toEqual(['127.0.0.1', '127.0.0.1']);
    expect(api().stats.received).toEqual({ v1: 1, v2: 1 });
  });

  it('a header split over many segments, and LOCAL / UNKNOWN headers that keep the peer as the client', async () => {
    const backend = await ppBackend(false);
    await start(`  - address: ${backend.address}`, { accept: true, trusted: ['127.0.0.1'] });
    const a = await client();
    a.setNoDelay(true);
    const header = 'PROXY TCP4 198.51.100.1 192.0.2.1 1234 80\r\nX';
    for (const ch of header) {
      a.write(ch);
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(await line(a)).toBe('none');
    expect((await readBytes(a, 1)).toString()).toBe('X');
    expect([...proxy!.service.sessions.values()][0]!.remoteAddress).toBe('198.51.100.1');

    const local = await client();
    local.write(Buffer.concat([V2_LOCAL, Buffer.from('L')]));
    expect(await line(local)).toBe('none');
    const unknown = await client();
    unknown.write('PROXY UNKNOWN\r\nU');
    expect(await line(unknown)).toBe('none');
    const sessions = [...proxy!.service.sessions.values()];
    expect(sessions.slice(1).map((s) => s.remoteAddress)).toEqual(['127.0.0.1', '127.0.0.1']);
    expect(api().stats).toMatchObject({ local: 1, unknown: 1, received: { v1: 2, v2: 1 } });
  });

  it('refuses untrusted peers before reading, malformed headers at once, and silent clients at the timeout', async () => {
    const backend = await ppBackend(false);
    await start(`  - address: ${backend.address}`, {
      accept: true,
      trusted: ['10.0.0.0/8'],
      timeout: '150ms',
    });
    const seen = sessionsClosed(proxy!);
    const untrusted = await client();
    untrusted.write('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n');
    expect(await closed(untrusted)).toBe('ECONNRESET');
    await proxy!.stop();

    await start(`  - address: ${backend.address}`, {
      accept: true,
      trusted: ['127.0.0.0/8'],
      timeout: '150ms',
    });
    const seen2 = sessionsClosed(proxy!);
    const bad = await client();
    bad.write('GET / HTTP/1.1\r\n\r\n');
    expect(await closed(bad)).toBe('ECONNRESET');
    const silent = await client();
    const t0 = Date.now();
    await closed(silent);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(120);
    await waitFor(() => seen2.length === 2);
    expect(seen.map((s) => [s.closeReason, s.closeDetail])).toEqual([
      ['rejected', 'proxy-protocol-untrusted'],
    ]);
    expect(seen2.map((s) => [s.closeReason, s.closeDetail])).toEqual([
      ['rejected', 'proxy-protocol-invalid'],
      ['peek-timeout', 'proxy-protocol'],
    ]);
    expect(proxy!.service.counters.peekTimeouts).toBe(1);
    expect(api().stats.invalid).toBe(1);
    expect(backend.accepted).toBe(0);
  });

  it('refuses without waiting for the timeout: an oversized v2 length, a v1 line with no CRLF, a bad checksum, a bad TLV; half-close mid-header', async () => {
    const backend = await ppBackend(false);
    await start(`  - address: ${backend.address}`, {
      accept: true,
      trusted: ['127.0.0.0/8'],
      timeout: '5s',
      max_tlv_bytes: 64,
    });
    const seen = sessionsClosed(proxy!);
    const t0 = Date.now();
    const head = (declared: number) => {
      const h = Buffer.from(buildHeader('v2', ipv4Facts));
      h.writeUInt16BE(declared, 14);
      return h.subarray(0, 16);
    };
    // Declares 60,000 bytes, over the cap (16 + 216 + max_tlv_bytes): refused from the first 16.
    const oversized = await client();
    oversized.write(head(60_000));
    // 120 printable bytes and no CRLF: past the 107 bytes a v1 line may take.
    const longLine = await client();
    longLine.write(`PROXY TCP4 ${'1'.repeat(120)}`);
    // A CRC32C TLV that does not match the header.
    const badCrc = await client();
    const withCrc = Buffer.concat([
      buildHeader('v2', ipv4Facts),
      Buffer.from([0x03, 0x00, 0x04, 1, 2, 3, 4]),
    ]);
    withCrc.writeUInt16BE(withCrc.length - 16, 14);
    badCrc.write(withCrc);
    // A TLV whose length runs past the header's end.
    const badTlv = await client();
    const runaway = Buffer.concat([buildHeader('v2', ipv4Facts), Buffer.from([0xee, 0x00, 0x40, 0])]);
    runaway.writeUInt16BE(runaway.length - 16, 14);
    badTlv.write(runaway);
    for (const c of [oversized, longLine, badCrc, badTlv]) expect(await closed(c)).toBe('ECONNRESET');
    expect(Date.now() - t0).toBeLessThan(4000);
    // Half a header, then FIN: the client is gone, nothing reaches the backend.
    const half = await client();
    half.end(buildHeader('v1', ipv4Facts).subarray(0, 20));
    await closed(half);
    await waitFor(() => seen.length === 5);
    expect(seen.map((s) => [s.closeReason, s.closeDetail])).toEqual([
      ['rejected', 'proxy-protocol-invalid'],
      ['rejected', 'proxy-protocol-invalid'],
      ['rejected', 'proxy-protocol-invalid'],
      ['rejected', 'proxy-protocol-invalid'],
      ['client-closed', 'half-closed during peek (proxy-protocol)'],
    ]);
    expect(api().stats.invalid).toBe(4);
    expect(backend.accepted).toBe(0);
  });

  it('a v2 header with TLVs split across segments, data in the last one', async () => {
    const backend = await ppBackend(false);
    await start(`  - address: ${backend.address}`, { accept: true, trusted: ['127.0.0.1'] });
    const header = buildHeader('v2', { ...ipv4Facts, authority: 'split.example', alpn: 'http/1.1' });
    const a = await client();
    a.setNoDelay(true);
    // Cut inside the signature, inside the length, inside the addresses, inside a TLV.
    const cuts = [5, 15, 20, header.length - 4, header.length];
    let from = 0;
    for (const to of cuts) {
      a.write(header.subarray(from, to));
      from = to;
      await new Promise((r) => setTimeout(r, 20));
    }
    a.write('after');
    expect(await line(a)).toBe('none');
    expect((await readBytes(a, 5)).toString()).toBe('after');
    const [session] = [...proxy!.service.sessions.values()];
    expect(session!.remoteAddress).toBe('198.51.100.7');
    expect(session!.tls).toEqual({ sni: 'split.example', alpn: ['http/1.1'] });
  });

  it('only on the listed listeners: another listener of the service reads nothing (server-first backend)', async () => {
    const greeter = await startServer((s) => s.write('220 mail ready\r\n'));
    proxy = await startProxy(`
listen: [127.0.0.1:0, 127.0.0.2:0]
backends: [{ address: ${greeter.address} }]
plugins:
  proxy-protocol: { accept: true, trusted: [127.0.0.0/8], listeners: [1], timeout: 100ms }
`);
    const [plain, withHeader] = proxy.service.addresses();
    const direct = await client(plain);
    // Nothing sent: a server-first protocol greets first, long past the header timeout.
    await new Promise((r) => setTimeout(r, 200));
    expect((await readBytes(direct, 16)).toString()).toBe('220 mail ready\r\n');
    const behindLb = await client(withHeader);
    behindLb.write('PROXY TCP4 192.0.2.5 192.0.2.6 1 25\r\n');
    expect((await readBytes(behindLb, 16)).toString()).toBe('220 mail ready\r\n');
    const sessions = [...proxy.service.sessions.values()];
    expect(sessions.map((s) => s.remoteAddress)).toEqual(['127.0.0.1', '192.0.2.5']);
  });
});

describe('with sni-router (TLS passed through, routed by SNI)', () => {
  it('the PROXY header is read first, then the ClientHello; the pool sends v2 with the real client and the SNI, TLS bytes untouched', async () => {
    const got: Array<{ header: ProxyHeader; next: number }> = [];
    const recorder = await startServer((socket) => {
      let buffered = Buffer.alloc(0);
      socket.on('data', function onData(chunk: Buffer) {
        buffered = Buffer.concat([buffered, chunk]);
        const result = parseProxyHeader(buffered, 4096);
        if (result === 'more' || buffered.length <= (result as ProxyHeader).length) return;
        socket.removeListener('data', onData);
        if ('invalid' in result) socket.destroy();
        else got.push({ header: result, next: buffered[result.length]! });
      });
    });
    proxy = await startProxy(`
services:
  edge:
    listen: 127.0.0.1:0
    plugins:
      proxy-protocol: { accept: true, trusted: [127.0.0.0/8] }
      sni-router: { routes: { api.example.com: api } }
  api:
    backends: [{ address: ${recorder.address} }]
    plugins:
      proxy-protocol: { send: v2 }
`);
    const raw = await client();
    raw.write('PROXY TCP4 203.0.113.50 192.0.2.1 51000 443\r\n');
    const tls = tlsConnect({ socket: raw, servername: 'api.example.com', ALPNProtocols: ['h2'] });
    tls.on('error', () => {});
    kit.defer(() => tls.destroy());
    await waitFor(() => got.length === 1, 5000, 'the backend to read a header and the ClientHello');
    expect(got[0]!.header).toMatchObject({
      version: 2,
      source: { address: '203.0.113.50', port: 51000 },
      destination: { address: '192.0.2.1', port: 443 },
      authority: 'api.example.com',
      alpn: 'h2',
    });
    expect(got[0]!.next).toBe(0x16); // a TLS handshake record: the ClientHello, as the client sent it
  });
});

describe('with a balancer that hashes on the source', () => {
  it('consistent-hash sees the real client: each client sticks to one backend, clients spread', async () => {
    const named = await Promise.all(
      ['a', 'b', 'c'].map(async (name) => {
        const server = await startServer((socket) => {
          socket.end(name);
        });
        return server;
      }),
    );
    proxy = await startProxy(`
listen: 127.0.0.1:0
backends:
${named.map((b) => `  - address: ${b.address}`).join('\n')}
plugins:
  consistent-hash: { key: source_ip }
  proxy-protocol: { accept: true, trusted: [127.0.0.0/8] }
`);
    const answer = async (clientAddress: string) => {
      const c = await client();
      c.write(`PROXY TCP4 ${clientAddress} 192.0.2.1 40000 443\r\n`);
      const name = (await readBytes(c, 1)).toString();
      c.destroy();
      return name;
    };
    const picks = new Map<string, string>();
    for (let i = 1; i <= 30; i++) {
      const address = `198.51.100.${i}`;
      const first = await answer(address);
      expect(await answer(address)).toBe(first);
      picks.set(address, first);
    }
    // All from one TCP peer: hashing on the peer would send every client to one backend.
    expect(new Set(picks.values()).size).toBeGreaterThan(1);
  });
});

describe('send', () => {
  it('v1 and v2 carry the real client and destination from an accepted header; per-backend overrides', async () => {
    const v1 = await ppBackend();
    const v2 = await ppBackend();
    const none = await ppBackend(false);
    await start(
      `  - address: ${v1.address}
    proxy_protocol: v1
  - address: ${v2.address}
  - address: ${none.address}
    proxy_protocol: none`,
      { accept: true, trusted: ['127.0.0.0/8'], send: 'v2' },
    );
    const answers: string[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await client();
      c.write(
        buildHeader('v2', {
          sourceAddress: '203.0.113.7',
          sourcePort: 5000 + i,
          destinationAddress: '192.0.2.80',
          destinationPort: 443,
          authority: 'www.example',
          alpn: 'http/1.1',
        }),
      );
      c.write('data');
      answers.push(await line(c));
      expect((await readBytes(c, 4)).toString()).toBe('data');
    }
    expect(answers.sort()).toEqual([
      'none',
      'tcp4 203.0.113.7:5000 -> 192.0.2.80:443',
      'tcp4 203.0.113.7:5001 -> 192.0.2.80:443',
    ]);
    expect(v1.headers[0]).toMatchObject({ version: 1 });
    // v2 passes the TLS facts the first proxy sent on.
    expect(v2.headers[0]).toMatchObject({ version: 2, authority: 'www.example', alpn: 'http/1.1' });
    expect(api().stats.sent).toEqual({ v1: 1, v2: 1 });
  });

  it("a reload that changes a backend's proxy_protocol applies to its new sessions; without the key it gets send", async () => {
    const backend = await ppBackend();
    await start(`  - address: ${backend.address}\n    proxy_protocol: v1`, { send: 'v2' });
    const once = async () => {
      const c = await client();
      c.write('ping');
      const answer = await line(c);
      c.destroy();
      return answer;
    };
    expect(await once()).toMatch(/^tcp4 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+$/);
    expect(backend.headers.at(-1)).toMatchObject({ version: 1 });
    // What a config reload does with the file's backend list: the same backend, another key.
    const changed = proxy!.service.backends.reconcile(ORIGIN_CONFIG, [
      { address: backend.address, proxy_protocol: 'none' },
    ]);
    expect(changed.updated).toEqual([backend.address]);
    // The backend reads the client's bytes where it expects a header.
    expect(await once()).toBe('invalid not a PROXY protocol header');
    proxy!.service.backends.reconcile(ORIGIN_CONFIG, [{ address: backend.address }]);
    await once();
    expect(backend.headers.at(-1)).toMatchObject({ version: 2 });
    expect(api().stats.sent).toEqual({ v1: 1, v2: 1 });
  });

  it('without accept: the TCP peer and the listener address, IPv6 included', async () => {
    const backend = await ppBackend();
    proxy = await startProxy(`
listen: "[::1]:0"
backends: [{ address: ${backend.address} }]
plugins:
  proxy-protocol: { send: v1 }
`);
    const c = await client();
    c.write('hi');
    const port = proxy.service.addresses()[0]!.split(':').pop();
    expect(await line(c)).toBe(`tcp6 ::1:${c.localPort} -> ::1:${port}`);
    expect((await readBytes(c, 2)).toString()).toBe('hi');
  });

  it('the header goes before bytes a server-first backend is waiting for, and before peeked client bytes', async () => {
    const backend = await ppBackend();
    await start(`  - address: ${backend.address}`, { accept: true, trusted: ['127.0.0.0/8'], send: 'v1' });
    const c = await client();
    // Header and payload in one segment: the payload was read during the peek.
    c.write('PROXY TCP6 2001:db8::9 2001:db8::1 999 25\r\nEHLO x\r\n');
    expect(await line(c)).toBe('tcp6 2001:db8::9:999 -> 2001:db8::1:25');
    expect((await readBytes(c, 8)).toString()).toBe('EHLO x\r\n');
  });
});

describe('health checks', () => {
  it('send a LOCAL v2 header (or a v1 line with their own addresses) to backends that get a header', async () => {
    const firsts: Buffer[] = [];
    const checked = await startServer((s) => {
      s.once('data', (c) => firsts.push(c));
    });
    const plain: Buffer[] = [];
    const noHeader = await startServer((s) => {
      s.once('data', (c) => plain.push(c));
    });
    const v1Lines: string[] = [];
    const v1 = await startServer((s) => {
      s.once('data', (c) => v1Lines.push(`${c.toString()}|${s.remotePort}`));
    });
    proxy = await startProxy(`
listen: 127.0.0.1:0
backends:
  - address: ${checked.address}
  - address: ${noHeader.address}
    proxy_protocol: none
  - address: ${v1.address}
    proxy_protocol: v1
plugins:
  proxy-protocol: { send: v2 }
  health-check: { interval: 50ms, send: "PING\\r\\n" }
`);
    await waitFor(() => firsts.length >= 2 && plain.length >= 2 && v1Lines.length >= 2, 5000, 'checks');
    // The header may arrive alone or with the payload; it is first either way.
    for (const first of firsts) expect(first.subarray(0, 16)).toEqual(V2_LOCAL);
    for (const p of plain) expect(p.toString()).toBe('PING\r\n');
    for (const entry of v1Lines) {
      const [text, port] = entry.split('|');
      expect(text!.startsWith(`PROXY TCP4 127.0.0.1 127.0.0.1 ${port} ${v1.port}\r\n`)).toBe(true);
    }
    expect(api().stats.checks).toBeGreaterThanOrEqual(4);
  });
});

describe('configuration', () => {
  it('accept: true without trusted, and a backend option without the plugin, are config errors at their line', async () => {
    await expect(
      startProxy(`listen: 127.0.0.1:0
backends: []
plugins:
  proxy-protocol:
    accept: true
`),
    ).rejects.toThrow(/test\.yaml:5:13 {2}plugins\.proxy-protocol\.accept {2}accept: true needs "trusted"/);
    await expect(
      startProxy(`listen: 127.0.0.1:0
services:
  a:
    listen: 127.0.0.1:0
    backends: [{ address: 127.0.0.1:1, proxy_protocol: v1 }]
  b:
    listen: 127.0.0.2:0
    backends: []
    plugins: { proxy-protocol: { send: v2 } }
`),
    ).rejects.toThrow(
      /proxy_protocol.*"proxy_protocol" is an option of plugin "proxy-protocol", which this service does not enable/,
    );
    await expect(
      startProxy(`listen: 127.0.0.1:0
backends: [{ address: 127.0.0.1:1, proxy_protocol: v3 }]
plugins: { proxy-protocol: {} }
`),
    ).rejects.toThrow(
      /backends\[0\]\.proxy_protocol {2}must be equal to one of the allowed values: v1, v2, none/,
    );
  });

  it('a TLS backend that would get a header is refused at start (the header must precede the handshake)', async () => {
    await expect(
      startProxy(`listen: 127.0.0.1:0
backends: [{ address: 127.0.0.1:1, tls: true }]
plugins: { proxy-protocol: { send: v1 }, tls-upstream: {} }
`),
    ).rejects.toThrow(/tls: true and would get a PROXY v1 header/);
  });
});
