import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, exchange, type TestClient, type TestProxy, waitFor } from '../../testing/index.js';
import type { BackendLimitsApi } from './api.js';

describe('backend-limits', () => {
  const kit = createTestKit();
  const clients: TestClient[] = [];
  afterEach(async () => {
    clients.length = 0;
    await kit.close();
  });
  let proxy: TestProxy;

  const named = (...names: string[]) => Promise.all(names.map((n) => kit.named(n)));
  const start = async (backends: string[], limits: string, service = '') => {
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
${service}
backends:
${backends.map((b) => `  - address: ${b}`).join('\n')}
plugins:
  backend-limits: ${limits}
`);
    return proxy.service.use<BackendLimitsApi>('backend-limits')!;
  };
  /** Opens a client session through the proxy and keeps it open. */
  const connect = async () => {
    const c = await kit.connect(proxy);
    clients.push(c);
    return c;
  };
  /** The name line of the backend that took the session. */
  const nameOf = async (c: TestClient) => String(await c.read(2)).trim();
  const closed = async (c: TestClient) => {
    await c.closed();
  };
  const end = async (c: TestClient) => {
    c.destroy();
    await closed(c);
  };
  const limitsOf = (api: BackendLimitsApi, address: string) =>
    api.backends().find((b) => b.backend === address)!;

  it('overflow next: a full backend is skipped, another takes the session', async () => {
    const [a, b] = await named('a', 'b');
    const api = await start(
      [a!.address, b!.address],
      `{ overflow: next, backends: { "${a!.address}": { max_connections: 1 } } }`,
    );
    const held = await connect();
    expect(await nameOf(held)).toBe('a');
    const more = await Promise.all([connect(), connect(), connect(), connect()]);
    expect(await Promise.all(more.map(nameOf))).toEqual(['b', 'b', 'b', 'b']);
    expect(limitsOf(api, a!.address)).toMatchObject({ active: 1, maxConnections: 1, full: true });
    expect(limitsOf(api, a!.address).overflows).toBeGreaterThanOrEqual(2);
    expect(limitsOf(api, b!.address)).toMatchObject({ active: 4, maxConnections: 0, full: false });

    await end(held);
    await waitFor(() => limitsOf(api, a!.address).active === 0, 3000, 'a released');
    const names = [];
    for (let i = 0; i < 2; i++) names.push(await nameOf(await connect()));
    expect(names).toContain('a');
    await Promise.all(clients.map(end));
    await waitFor(() => api.backends().every((x) => x.active === 0 && x.pending === 0), 3000, 'all released');
    expect(api.counters.refused).toBe(0);
  });

  it('overflow next: refuses with max-connections when every backend is full', async () => {
    const [a, b] = await named('a', 'b');
    const api = await start([a!.address, b!.address], '{ overflow: next, max_connections: 1 }');
    const held = await Promise.all([connect(), connect()]);
    expect((await Promise.all(held.map(nameOf))).sort()).toEqual(['a', 'b']);
    const third = await connect();
    await closed(third);
    expect(api.counters.refused).toBe(1);
    expect(api.queueLength()).toBe(0);
    expect(proxy.service.counters.rejected).toBe(1);
    await end(held[0]!);
    await waitFor(() => api.backends().some((x) => !x.full), 3000, 'a slot freed');
    expect(await nameOf(await connect())).toMatch(/^[ab]$/);
  });

  it('overflow queue: waits while every backend is full and proceeds, in order, as slots free', async () => {
    const [a] = await named('a');
    const api = await start([a!.address], '{ overflow: queue, max_connections: 1, queue_timeout: 10s }');
    const held = await connect();
    expect(await nameOf(held)).toBe('a');
    const second = await connect();
    await waitFor(() => api.queueLength() === 1, 3000, 'second queued');
    const third = await connect();
    await waitFor(() => api.queueLength() === 2, 3000, 'third queued');
    const firstName = nameOf(second);
    const thirdName = nameOf(third);

    await end(held);
    expect(await firstName).toBe('a');
    expect(api.queueLength()).toBe(1);
    expect(limitsOf(api, a!.address).active).toBe(1);
    await end(second);
    expect(await thirdName).toBe('a');
    expect(api.queueLength()).toBe(0);
    expect(api.counters).toMatchObject({
      queued: 2,
      dequeued: 2,
      timeouts: 0,
      queueFull: 0,
      maxQueueLength: 2,
    });
    await end(third);
    await waitFor(() => limitsOf(api, a!.address).active === 0, 3000, 'released');
  });

  it('overflow queue: new sessions do not overtake queued ones', async () => {
    const [a] = await named('a');
    const api = await start([a!.address], '{ overflow: queue, max_connections: 2, queue_timeout: 10s }');
    const held = [await connect(), await connect()];
    await Promise.all(held.map(nameOf));
    const queued = await connect();
    await waitFor(() => api.queueLength() === 1, 3000, 'queued');
    const queuedName = nameOf(queued);
    await end(held[0]!);
    expect(await queuedName).toBe('a');
    // One slot freed, one waiter served; a newcomer now waits as well.
    const late = await connect();
    await waitFor(() => api.queueLength() === 1, 3000, 'late queued');
    expect(limitsOf(api, a!.address).active).toBe(2);
    const lateName = nameOf(late);
    await end(held[1]!);
    expect(await lateName).toBe('a');
  });

  it('overflow queue: a session waiting longer than queue_timeout is refused', async () => {
    const [a] = await named('a');
    const api = await start([a!.address], '{ overflow: queue, max_connections: 1, queue_timeout: 200ms }');
    const held = await connect();
    expect(await nameOf(held)).toBe('a');
    const waiting = await connect();
    await waitFor(() => api.queueLength() === 1, 3000, 'queued');
    await closed(waiting);
    expect(api.counters).toMatchObject({ queued: 1, dequeued: 0, timeouts: 1 });
    expect(api.queueLength()).toBe(0);
    expect(proxy.service.counters.rejected).toBe(1);
    expect(limitsOf(api, a!.address).active).toBe(1);
    expect(held.socket.destroyed).toBe(false);
  });

  it('overflow queue: a full queue refuses at once', async () => {
    const [a] = await named('a');
    const api = await start(
      [a!.address],
      '{ overflow: queue, max_connections: 1, queue_size: 1, queue_timeout: 10s }',
    );
    const held = await connect();
    await nameOf(held);
    await connect();
    await waitFor(() => api.queueLength() === 1, 3000, 'queued');
    const refused = await connect();
    await closed(refused);
    expect(api.counters).toMatchObject({ queued: 1, queueFull: 1, timeouts: 0 });
    expect(api.queueLength()).toBe(1);
  });

  it('overflow queue: a backend added at run time takes the waiting sessions', async () => {
    const [a, b] = await named('a', 'b');
    const api = await start([a!.address], '{ overflow: queue, max_connections: 1, queue_timeout: 10s }');
    await nameOf(await connect());
    const waiting = await connect();
    await waitFor(() => api.queueLength() === 1, 3000, 'queued');
    const name = nameOf(waiting);
    proxy.service.backends.add({ address: b!.address });
    expect(await name).toBe('b');
    expect(api.queueLength()).toBe(0);
  });

  it('overflow queue: sessions still queued at shutdown are dropped and counted', async () => {
    const [a] = await named('a');
    const api = await start([a!.address], '{ overflow: queue, max_connections: 1, queue_timeout: 10s }');
    await nameOf(await connect());
    const waiting = await connect();
    await waitFor(() => api.queueLength() === 1, 3000, 'queued');
    await proxy.stop(0);
    await closed(waiting);
    expect(api.counters).toMatchObject({ queued: 1, abandoned: 1, dequeued: 0 });
    expect(api.queueLength()).toBe(0);
  });

  it('overflow refuse: keeps the balancer pick and refuses when it is full', async () => {
    const [a, b] = await named('a', 'b');
    const api = await start(
      [a!.address, b!.address],
      `{ overflow: refuse, backends: { "${a!.address}": { max_connections: 1 } } }`,
    );
    expect(await nameOf(await connect())).toBe('a');
    expect(await nameOf(await connect())).toBe('b');
    const third = await connect(); // round robin picks a, which is full
    await closed(third);
    expect(api.counters.refused).toBe(1);
    expect(limitsOf(api, a!.address)).toMatchObject({ active: 1, overflows: 1 });
    expect(limitsOf(api, b!.address).active).toBe(1);
  });

  it('max_pending: a backend with a connect in progress is skipped; an abandoned connect is released', async () => {
    const hole = await kit.blackhole();
    const [good] = await named('g');
    const api = await start(
      [hole.address, good!.address],
      `{ overflow: next, backends: { "${hole.address}": { max_pending: 1 } } }`,
      'connect_timeout: 10s',
    );
    const stuck = await connect(); // round robin: the blackhole; its connect hangs
    await waitFor(() => limitsOf(api, hole.address).pending === 1, 3000, 'pending connect');
    expect(limitsOf(api, hole.address)).toMatchObject({ active: 1, maxPending: 1, full: true });
    const names = [];
    for (let i = 0; i < 3; i++) names.push(await nameOf(await connect()));
    expect(names).toEqual(['g', 'g', 'g']);
    // A paused client's close goes unseen until the connect ends; kill the session instead.
    expect(proxy.service.closeSessions('killed', (x) => x.connectedAt === 0)).toBe(1);
    await closed(stuck);
    await waitFor(() => limitsOf(api, hole.address).pending === 0, 3000, 'pending released');
    expect(limitsOf(api, hole.address)).toMatchObject({ active: 0, full: false });
  });

  it('overflow queue: free room only on a backend another plugin filters out does not spin', async () => {
    const [a] = await named('a');
    const dead = (await kit.refusing()).address;
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends:
  - address: ${a!.address}
  - address: ${dead}
plugins:
  backend-limits: { overflow: queue, max_connections: 1, queue_timeout: 300ms }
  circuit-breaker: { consecutive_failures: 1, base_ejection_time: 30s }
`);
    const api = proxy.service.use<BackendLimitsApi>('backend-limits')!;
    const breaker = proxy.service.use<{ get(a: string): { state: string } }>('circuit-breaker')!;
    for (let i = 0; i < 5 && breaker.get(dead)!.state === 'closed'; i++) await exchange(proxy.address, 'x');
    expect(breaker.get(dead)!.state).toBe('open');
    await waitFor(() => limitsOf(api, a!.address).active === 0, 3000, 'released');
    const held = await connect();
    expect(await nameOf(held)).toBe('a');
    const waiting = await connect();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    await closed(waiting);
    clearInterval(ticker);
    // Woken once for the room on the open backend, then waited for its timeout without spinning.
    expect(api.counters).toMatchObject({ queued: 1, dequeued: 1, timeouts: 1 });
    expect(ticks).toBeGreaterThan(5);
  });

  it('rejects an override with a bad address or an unknown option', async () => {
    await expect(
      kit.proxy(`
listen: 127.0.0.1:0
plugins:
  backend-limits: { backends: { "nope": { max_connections: 1 } } }
`),
    ).rejects.toThrow(/nope/);
    await expect(
      kit.proxy(`
listen: 127.0.0.1:0
plugins:
  backend-limits: { overflow: drop }
`),
    ).rejects.toThrow(/overflow/);
  });
});
