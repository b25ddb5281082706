import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { Session } from '../../plugin-sdk/index.js';
import { CertFactory } from '../../test/fixtures/tls/certs.js';
import { createTestKit, type TestBackend, type TestProxy, waitFor } from '../../testing/index.js';
import { buildHeader } from './build.js';
import { HAPROXY_DEFAULTS, type Haproxy, startHaproxy } from './haproxy.test-support.js';
import type { ProxyProtocolApi } from './index.js';
import { type ProxyHeader, parseProxyHeader } from './parse.js';
import { type RawClient, rawClient, readBytes } from './socket.test-support.js';

/**
 * Interop with a real HAProxy 2.6 (Debian's haproxy package): in front of Switchyard with
 * `send-proxy` / `send-proxy-v2`, and behind it with `accept-proxy`, checked both by what
 * HAProxy logs (`%ci:%cp`) and by the header HAProxy itself sends on.
 */

const kit = createTestKit();
afterEach(kit.close);
let haproxy: Haproxy;
let proxy: TestProxy;
const startProxy = (yaml: string) => kit.proxy(yaml);
const startServer = (onConnection: Parameters<typeof kit.backend>[0]) => kit.backend(onConnection);

/** Connects to `address` from `from` (a 127.x address the proxies in between do not use). */
async function clientFrom(address: string, from: string): Promise<RawClient> {
  const socket = await rawClient(address, from);
  kit.defer(() => socket.destroy());
  if (socket.lastError !== undefined) throw new Error(`connect: ${socket.lastError}`);
  return socket;
}

async function echo(): Promise<TestBackend> {
  const server = await startServer((s) => s.pipe(s));
  return server;
}

/** A backend that reads a PROXY header (as HAProxy sends it on), records it, then echoes. */
async function headerRecorder(): Promise<TestBackend & { headers: ProxyHeader[] }> {
  const headers: ProxyHeader[] = [];
  const server = await startServer((socket) => {
    let buffered = Buffer.alloc(0);
    socket.on('data', function onData(chunk: Buffer) {
      buffered = Buffer.concat([buffered, chunk]);
      const result = parseProxyHeader(buffered, 4096);
      if (result === 'more') return;
      socket.removeListener('data', onData);
      if ('invalid' in result) {
        socket.destroy();
        return;
      }
      headers.push(result);
      socket.write(buffered.subarray(result.length));
      socket.pipe(socket);
    });
  });
  return Object.assign(server, { headers });
}

describe('HAProxy in front of Switchyard', () => {
  it.each(['send-proxy', 'send-proxy-v2'])('%s: Switchyard sees the client HAProxy saw', async (option) => {
    const backend = await echo();
    proxy = await startProxy(`
listen: 127.0.0.1:0
backends: [{ address: ${backend.address} }]
plugins:
  proxy-protocol: { accept: true, trusted: [127.0.0.1/32] }
`);
    const sessions: Session[] = [];
    proxy.service.hooks.admit.tap('test', (s) => {
      if (s.remoteAddress === '127.0.0.5') sessions.push(s);
    });
    haproxy = kit.track(
      await startHaproxy(
        (port) => `${HAPROXY_DEFAULTS}
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  server switchyard ${proxy!.address} ${option}
`,
      ),
    );
    const client = await clientFrom(haproxy.address, '127.0.0.5');
    const payload = Buffer.from(`hello through haproxy ${option}`);
    client.write(payload);
    expect(await readBytes(client, payload.length)).toEqual(payload);
    expect(sessions).toHaveLength(1);
    const s = sessions[0]!;
    expect([s.remoteAddress, s.remotePort]).toEqual(['127.0.0.5', client.localPort]);
    // The destination is HAProxy's frontend; the TCP peer is HAProxy itself.
    expect(`${s.localAddress}:${s.localPort}`).toBe(haproxy.address);
    expect(s.peerAddress).toBe('127.0.0.1');
  });
});

