import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Session } from '../../plugin-sdk/index.js';
import { CertFactory, type CertFiles } from '../../test/fixtures/tls/certs.js';
import { createTestKit, type TestProxy, waitFor } from '../../testing/index.js';
import { buildHeader } from './build.js';
import { HAPROXY_DEFAULTS, startHaproxy } from './haproxy.test-support.js';
import type { ProxyProtocolApi } from './index.js';
import { closed, type RawClient, rawClient, readBytes } from './socket.test-support.js';

/**
 * A PROXY header in front of TLS that ends in Switchyard (tls-listener): the load balancer
 * sends the header first, then the client's TLS bytes (HAProxy `bind ... ssl accept-proxy`
 * semantics, an AWS NLB with proxy protocol in front of a TLS listener).
 */

const kit = createTestKit();
afterEach(kit.close);
let certs: CertFactory;
let cert: CertFiles;
let proxy: TestProxy;
beforeAll(async () => {
  certs = await CertFactory.create();
  cert = await certs.leaf('server', { cn: 'tls.example.test' });
});
afterAll(() => certs.cleanup());

async function start(pp: string): Promise<{ sessions: Session[]; closedOnes: Session[] }> {
  const backend = await kit.echo();
  proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends: [{ address: ${backend.address} }]
plugins:
  tls-listener: { cert: "${cert.cert}", key: "${cert.key}", watch: false }
  proxy-protocol: ${pp}
`);
  const sessions: Session[] = [];
  const closedOnes: Session[] = [];
  proxy.service.hooks.admit.tap('test', (s) => {
    sessions.push(s);
  });
  proxy.service.hooks.closed.tap('test', (s) => {
    closedOnes.push(s);
  });
  return { sessions, closedOnes };
}

const api = () => proxy.service.use<ProxyProtocolApi>('proxy-protocol')!;

async function client(from?: string): Promise<RawClient> {
  const socket = await rawClient(proxy.address, from);
  kit.defer(() => socket.destroy());
  return socket;
}

/** TLS over `raw` (after whatever was written on it); resolves once the handshake is done. */
async function handshake(raw: RawClient): Promise<TLSSocket> {
  const tls = tlsConnect({ socket: raw, servername: 'tls.example.test', rejectUnauthorized: false });
  kit.defer(() => tls.destroy());
  await new Promise((resolve, reject) => {
    tls.once('secureConnect', resolve);
    tls.once('error', reject);
  });
  return tls;
}

const facts = {
  sourceAddress: '203.0.113.77',
  sourcePort: 40777,
  destinationAddress: '192.0.2.10',
  destinationPort: 443,
};

describe('PROXY header before TLS (tls-listener)', () => {
  it('v1 and v2, in the same segment as the ClientHello or apart: the header names the client, TLS ends here', async () => {
    const { sessions } = await start('{ accept: true, trusted: [127.0.0.0/8] }');
    for (const version of ['v1', 'v2'] as const) {
      for (const together of [true, false]) {
        const raw = await client();
        raw.setNoDelay(true);
        if (together) raw.cork();
        raw.write(buildHeader(version, facts));
        if (!together) await new Promise((r) => setTimeout(r, 30));
        const pending = handshake(raw);
        if (together) process.nextTick(() => raw.uncork());
        const tls = await pending;
        tls.write('hello');
        expect((await readBytes(tls, 5)).toString()).toBe('hello');
      }
    }
    expect(sessions.map((s) => `${s.remoteAddress}:${s.remotePort}`)).toEqual(
      Array(4).fill('203.0.113.77:40777'),
    );
    // The TLS facts are the handshake's own, not the header's.
    expect(sessions[0]!.localAddress).toBe('192.0.2.10');
    expect(api().stats).toMatchObject({ received: { v1: 2, v2: 2 }, invalid: 0, untrusted: 0 });
  });

  it('refuses before the handshake: an untrusted peer, a garbled header, TLS without a header; a silent one at the timeout', async () => {
    const { sessions } = await start('{ accept: true, trusted: [127.0.0.1/32], timeout: 200ms }');
    const untrusted = await client('127.0.0.2');
    untrusted.write(buildHeader('v2', facts));
    expect(await closed(untrusted)).toBe('ECONNRESET');
    const garbled = await client();
    garbled.write('PROXY TCP4 not an address\r\n');
    expect(await closed(garbled)).toBe('ECONNRESET');
    // A client that starts TLS at once: its ClientHello is not a header.
    const bare = await client();
    await expect(handshake(bare)).rejects.toThrow();
    const silent = await client();
    const t0 = Date.now();
    await closed(silent);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(api().stats).toMatchObject({ untrusted: 1, invalid: 2, timeouts: 1 });
    expect(sessions).toEqual([]);
  });

  it('HAProxy in front (send-proxy-v2, TLS passed through): Switchyard terminates TLS and sees the client HAProxy saw', async () => {
    const { sessions } = await start('{ accept: true, trusted: [127.0.0.1/32] }');
    const haproxy = kit.track(
      await startHaproxy(
        (port) => `${HAPROXY_DEFAULTS}
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  server switchyard ${proxy.address} send-proxy-v2
`,
      ),
    );
    const raw = await rawClient(haproxy.address, '127.0.0.33');
    kit.defer(() => raw.destroy());
    const tls = await handshake(raw);
    tls.write('through haproxy');
    expect((await readBytes(tls, 15)).toString()).toBe('through haproxy');
    await waitFor(() => sessions.some((s) => s.remoteAddress === '127.0.0.33'));
    const s = sessions.find((x) => x.remoteAddress === '127.0.0.33')!;
    expect(s.remotePort).toBe(raw.localPort);
    expect(s.peerAddress).toBe('127.0.0.1');
    expect(s.tls?.sni ?? (s.client as TLSSocket).servername).toBe('tls.example.test');
  });

  it('stopping the proxy ends connections still owing their header at once', async () => {
    await start('{ accept: true, trusted: [127.0.0.0/8], timeout: 60s }');
    const waiting = await client();
    waiting.write('PROXY TCP4 ');
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await proxy.stop();
    await closed(waiting);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
