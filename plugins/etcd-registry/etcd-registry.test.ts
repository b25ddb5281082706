import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EtcdServer } from '../../test/fixtures/etcd.js';
import {
  createTestKit,
  exchange,
  type TestBackend,
  type TestClient,
  type TestProxy,
  waitFor,
} from '../../testing/index.js';
import { adminClient } from '../admin-api/test-client.js';
import { reportHeader } from '../proxy-protocol/socket.test-support.js';
import type { EtcdRegistryApi } from './index.js';

/**
 * A TCP forwarder to etcd that the test can cut and restore on the same port: a partition
 * between the instances and etcd, while etcdctl still reaches etcd directly.
 */
class Link {
  server: Server | undefined;
  port = 0;
  readonly sockets = new Set<Socket>();
  constructor(private readonly target: number) {}

  async up(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const PREFIX = '/sy-test/';

describe('etcd-registry: several instances on one real etcd', () => {
  let etcd: EtcdServer | undefined;
  let link: Link | undefined;
  const kit = createTestKit();
  let proxies: TestProxy[] = [];
  let servers: TestBackend[] = [];
  afterEach(async () => {
    await kit.close();
    proxies = [];
    await link?.down();
    link = undefined;
    await etcd?.stop();
    etcd = undefined;
  });

  const addr = (i: number) => servers[i]!.address;
  const key = (i: number) => `${PREFIX}default/backends/${addr(i)}`;

  /** Starts etcd, the backends a..e, and `n` instances whose config lists `config` (the seed). */
  const fleet = async (n: number, config: number[] = [0], viaLink = false) => {
    etcd = await EtcdServer.start();
    servers = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((name) => kit.named(name)));
    let endpoint = etcd.endpoint;
    if (viaLink) {
      link = new Link(etcd.clientPort);
      await link.up();
      endpoint = `http://127.0.0.1:${link.port}`;
    }
    for (let i = 0; i < n; i++) proxies.push(await instance(endpoint, config));
    return proxies.map((p) => adminClient(p.runtime));
  };
  const instance = (endpoint: string, config: number[]) =>
    kit.proxy(`
listen: 127.0.0.1:0
drain_timeout: 10s
backends:
${config.map((i) => `  - address: ${addr(i)}`).join('\n')}
plugins:
  etcd-registry:
    endpoints: [${endpoint}]
    prefix: ${PREFIX}
    # Generous: on a busy machine etcd's own fsync can take seconds.
    request_timeout: 5s
  admin-api: { listen: 127.0.0.1:0 }
  force-disconnect: {}
  metrics: { process_metrics: false }
`);
  const addresses = (p: TestProxy) => p.service.backends.list().map((b) => b.address);
  const everyone = (check: (p: TestProxy) => boolean) => proxies.every(check);
  const greet = async (p: TestProxy) => (await exchange(p.address, '')).toString().trim();

  it('seeds an empty prefix from the config once; later instances take etcd’s list, not their config’s', async () => {
    await fleet(1, [0, 1]);
    const stored = await etcd!.ctl('get', '--prefix', PREFIX, '--keys-only');
    expect(stored.split('\n').filter(Boolean).sort()).toEqual(
      [key(0), key(1), `${PREFIX}default/seeded`].sort(),
    );
    expect(JSON.parse((await etcd!.ctl('get', key(1), '--print-value-only')).trim())).toMatchObject({
      address: addr(1),
    });
    // A second instance whose config says c: it serves etcd's a and b.
    proxies.push(await instance(etcd!.endpoint, [2]));
    expect(addresses(proxies[1]!).sort()).toEqual([addr(0), addr(1)].sort()); // etcd lists by key, not in config order
    expect(proxies[1]!.service.backends.list().every((b) => b.origin === 'etcd-registry')).toBe(true);
    // An operator who empties the service keeps it empty (the marker stays): no re-seeding.
    await etcd!.ctl('del', '--prefix', `${PREFIX}default/backends/`);
    await waitFor(() => everyone((p) => p.service.backends.size === 0), 3000, 'emptied everywhere');
    proxies.push(await instance(etcd!.endpoint, [2]));
    expect(addresses(proxies[2]!)).toEqual([]);
  });

  it('an add through one instance is routed by all within a second; a key written with etcdctl is picked up', async () => {
    const [api] = await fleet(3);
    const t0 = Date.now();
    const res = await api!('POST', '/backends', { json: { address: addr(1), weight: 2 } });
    const answered = Date.now() - t0;
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ address: addr(1), weight: 2, origin: 'etcd-registry', state: 'up' });
    // Read-your-writes: the answering instance routes to it already.
    expect(addresses(proxies[0]!)).toContain(addr(1));
    const seen: number[] = [];
    await Promise.all(
      proxies.map(async (p) => {
        await waitFor(() => p.service.backends.get(addr(1)) !== undefined, 1000, 'the add on every instance');
        seen.push(Date.now() - t0);
      }),
    );
    console.log(`etcd add: answered in ${answered} ms; on all 3 instances within ${Math.max(...seen)} ms`);
    for (const p of proxies) {
      const names = new Set<string>();
      for (let i = 0; i < 3; i++) names.add(await greet(p));
      expect([...names].sort()).toEqual(['a', 'b']);
    }

    const t1 = Date.now();
    await etcd!.ctl('put', key(2), JSON.stringify({ weight: 3 }));
    await waitFor(() => everyone((p) => p.service.backends.get(addr(2))?.weight === 3), 1000, 'etcdctl put');
    console.log(`etcdctl put: on all 3 instances within ${Date.now() - t1} ms`);

    // Weight and drain through another instance reach everyone.
    const api2 = adminClient(proxies[1]!.runtime);
    expect((await api2('PATCH', `/backends/${addr(2)}`, { json: { weight: 7 } })).body.weight).toBe(7);
    await waitFor(() => everyone((p) => p.service.backends.get(addr(2))?.weight === 7), 1000, 'weight');
    expect((await api2('PATCH', `/backends/${addr(2)}`, { json: { drain: true } })).body.state).toBe(
      'draining',
    );
    await waitFor(
      () => everyone((p) => p.service.backends.get(addr(2))?.state === 'draining'),
      1000,
      'drain',
    );

    // Bad and conflicting calls answer as in one process.
    expect((await api!('POST', '/backends', { json: { address: addr(1) } })).status).toBe(409);
    expect((await api!('DELETE', `/backends/${addr(4)}`)).status).toBe(404);
    expect((await api!('PATCH', `/backends/${addr(4)}`, { json: { weight: 2 } })).status).toBe(404);
    const badValue = await etcd!.ctl('put', `${PREFIX}default/backends/${addr(3)}`, 'not json');
    expect(badValue).toMatch(/OK/);
    await new Promise((r) => setTimeout(r, 200));
    expect(everyone((p) => p.service.backends.get(addr(3)) === undefined)).toBe(true);
  });