describe('HAProxy in front of Switchyard: TLVs, checks, refusals', () => {
  it('a TLS frontend sends v2 with CRC32C, ALPN, AUTHORITY, UNIQUE_ID and SSL TLVs: checksum verified, SNI and ALPN kept, the rest skipped, and passed on in v2', async () => {
    const certs = await CertFactory.create();
    kit.defer(() => certs.cleanup());
    const leaf = await certs.leaf('front', { cn: 'api.example.test' });
    // HAProxy wants the certificate and its key in one file.
    const bundle = certs.path('front.pem');
    writeFileSync(bundle, (await readFile(leaf.cert, 'utf8')) + (await readFile(leaf.key, 'utf8')));
    const recorder = await headerRecorder();
    proxy = await startProxy(`
listen: 127.0.0.1:0
backends: [{ address: ${recorder.address} }]
plugins:
  proxy-protocol: { accept: true, trusted: [127.0.0.1/32], send: v2 }
`);
    const seen: ProxyHeader[] = [];
    const tlsSeen: unknown[] = [];
    const pp = proxy.service.use<ProxyProtocolApi>('proxy-protocol')!;
    proxy.service.hooks.admit.tap('test', (s) => {
      seen.push(pp.headerOf(s)!);
      tlsSeen.push(s.tls);
    });
    haproxy = kit.track(
      await startHaproxy(
        (port) => `${HAPROXY_DEFAULTS}
frontend fe
  bind 127.0.0.1:${port} ssl crt ${bundle} alpn h2,http/1.1
  unique-id-format "req-%ci:%cp"
  default_backend be
backend be
  server switchyard ${proxy!.address} send-proxy-v2 proxy-v2-options ssl,cert-cn,ssl-cipher,cert-sig,cert-key,authority,crc32c,unique-id
`,
      ),
    );
    // From 127.0.0.9: a raw socket first (TLS connect options do not take a local address).
    const raw = await clientFrom(haproxy.address, '127.0.0.9');
    const tls = tlsConnect({
      socket: raw,
      servername: 'Api.Example.Test',
      ALPNProtocols: ['h2'],
      rejectUnauthorized: false,
    });
    kit.defer(() => tls.destroy());
    await new Promise((resolve, reject) => {
      tls.once('secureConnect', resolve);
      tls.once('error', reject);
    });
    expect(tls.alpnProtocol).toBe('h2');
    tls.write('over tls');
    const echoed = await readBytes(tls, 8);
    expect(echoed.toString()).toBe('over tls');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      version: 2,
      family: 'tcp4',
      source: { address: '127.0.0.9', port: raw.localPort },
      authority: 'api.example.test',
      alpn: 'h2',
    });
    expect(Buffer.from(seen[0]!.uniqueId!, 'hex').toString()).toBe(`req-127.0.0.9:${raw.localPort}`);
    expect(tlsSeen[0]).toEqual({ sni: 'api.example.test', alpn: ['h2'] });
    // Sent on: the recorder behind Switchyard gets the client, SNI and ALPN.
    expect(recorder.headers[0]).toMatchObject({
      source: { address: '127.0.0.9', port: raw.localPort },
      authority: 'api.example.test',
      alpn: 'h2',
    });
    expect(pp.stats).toMatchObject({ invalid: 0, received: { v1: 0, v2: 1 }, sent: { v1: 0, v2: 1 } });
  });

  it.each(['send-proxy', 'send-proxy-v2'])(
    'HAProxy health checks with %s (header, then reset) are never taken for bad or untrusted headers',
    async (option) => {
      const backend = await echo();
      proxy = await startProxy(`
listen: 127.0.0.1:0
backends: [{ address: ${backend.address} }]
plugins:
  proxy-protocol: { accept: true, trusted: [127.0.0.1/32] }
`);
      const pp = proxy.service.use<ProxyProtocolApi>('proxy-protocol')!;
      const ended: Array<string | null> = [];
      proxy.service.hooks.closed.tap('test', (s) => {
        ended.push(s.closeReason);
      });
      const options = option === 'send-proxy-v2' ? 'send-proxy-v2 proxy-v2-options crc32c' : option;
      haproxy = kit.track(
        await startHaproxy(
          (port) => `${HAPROXY_DEFAULTS}
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  option log-health-checks
  server switchyard ${proxy!.address} ${options} check inter 100ms rise 2 fall 1
`,
        ),
      );
      await waitFor(() => ended.length >= 5, 5000, 'five health checks');
      // A check's connection is reset by HAProxy right after its header: depending on timing
      // the header is read (v2: LOCAL) or the reset comes first; never a refusal.
      expect(pp.stats).toMatchObject({ invalid: 0, untrusted: 0 });
      expect(ended.filter((r) => r === 'rejected')).toEqual([]);
      // Besides checks, only startHaproxy's readiness probe went through HAProxy (one PROXY header).
      const version = option === 'send-proxy-v2' ? 'v2' : 'v1';
      expect(pp.stats.received[version === 'v2' ? 'v1' : 'v2']).toBe(0);
      if (version === 'v2') expect(pp.stats.local).toBeGreaterThanOrEqual(pp.stats.received.v2 - 1);
      expect(ended.every((r) => r === 'client-reset' || r === 'client-closed')).toBe(true);
      expect(haproxy.output).toContain('Health check for server be/switchyard succeeded');
      expect(haproxy.output).not.toContain('failed');
    },
  );

  it('refuses a real HAProxy that is not in trusted, and one that sends no header', async () => {
    const backend = await echo();
    proxy = await startProxy(`
listen: 127.0.0.1:0
backends: [{ address: ${backend.address} }]
plugins:
  proxy-protocol: { accept: true, trusted: [127.0.0.2/32], timeout: 2s }
`);
    const reasons: Array<string | null> = [];
    proxy.service.hooks.closed.tap('test', (s) => {
      reasons.push(s.closeDetail);
    });
    // HAProxy connects from 127.0.0.1 (untrusted) with a header, then from 127.0.0.2 (trusted) without one.
    haproxy = kit.track(
      await startHaproxy(
        (port) => `${HAPROXY_DEFAULTS}
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  server untrusted ${proxy!.address} send-proxy-v2 source 127.0.0.1
frontend fe2
  bind 127.0.0.1:${port + 1 > 65535 ? port - 1 : port + 1}
  default_backend be2
backend be2
  server noheader ${proxy!.address} source 127.0.0.2
`,
      ),
    );
    const first = await clientFrom(haproxy.address, '127.0.0.5');
    first.write('hello');
    await waitFor(() => first.closed, 5000, 'the untrusted session to close');
    const [, port] = haproxy.address.split(':');
    const other = Number(port) + 1 > 65535 ? Number(port) - 1 : Number(port) + 1;
    const second = await clientFrom(`127.0.0.1:${other}`, '127.0.0.5');
    second.write('GET / HTTP/1.0\r\n\r\n');
    await waitFor(() => second.closed, 5000, 'the header-less session to close');
    await waitFor(() => reasons.includes('proxy-protocol-invalid'), 5000, 'the header-less session refused');
    // startHaproxy's readiness probe went through the first frontend too: untrusted, like the client.
    expect(reasons.filter((r) => r === 'proxy-protocol-invalid')).toHaveLength(1);
    expect(
      reasons.filter((r) => r !== 'proxy-protocol-invalid').every((r) => r === 'proxy-protocol-untrusted'),
    ).toBe(true);
    expect(reasons.length).toBeGreaterThanOrEqual(2);
    expect(backend.accepted).toBe(0);
  });
});

