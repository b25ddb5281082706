import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Session } from '../../plugin-sdk/index.js';
import { createTestKit, type TestProxy, waitFor } from '../../testing/index.js';
import { adminClient } from '../admin-api/test-client.js';
import type { SourceLimitsApi } from './index.js';
import { SourceTable } from './source-table.js';

const kit = createTestKit();
afterEach(kit.close);
let proxy: TestProxy | undefined;

async function start(options: Record<string, unknown>, extra = ''): Promise<TestProxy> {
  const backend = await kit.echo();
  proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends: [{ address: ${backend.address} }]
plugins:
  source-limits: ${JSON.stringify(options)}
${extra}
`);
  return proxy;
}

type Client = Socket & { lastError?: string };

/**
 * Connects from `from` (a 127.x.y.z address: each is a distinct source on loopback) and
 * resolves connected or closed; resets are recorded, not thrown.
 */
async function client(from = '127.0.0.1'): Promise<Client> {
  const [host, port] = proxy!.address.split(':');
  const socket: Client = connect({ host, port: Number(port), localAddress: from });
  socket.on('error', (e: NodeJS.ErrnoException) => {
    socket.lastError = e.code ?? e.message;
  });
  kit.defer(() => socket.destroy());
  await new Promise((resolve) => {
    socket.once('connect', resolve);
    socket.once('close', resolve);
  });
  return socket;
}

/** Whether the proxy let the client through: the echo of one byte comes back (not a reset or close). */
function admitted(socket: Client): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(ok);
    };
    const onData = () => done(true);
    const onClose = () => done(false);
    const timer = setTimeout(() => done(false), 3000);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.write('x');
  });
}

function reasons(p: TestProxy): Array<string | null> {
  const seen: Array<string | null> = [];
  p.service.hooks.closed.tap('test', (s: Session) => {
    if (s.closeReason === 'rejected') seen.push(s.closeDetail);
  });
  return seen;
}

const api = () => proxy!.service.use<SourceLimitsApi>('source-limits')!;

describe('source-limits', () => {
  it('max_connections: a source holding the limit is refused with a reset until one closes', async () => {
    await start({ max_connections: 2 });
    const refused = reasons(proxy!);
    const a = await client();
    const b = await client();
    expect(await admitted(a)).toBe(true);
    expect(await admitted(b)).toBe(true);
    const c = await client();
    expect(await admitted(c)).toBe(false);
    await waitFor(() => c.destroyed);
    expect(c.lastError).toBe('ECONNRESET');
    // Another source is not affected.
    expect(await admitted(await client('127.0.0.2'))).toBe(true);
    a.destroy();
    await waitFor(() => proxy!.service.sessions.size === 2);
    expect(await admitted(await client())).toBe(true);
    expect(refused).toEqual(['source-connections']);
    expect(api().stats.refusedConnections).toBe(1);
  });

  it('rate with burst: a quick burst passes, the next is refused, the bucket refills with time', async () => {
    // 3/s: a token every 333 ms, slow enough that a loaded machine cannot refill one by accident.
    await start({ rate: '3/s', burst: 2 });
    const refused = reasons(proxy!);
    expect(await admitted(await client())).toBe(true);
    expect(await admitted(await client())).toBe(true);
    expect(await admitted(await client())).toBe(false);
    await new Promise((r) => setTimeout(r, 400));
    expect(await admitted(await client())).toBe(true);
    expect(refused).toEqual(['source-rate']);
    expect(api().stats.refusedRate).toBe(1);
  });

  it('prefix_v4 groups a network into one source; allow is never limited', async () => {
    await start({ max_connections: 1, prefix_v4: 24, allow: ['127.0.0.9'] });
    expect(await admitted(await client('127.0.0.1'))).toBe(true);
    expect(await admitted(await client('127.0.0.2'))).toBe(false); // same /24
    expect(await admitted(await client('127.0.1.1'))).toBe(true); // another /24
    for (let i = 0; i < 3; i++) expect(await admitted(await client('127.0.0.9'))).toBe(true);
    expect(api().sources).toBe(2);
    expect(api().top(10)).toEqual([
      { source: '127.0.0.0/24', active: 1, tokens: 1 },
      { source: '127.0.1.0/24', active: 1, tokens: 1 },
    ]);
  });

  it('counts the real client from a PROXY header, not the load balancer in front', async () => {
    await start({ max_connections: 1 }, '  proxy-protocol: { accept: true, trusted: [127.0.0.0/8] }');
    const refused = reasons(proxy!);
    const viaLb = async (clientAddress: string) => {
      const s = await client();
      s.write(`PROXY TCP4 ${clientAddress} 192.0.2.1 5000 80\r\n`);
      return s;
    };
    // Same TCP peer (the "load balancer"), three clients behind it, two of them the same.
    const one = await viaLb('198.51.100.1');
    const two = await viaLb('198.51.100.2');
    const again = await viaLb('198.51.100.1');
    expect(await admitted(one)).toBe(true);
    expect(await admitted(two)).toBe(true);
    expect(await admitted(again)).toBe(false);
    expect(refused).toEqual(['source-connections']);
    expect(
      api()
        .top(5)
        .map((s) => s.source),
    ).toEqual(['198.51.100.1', '198.51.100.2']);
  });

  it('prefix_v6 groups IPv6 clients (named by PROXY TCP6 headers) by network; an IPv6 listener counts ::1', async () => {
    await start(
      { max_connections: 1, prefix_v6: 64 },
      '  proxy-protocol: { accept: true, trusted: [127.0.0.0/8] }',
    );
    const refused = reasons(proxy!);
    const viaLb = async (clientAddress: string) => {
      const s = await client();
      s.write(`PROXY TCP6 ${clientAddress} 2001:db8::1 5000 443\r\n`);
      return s;
    };
    const first = await viaLb('2001:db8:1:2::10');
    expect(await admitted(first)).toBe(true);
    expect(await admitted(await viaLb('2001:db8:1:2:ffff::7'))).toBe(false); // same /64
    expect(await admitted(await viaLb('2001:db8:1:3::10'))).toBe(true); // the next /64
    // IPv4-mapped in a TCP6 header counts as the IPv4 address.
    expect(await admitted(await viaLb('::ffff:198.51.100.7'))).toBe(true);
    expect(refused).toEqual(['source-connections']);
    expect(
      api()
        .top(5)
        .map((s) => s.source)
        .sort(),
    ).toEqual(['198.51.100.7', '2001:db8:1:2::/64', '2001:db8:1:3::/64']);
    first.destroy();
    await waitFor(
      () =>
        api()
          .top(5)
          .find((s) => s.source === '2001:db8:1:2::/64')?.active === 0,
    );
    expect(await admitted(await viaLb('2001:db8:1:2::99'))).toBe(true);
    await proxy!.stop();

    // A client of an IPv6 listener, without a header: ::1 is one source.
    const backend = await kit.echo();
    proxy = await kit.proxy(`
listen: "[::1]:0"
backends: [{ address: ${backend.address} }]
plugins:
  source-limits: { max_connections: 1, prefix_v6: 128 }
`);
    const port = Number(proxy.address.slice(proxy.address.lastIndexOf(':') + 1));
    const v6 = async () => {
      const socket: Client = connect({ host: '::1', port });
      socket.on('error', (e: NodeJS.ErrnoException) => {
        socket.lastError = e.code ?? e.message;
      });
      kit.defer(() => socket.destroy());
      await new Promise((resolve) => {
        socket.once('connect', resolve);
        socket.once('close', resolve);
      });
      return socket;
    };
    expect(await admitted(await v6())).toBe(true);
    expect(await admitted(await v6())).toBe(false);
    expect(api().top(5)).toEqual([{ source: '::1/128', active: 1, tokens: 1 }]);
  });

  it('stays bounded under a flood from thousands of sources; idle ones are forgotten', async () => {
    await start({ rate: '1000/s', burst: 1, max_sources: 200 });
    let most = 0;
    let passed = 0;
    const sources = 2000;
    // Bounded: 2000 connections, 100 at a time, each sends a byte and closes after the echo.
    for (let start = 0; start < sources; start += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, sources - start) }, async (_, k) => {
          const n = start + k + 1;
          const s = await client(`127.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`);
          if (await admitted(s)) passed++;
          s.destroy();
        }),
      );
      most = Math.max(most, api().sources);
    }
    expect(passed).toBe(sources);
    expect(most).toBeLessThanOrEqual(200);
    expect(api().stats.evicted).toBeGreaterThan(sources - 200 - 1);
    expect(api().stats.untracked).toBe(0);
  });

  it('a table full of sources holding sessions lets a new source through untracked (counted)', async () => {
    await start({ max_connections: 5, max_sources: 3 });
    for (const from of ['127.0.0.1', '127.0.0.2', '127.0.0.3'])
      expect(await admitted(await client(from))).toBe(true);
    expect(await admitted(await client('127.0.0.4'))).toBe(true);
    expect(api().sources).toBe(3);
    expect(api().stats.untracked).toBe(1);
  });

  it('serves its table on the admin API; metrics count refusals per reason', async () => {
    await start({ max_connections: 1 }, '  admin-api: { listen: 127.0.0.1:0 }\n  metrics: {}');
    const first = await client();
    await admitted(first);
    expect(await admitted(await client())).toBe(false);
    const call = adminClient(proxy!.runtime);
    await waitFor(() => proxy!.service.counters.rejected === 1);
    const metrics = await call('GET', '/metrics');
    expect(metrics.text).toContain(
      'switchyard_service_rejections_total{service="default",reason="source-connections"} 1',
    );
    const res = await call('GET', '/source-limits?limit=5');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      service: 'default',
      sources: 1,
      top: [{ source: '127.0.0.1', active: 1 }],
      stats: { refusedConnections: 1, refusedRate: 0 },
    });
    expect((await call('GET', '/source-limits?service=nope')).status).toBe(404);
    expect((await call('GET', '/source-limits?limit=-1')).status).toBe(400);
  });

  it('config: nothing to limit, a bad rate, a bad network', async () => {
    await expect(start({ prefix_v4: 24 })).rejects.toThrow(
      /test\.yaml:5:18 {2}plugins\.source-limits {2}set max_connections, rate, or both/,
    );
    await expect(start({ max_connections: 1, burst: 5 })).rejects.toThrow(
      /plugins\.source-limits\.burst {2}burst is the size of the rate bucket: set rate too/,
    );
    await expect(start({ rate: '20 per second' })).rejects.toThrow(/plugins\.source-limits\.rate/);
    await expect(start({ max_connections: 1, allow: ['10.0.0.0/40'] })).rejects.toThrow(
      /allow\[0\] {2}"10\.0\.0\.0\/40": the prefix length must be 0 to 32/,
    );
  });
});

describe('SourceTable keys', () => {
  const table = (prefixV4: number, prefixV6: number) =>
    new SourceTable({ prefixV4, prefixV6, maxSources: 10, burst: 1, perMs: 0 });

  it('groups IPv4 (plain or mapped) and IPv6 by prefix', () => {
    expect(table(32, 64).keyOf('10.1.2.3')).toBe('10.1.2.3');
    expect(table(32, 64).keyOf('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(table(24, 64).keyOf('10.1.2.3')).toBe('10.1.2.0/24');
    expect(table(24, 64).keyOf('::ffff:10.1.2.3')).toBe('10.1.2.0/24');
    expect(table(0, 64).keyOf('10.1.2.3')).toBe('0.0.0.0/0');
    expect(table(32, 64).keyOf('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(table(32, 64).keyOf('2001:db8:1:2:bbbb::9')).toBe('2001:db8:1:2::/64');
    expect(table(32, 48).keyOf('2001:db8:1:2::1')).toBe('2001:db8:1::/48');
    expect(table(32, 128).keyOf('::1')).toBe('::1/128');
    expect(table(32, 64).keyOf('not-an-ip')).toBeNull();
    expect(table(32, 64).keyOf('')).toBeNull();
  });
});