  it('a removal drains on every instance: held sessions go on until the drain timeout, new ones go elsewhere', async () => {
    const [api] = await fleet(3, [0]);
    const held: TestClient[] = [];
    for (const p of proxies) {
      const s = await kit.connect(p);
      expect((await s.read(2)).toString()).toBe('a\n');
      held.push(s);
    }
    expect((await api!('POST', '/backends', { json: { address: addr(1) } })).status).toBe(201);
    const closed = held.map((s) => s.closed());
    const res = await adminClient(proxies[2]!.runtime)('DELETE', `/backends/${addr(0)}?drain_timeout=500ms`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ state: 'removed', active: 1 });
    await waitFor(
      () => everyone((p) => p.service.backends.get(addr(0)) === undefined),
      1000,
      'removed everywhere',
    );
    for (const [i, p] of proxies.entries()) {
      await held[i]!.send('ping');
      expect((await held[i]!.read(4)).toString()).toBe('ping');
      expect(await greet(p)).toBe('b');
    }
    await Promise.all(closed); // the 500 ms drain timeout, on every instance
    expect(await etcd!.ctl('get', key(0))).toBe('');
  });

  it('etcd unreachable: everyone serves its last set, /readyz degraded, writes 503; changes made meanwhile converge', async () => {
    const [api] = await fleet(3, [0, 1], true);
    await link!.down();
    await waitFor(
      () => everyone((p) => p.service.discoverySources[0]!.ok === false),
      5000,
      'every instance notices',
    );
    for (const p of proxies) {
      const ready = await adminClient(p.runtime)('GET', '/readyz');
      expect(ready.status).toBe(200);
      expect(ready.body.degraded[0]).toMatch(/etcd-registry cannot reach etcd/);
      expect(new Set([await greet(p), await greet(p)])).toEqual(new Set(['a', 'b']));
    }
    const metrics = await api!('GET', '/metrics');
    expect(metrics.text).toMatch(
      /switchyard_discovery_source_up\{service="default",source="etcd-registry"\} 0/,
    );
    const refused = await api!('POST', '/backends', { json: { address: addr(2) } });
    expect(refused.status).toBe(503);
    expect(refused.body.error).toMatch(
      /etcd \(.*\) did not take the change: .*nothing was changed on this instance/,
    );
    expect(addresses(proxies[0]!).sort()).toEqual([addr(0), addr(1)].sort()); // never silently local-only
    const fd = await api!('POST', '/force_disconnect', { json: { enabled: true } });
    expect(fd.status).toBe(503);

    // Meanwhile, in etcd: a removed, c added, b re-weighted.
    await etcd!.ctl('del', key(0));
    await etcd!.ctl('put', key(2), JSON.stringify({ address: addr(2) }));
    await etcd!.ctl('put', key(1), JSON.stringify({ address: addr(1), weight: 5 }));
    const b = proxies.map((p) => p.service.backends.get(addr(1))!);
    const t0 = Date.now();
    await link!.up();
    await waitFor(
      () =>
        everyone(
          (p) =>
            p.service.discoverySources[0]!.ok &&
            addresses(p).sort().join() === [addr(1), addr(2)].sort().join() &&
            p.service.backends.get(addr(1))!.weight === 5,
        ),
      8000,
      'every instance converges',
    );
    console.log(
      `after a partition: all 3 instances converged ${Date.now() - t0} ms after etcd was reachable`,
    );
    // Resumed, not rebuilt: b is the same object on every instance.
    for (const [i, p] of proxies.entries()) expect(p.service.backends.get(addr(1))).toBe(b[i]);
    expect((await adminClient(proxies[1]!.runtime)('GET', '/readyz')).body.degraded).toBeUndefined();
  });

  it('a compacted revision or an etcd restart ends in a full re-read, and everyone converges', async () => {
    await fleet(2, [0], true);
    await link!.down();
    await waitFor(() => everyone((p) => !p.service.discoverySources[0]!.ok), 5000, 'disconnected');
    await etcd!.ctl('put', key(3), '{}');
    for (let i = 0; i < 3; i++) await etcd!.ctl('put', `${PREFIX}noise`, String(i));
    const status = JSON.parse(await etcd!.ctl('endpoint', 'status', '-w', 'json')) as Array<{
      Status: { header: { revision: number } };
    }>;
    await etcd!.ctl('compact', String(status[0]!.Status.header.revision));
    await link!.up();
    await waitFor(
      () => everyone((p) => addresses(p).sort().join() === [addr(0), addr(3)].sort().join()),
      8000,
      'resync',
    );

    // etcd itself dies and comes back (same data); a change after its return reaches everyone.
    await etcd!.kill();
    await waitFor(() => everyone((p) => !p.service.discoverySources[0]!.ok), 5000, 'etcd down');
    expect(await greet(proxies[0]!)).toMatch(/^[ad]$/);
    await etcd!.start();
    const t0 = Date.now();
    await etcd!.ctl('put', key(4), '{}');
    await waitFor(
      () => everyone((p) => p.service.backends.get(addr(4)) !== undefined),
      8000,
      'after restart',
    );
    console.log(
      `after an etcd restart: a key put right after it reached both instances in ${Date.now() - t0} ms`,
    );
    const revisions = proxies.map((p) => p.runtime.use<EtcdRegistryApi>('etcd-registry')!.revision());
    expect(revisions[0]).toBe(revisions[1]);
  });

  it('force-disconnect at one instance reaches every instance, and one started later', async () => {
    const [api] = await fleet(2, [0]);
    const held = await kit.connect(proxies[1]!.address);
    await held.read(2);
    const closed = held.closed();
    const res = await api!('POST', '/force_disconnect', { json: { enabled: true } });
    expect(res.body).toMatchObject({ enabled: true });
    await closed; // a session on the other instance
    await waitFor(
      () => proxies[1]!.runtime.use<{ state(): { enabled: boolean } }>('force-disconnect')!.state().enabled,
      1000,
      'on',
    );
    for (const p of proxies) expect((await exchange(p.address, '')).length).toBe(0);
    proxies.push(await instance(etcd!.endpoint, [0]));
    expect((await exchange(proxies[2]!.address, '')).length).toBe(0);
    expect((await api!('POST', '/force_disconnect', { json: { enabled: false } })).body.enabled).toBe(false);
    await waitFor(
      () =>
        everyone(
          (p) => !p.runtime.use<{ state(): { enabled: boolean } }>('force-disconnect')!.state().enabled,
        ),
      1000,
      'off',
    );
    for (const p of proxies) expect(await greet(p)).toBe('a');
  });

  it('etcd unreachable at start: the config’s backends serve, then etcd’s list once it answers', async () => {
    etcd = await EtcdServer.start();
    servers = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((name) => kit.named(name)));
    link = new Link(etcd.clientPort);
    await link.up();
    const endpoint = `http://127.0.0.1:${link.port}`;
    await link.down();
    await etcd.ctl('put', key(1), '{}');
    await etcd.ctl('put', `${PREFIX}default/seeded`, '{}');
    proxies.push(await instance(endpoint, [0]));
    expect(addresses(proxies[0]!)).toEqual([addr(0)]);
    expect(proxies[0]!.service.discoverySources[0]!.ok).toBe(false);
    expect(await greet(proxies[0]!)).toBe('a');
    await link.up();
    await waitFor(() => addresses(proxies[0]!).join() === addr(1), 8000, "etcd's list");
    expect(await greet(proxies[0]!)).toBe('b');
  });

  it('plugin keys in a spec are honoured (proxy_protocol: v1); a bad value is refused and logged, the others apply', async () => {
    etcd = await EtcdServer.start();
    const [v1, bad, plain] = await Promise.all(
      ['v1', 'bad', 'plain'].map((name) => kit.backend(reportHeader(name))),
    );
    const put = (b: TestBackend, value: object) =>
      etcd!.ctl('put', `${PREFIX}default/backends/${b.address}`, JSON.stringify(value));
    await put(v1!, { proxy_protocol: 'v1' });
    await put(bad!, { proxy_protocol: 'v9', weight: 5 });
    await put(plain!, {});
    const proxy = await kit.proxy(
      `
listen: 127.0.0.1:0
plugins:
  etcd-registry: { endpoints: [${etcd.endpoint}], prefix: ${PREFIX}, request_timeout: 5s }
  proxy-protocol: {}
`,
      { logs: 'info' },
    );
    proxies.push(proxy);
    expect(addresses(proxy).sort()).toEqual([v1!.address, plain!.address].sort());
    // The first list is applied at start: the core logs what it refused, with the source.
    const error = `backend ${bad!.address}: proxy_protocol must be one of "v1", "v2", "none", got "v9" (an option of plugin "proxy-protocol")`;
    const atStart = proxy.logs.filter((l) => l.msg === 'discovery source entry refused');
    expect(atStart).toEqual([
      expect.objectContaining({ level: 50, source: 'etcd-registry', backend: bad!.address, error }),
    ]);
    const answers = new Set<string>();
    for (let i = 0; i < 4; i++)
      answers.add((await exchange(proxy.address, 'x\n')).toString().trim().replace(/:\d+$/, ''));
    expect([...answers].sort()).toEqual(['plain none', 'v1 v1 127.0.0.1']);

    // Later lists are the plugin's to log: once, not at every change of the service's list.
    const refusals = () =>
      proxy.logs.filter((l) => l.msg === 'etcd-registry: backend in etcd refused by the registry');
    for (const weight of [2, 3]) {
      await put(plain!, { weight });
      await waitFor(() => proxy.service.backends.get(plain!.address)?.weight === weight, 2000, 're-weighted');
    }
    expect(refusals()).toEqual([expect.objectContaining({ backend: bad!.address, error })]);
    await put(bad!, { proxy_protocol: 'v2', weight: 5 });
    await waitFor(() => proxy.service.backends.get(bad!.address) !== undefined, 2000, 'the fixed spec');
    expect(proxy.service.backends.get(bad!.address)!.spec.proxy_protocol).toBe('v2');
  });
});

