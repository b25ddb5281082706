import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { exchange } from '../../testing/index.js';
import { admin, ClusterProcess, clusterFixture, poll, stampedSessionsOnEvery } from './cluster-harness.js';

/** workers: 2 from the real CLI: traffic, registry changes, aggregated stats, force-disconnect. */
describe('cluster (workers: 2)', () => {
  const t = clusterFixture();

  const start = async (backends: string[]) => {
    t.cluster = new ClusterProcess();
    t.cluster.writeConfig(`
workers: 2
listen: 127.0.0.1:0
backends: [${backends.map((a) => `{ address: "${a}" }`).join(', ')}]
plugins:
  ${t.cluster.pidStamp}: {}
  admin-api: { listen: 127.0.0.1:0 }
  force-disconnect: {}
  metrics: {}
`);
    t.cluster.start();
    return t.cluster.started();
  };

  /** At least `n` sessions, and as many more as it takes for every worker to serve one. */
  const openStamped = async (address: string, n: number, pids: readonly number[]) => {
    const out = await stampedSessionsOnEvery(t.kit, address, pids, { min: n });
    for (const s of out) s.socket.resume(); // read on, so a close by the proxy is seen
    return out;
  };

  it('spreads sessions over both workers; the primary sums them; force-disconnect reaches every worker', async () => {
    const echo = await t.kit.echo();
    const { proxy, admin: api, pids } = await start([echo.address]);
    expect(pids).toHaveLength(2);
    expect(proxy).toMatch(/^127\.0\.0\.1:\d+$/);

    const sessions = await openStamped(proxy, 10, pids);
    const n = sessions.length;
    expect(new Set(sessions.map((s) => s.pid))).toEqual(new Set(pids));

    // The workers' periodic reports add up in the primary's registry and counters.
    await poll(async () => (await admin(api, 'GET', '/get')).body[0].active === n, 10_000, `active ${n}`);
    const [backend] = (await admin(api, 'GET', '/get')).body;
    expect(backend).toMatchObject({ address: echo.address, active: n, total: n });
    expect((await admin(api, 'GET', '/sessions')).body.count).toBe(n);
    const { body: workers } = await admin(api, 'GET', '/workers');
    expect(workers.mode).toBe('cluster');
    expect(workers.primaryPid).toBe(t.cluster!.pid);
    expect(workers.workers.map((w: { pid: number }) => w.pid).sort()).toEqual([...pids].sort());
    expect(workers.workers.reduce((sum: number, w: { sessions: number }) => sum + w.sessions, 0)).toBe(n);
    const metrics = (await admin(api, 'GET', '/metrics')).body as string;
    expect(metrics).toContain(`switchyard_service_sessions_active{service="default"} ${n}\n`);
    expect(metrics).toContain(`switchyard_service_accepted_total{service="default"} ${n}\n`);

    const closed = Promise.all(
      sessions.map((s) => (s.socket.destroyed ? undefined : once(s.socket, 'close'))),
    );
    const on = await admin(api, 'POST', '/force_disconnect', { enabled: true });
    expect(on.status).toBe(200);
    expect(on.body).toMatchObject({ enabled: true, closed: n });
    await closed;
    await poll(() => echo.sockets.size === 0, 10_000, 'upstreams to close');
    // Refused by every worker: several connections, so both get one.
    const acceptedBefore = echo.accepted;
    for (let i = 0; i < 4; i++) expect((await exchange(proxy)).length).toBe(0);
    expect(echo.accepted).toBe(acceptedBefore);

    const off = await admin(api, 'POST', '/force_disconnect', { enabled: false });
    expect(off.body).toMatchObject({ enabled: false, closed: n });
    const again = await openStamped(proxy, 4, pids);
    const total = n + again.length;
    await poll(
      async () => (await admin(api, 'GET', '/get')).body[0].total === total,
      10_000,
      `total ${total}`,
    );
  });

  it('applies admin changes made in the primary in every worker', async () => {
    const a = await t.kit.named('a');
    const b = await t.kit.named('b');
    const { proxy, admin: api, pids } = await start([a.address]);

    const added = await admin(api, 'POST', '/add', { address: b.address, weight: 3 });
    expect(added.status).toBeLessThan(300);
    const removed = await admin(api, 'GET', `/remove?address=${b.address.replace(':', '%3A')}`);
    expect(removed.status).toBeLessThan(300);
    // Remove then add back, then remove a: workers must follow each version in order.
    await admin(api, 'POST', '/add', { address: b.address });
    expect((await admin(api, 'GET', `/remove?address=${a.address}`)).status).toBeLessThan(300);

    const before = a.accepted;
    const sessions = await openStamped(proxy, 8, pids);
    await poll(() => b.accepted === sessions.length, 10_000, 'b to take every new session');
    expect(a.accepted).toBe(before);
    const list = (await admin(api, 'GET', '/get')).body as Array<{ address: string }>;
    expect(list.map((x) => x.address)).toEqual([b.address]);
  });

  it('a drain timed in the primary closes the backend sessions in every worker', async () => {
    const a = await t.kit.echo();
    const b = await t.kit.echo();
    const { proxy, admin: api, pids } = await start([a.address, b.address]);
    const sessions = await openStamped(proxy, 8, pids);
    const n = sessions.length;
    await poll(() => a.sockets.size + b.sockets.size === n, 5000, `${n} upstreams`);
    const onA = a.sockets.size;
    expect(onA).toBeGreaterThan(0);
    // The primary must have seen them (its drain is skipped when it believes none are active).
    await poll(async () => (await admin(api, 'GET', '/get')).body[0].active === onA, 10_000, 'active on a');

    const removed = await admin(api, 'GET', `/remove?address=${a.address}&drain_timeout=0`);
    expect(removed.status).toBeLessThan(300);
    // drain_timeout=0: closed at once in every worker, not after the workers' own 30 s.
    await poll(() => a.sockets.size === 0, 10_000, "a's sessions to be closed");
    expect(b.sockets.size).toBe(n - onA);
    await poll(() => sessions.filter((s) => s.socket.destroyed).length === onA, 5000, 'clients to close');
  });
});
