import { afterEach, describe, expect, it } from 'vitest';
import { Dnsmasq } from '../fixtures/dnsmasq.js';
import { EtcdServer } from '../fixtures/etcd.js';
import { admin, ClusterProcess, clusterFixture, poll, stampedSession } from './cluster-harness.js';

/** Discovery sources with workers: they run once, in the primary; workers get its registry. */
describe('discovery sources in a cluster (workers: 2)', () => {
  const t = clusterFixture();
  let dns: Dnsmasq | undefined;
  let etcd: EtcdServer | undefined;
  afterEach(async () => {
    await dns?.stop();
    dns = undefined;
    await etcd?.stop();
    etcd = undefined;
  });

  /** Which backend each of `n` sessions reached, by worker pid. */
  const route = async (proxy: string, n: number) => {
    const seen = new Map<number, Set<string>>();
    for (let i = 0; i < n; i++) {
      const { pid, socket, rest } = await stampedSession(t.kit, proxy);
      let text = rest;
      if (!text.includes('\n'))
        text += await new Promise<string>((resolve) => {
          socket.once('data', (d) => resolve(d.toString()));
          socket.resume();
        });
      const name = text.split('\n')[0]!;
      if (!seen.has(pid)) seen.set(pid, new Set());
      seen.get(pid)!.add(name);
      socket.destroy();
    }
    return seen;
  };

  it('dns-discovery looks up from the primary only; both workers route to what it found, and follow changes', async () => {
    const servers = await Promise.all(['a', 'b'].map((n) => t.kit.named(n)));
    const [a, b] = servers.map((s) => s.port);
    const srv = (...r: string[]) => ({ hosts: ['127.0.0.1 t.sy.test'], srv: r });
    dns = await Dnsmasq.start(srv(`_app._tcp.sy.test,t.sy.test,${a},0,1`), 1, true);
    t.cluster = new ClusterProcess();
    t.cluster.writeConfig(`
workers: 2
listen: 127.0.0.1:0
plugins:
  ${t.cluster.pidStamp}: {}
  dns-discovery: { name: _app._tcp.sy.test, resolvers: ["${dns.address}"], min_refresh: 1s }
  admin-api: { listen: 127.0.0.1:0 }
`);
    t.cluster.start();
    // The machine may be busy: give the first start longer than started() waits.
    await t.cluster.waitForLog('switchyard started (cluster primary)', 45_000);
    const { proxy, admin: api, pids } = await t.cluster.started();
    const seen = await route(proxy, 6);
    expect([...seen.keys()].sort()).toEqual([...pids].sort());
    for (const names of seen.values()) expect([...names]).toEqual(['a']);
    const listed = (await admin(api, 'GET', '/backends')).body.backends;
    expect(listed.map((x: { origin: string }) => x.origin)).toEqual(['dns-discovery']);

    // One resolver: over ~3 s at a 1 s TTL, about 3-4 SRV queries; three processes would triple it.
    const q0 = dns.queries('SRV', '_app._tcp.sy.test');
    await new Promise((r) => setTimeout(r, 3000));
    expect(dns.queries('SRV', '_app._tcp.sy.test') - q0).toBeLessThanOrEqual(5);

    await dns.restartWith(srv(`_app._tcp.sy.test,t.sy.test,${b},0,1`));
    await t.cluster.waitForLog('dns-discovery: backends changed', 10_000, 2);
    const changes = t.cluster.logs.filter((l) => l.msg === 'dns-discovery: backends changed');
    expect(new Set(changes.map((l) => l.pid))).toEqual(new Set([t.cluster.pid]));
    await poll(
      async () => {
        const now = await route(proxy, 4);
        return [...now.values()].every((names) => [...names].join() === 'b');
      },
      5000,
      'both workers on b',
    );
  }, 90_000);

  it('etcd-registry: one watch in the primary; an admin add and an etcdctl put reach both workers', async () => {
    etcd = await EtcdServer.start();
    const servers = await Promise.all(['a', 'b', 'c'].map((n) => t.kit.named(n)));
    t.cluster = new ClusterProcess();
    t.cluster.writeConfig(`
workers: 2
listen: 127.0.0.1:0
backends: [{ address: "${servers[0]!.address}" }]
plugins:
  ${t.cluster.pidStamp}: {}
  etcd-registry: { endpoints: ["${etcd.endpoint}"], prefix: /c/ }
  admin-api: { listen: 127.0.0.1:0 }
`);
    t.cluster.start();
    // The machine may be busy: give the first start longer than started() waits.
    await t.cluster.waitForLog('switchyard started (cluster primary)', 45_000);
    const { proxy, admin: api } = await t.cluster.started();
    expect(t.cluster.logs.filter((l) => /seeded them from the config/.test(String(l.msg))).length).toBe(1);
    const add = await admin(api, 'POST', '/backends', { address: servers[1]!.address });
    expect(add.status).toBe(201);
    await etcd.ctl('put', `/c/default/backends/${servers[2]!.address}`, '{}');
    await poll(
      async () => {
        const seen = await route(proxy, 6);
        return seen.size === 2 && [...seen.values()].every((names) => names.size === 3);
      },
      5000,
      'both workers on a, b and c',
    );
    // Only the primary talks to etcd.
    const lines = t.cluster.logs.filter((l) => /^etcd-registry:/.test(String(l.msg)));
    expect(new Set(lines.map((l) => l.pid))).toEqual(new Set([t.cluster.pid]));
  }, 90_000);
});