describe('Switchyard in front of HAProxy (accept-proxy)', () => {
  it.each(['v1', 'v2'])('send %s: HAProxy logs the real client and passes it on', async (version) => {
    const recorder = await headerRecorder();
    haproxy = kit.track(
      await startHaproxy(
        (port) => `${HAPROXY_DEFAULTS}
frontend fe
  bind 127.0.0.1:${port} accept-proxy
  log-format "seen client=%ci:%cp frontend=%fi:%fp authority=%[fc_pp_authority]"
  default_backend be
backend be
  server rec ${recorder.address} send-proxy-v2
`,
      ),
    );
    proxy = await startProxy(`
listen: 127.0.0.1:0
backends: [{ address: ${haproxy.address} }]
plugins:
  proxy-protocol: { send: ${version} }
`);
    const client = await clientFrom(proxy.address, '127.0.0.7');
    client.write('ping');
    expect((await readBytes(client, 4)).toString()).toBe('ping');
    const [listenHost, listenPort] = proxy.address.split(':');
    // HAProxy relays what it accepted: the client and the address it connected to (Switchyard's listener).
    expect(recorder.headers[0]).toMatchObject({
      family: 'tcp4',
      source: { address: '127.0.0.7', port: client.localPort },
      destination: { address: listenHost, port: Number(listenPort) },
    });
    client.end();
    await waitFor(() => haproxy!.output.includes('seen client=127.'), 5000, 'the HAProxy log line');
    expect(haproxy.output).toContain(`seen client=127.0.0.7:${client.localPort} frontend=${proxy.address}`);
  });

  it('v2 passes SNI on: a header with an authority TLV reaches HAProxy as fc_pp_authority', async () => {
    const recorder = await headerRecorder();
    haproxy = kit.track(
      await startHaproxy(
        (port) => `${HAPROXY_DEFAULTS}
frontend fe
  bind 127.0.0.1:${port} accept-proxy
  log-format "seen client=%ci authority=%[fc_pp_authority]"
  default_backend be
backend be
  server rec ${recorder.address}
`,
      ),
    );
    proxy = await startProxy(`
listen: 127.0.0.1:0
backends: [{ address: ${haproxy.address} }]
plugins:
  proxy-protocol: { accept: true, trusted: [127.0.0.0/8], send: v2 }
`);
    const client = await clientFrom(proxy.address, '127.0.0.8');
    client.write(
      buildHeader('v2', {
        sourceAddress: '198.51.100.23',
        sourcePort: 4242,
        destinationAddress: '203.0.113.1',
        destinationPort: 443,
        authority: 'api.example.com',
      }),
    );
    client.end();
    await waitFor(() => haproxy!.output.includes('seen client=198.'), 5000, 'the HAProxy log line');
    expect(haproxy.output).toContain('seen client=198.51.100.23 authority=api.example.com');
  });

  it.each(['v1', 'v2'])('health checks with %s pass through an accept-proxy frontend', async (version) => {
    const greeter = await startServer((s) => s.write('hello\n'));
    haproxy = kit.track(
      await startHaproxy(
        (port) => `${HAPROXY_DEFAULTS}
frontend fe
  bind 127.0.0.1:${port} accept-proxy
  default_backend be
backend be
  server greeter ${greeter.address}
`,
      ),
    );
    proxy = await startProxy(`
listen: 127.0.0.1:0
backends: [{ address: ${haproxy.address} }]
plugins:
  proxy-protocol: { send: ${version} }
  health-check: { interval: 50ms, rise: 2, fall: 1, expect: "hello" }
`);
    const health = proxy.service.use<{
      get(a: string): { consecutiveSuccesses: number; lastError: string | null };
    }>('health-check')!;
    await waitFor(
      () => (health.get(haproxy!.address)?.consecutiveSuccesses ?? 0) >= 3,
      5000,
      'passing checks',
    );
    expect(health.get(haproxy.address)!.lastError).toBeNull();
  });
});
