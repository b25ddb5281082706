import { afterEach, describe, expect, it } from 'vitest';
import type { Session } from '../../plugin-sdk/index.js';
import { createTestKit, type TestBackend, type TestProxy, waitFor } from '../../testing/index.js';
import { buildHeader } from './build.js';
import { HAPROXY_DEFAULTS, type Haproxy, startHaproxy } from './haproxy.test-support.js';
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