describe('etcd-registry options', () => {
  const kit = createTestKit();
  afterEach(kit.close);
  const bad = async (options: string) => {
    try {
      const p = await kit.proxy(`
listen: 127.0.0.1:0
plugins:
  etcd-registry: ${options}
`);
      await p.stop();
    } catch (err) {
      const issues = (err as { issues?: Array<{ path: string; message: string }> }).issues;
      return issues ? issues.map((i) => `${i.path}: ${i.message}`).join('; ') : (err as Error).message;
    }
    throw new Error('started');
  };

  it('refuses bad options with the key that is wrong', async () => {
    expect(await bad('{ username: root }')).toBe(
      'plugins.etcd-registry.username: username and password go together',
    );
    expect(await bad('{ ca: /etc/ssl/ca.pem }')).toBe(
      'plugins.etcd-registry.ca: ca, cert and key need https:// endpoints',
    );
    expect(await bad('{ endpoints: ["http://a:2379", "https://b:2379"] }')).toBe(
      'plugins.etcd-registry.endpoints: endpoints mix http:// and https://',
    );
    expect(await bad('{ endpoints: ["etcd:2379"] }')).toMatch(/^plugins\.etcd-registry\.endpoints\[0\]/);
    expect(await bad('{ prefix: "/no-slash" }')).toMatch(/^plugins\.etcd-registry\.prefix/);
    expect(await bad('{ services: [nope] }')).toMatch(/services: no service "nope" \(services: default\)/);
  });
});
