import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Backend, Service } from '../../plugin-sdk/index.js';
import {
  createTestKit,
  type TestBackend,
  type TestClient,
  type TestProxy,
  waitFor,
} from '../../testing/index.js';
import { adminClient } from './test-client.js';

/** An echo session that streams random chunks and checks every byte that comes back. */
class Streamer {
  rounds = 0;
  bytes = 0;
  mismatch: string | null = null;
  closedCleanly = false;
  readonly done: Promise<void>;
  constructor(
    readonly client: TestClient,
    shouldStop: () => boolean,
  ) {
    this.done = this.#run(shouldStop);
  }
  async #run(shouldStop: () => boolean): Promise<void> {
    while (!shouldStop()) {
      const chunk = randomBytes(512 + Math.floor(Math.random() * 7680));
      this.client.socket.write(chunk);
      const back = await this.client.read(chunk.length, 10_000);
      if (!back.equals(chunk)) {
        this.mismatch = `round ${this.rounds}: echo differs`;
        return;
      }
      this.rounds++;
      this.bytes += chunk.length;
      await new Promise((r) => setImmediate(r));
    }
    this.client.socket.end();
    const { error } = await this.client.closed(15_000);
    // Clean: FINs both ways, and not a byte more than was echoed.
    this.closedCleanly = error === null && this.client.buffered === 0;
  }
}

/** Checks the core's `active` count of every backend against the sessions really on it. */
function expectActiveCountsExact(service: Service, servers: TestBackend[]) {
  const bySession = new Map<Backend, number>();
  for (const s of service.sessions.values())
    if (s.backend !== null && s.connectedAt > 0)
      bySession.set(s.backend, (bySession.get(s.backend) ?? 0) + 1);
  for (const [backend, n] of bySession) expect(backend.active, backend.address).toBe(n);
  for (const backend of service.backends.list()) expect(backend.active).toBe(bySession.get(backend) ?? 0);
  // And against the sockets each echo server holds.
  for (const server of servers) {
    const active = [...bySession]
      .filter(([b]) => b.address === server.address)
      .reduce((n, [, c]) => n + c, 0);
    expect(server.sockets.size, server.address).toBe(active);
  }
}

describe('admin-api changes under live traffic', () => {
  const kit = createTestKit();
  afterEach(kit.close);
  let servers: TestBackend[] = [];
  let proxy: TestProxy;

  const start = async (n: number, balancer: string, drain = '60s') => {
    servers = await Promise.all(Array.from({ length: n }, () => kit.echo()));
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
drain_timeout: ${drain}
backends:
  - address: ${servers[0]!.address}
plugins:
  ${balancer}: {}
  admin-api: { listen: 127.0.0.1:0 }
`);
    return adminClient(proxy.runtime);
  };

  it('50 streaming sessions survive backends being added, drained, removed and re-added', async () => {
    const api = await start(3, 'round-robin');
    const [e1, e2, e3] = servers.map((s) => s.address);
    let stop = false;
    const streams: Streamer[] = [];
    const openStreams = async (n: number) => {
      const batch = await Promise.all(Array.from({ length: n }, () => kit.connect(proxy)));
      streams.push(...batch.map((s) => new Streamer(s, () => stop)));
    };
    const totalRounds = () => streams.reduce((n, s) => n + s.rounds, 0);
    /** Lets traffic flow on every session between two changes. */
    const flow = async () => {
      const mark = streams.map((s) => s.rounds);
      await waitFor(
        () => streams.every((s, i) => s.rounds > mark[i]! || s.mismatch !== null),
        15_000,
        'traffic',
      );
    };
    const ok = (res: { status: number }) => expect(res.status).toBeLessThan(300);

    await openStreams(20);
    await flow();
    ok(await api('POST', '/backends', { json: { address: e2 } }));
    await openStreams(10);
    await flow();
    ok(await api('POST', '/add', { json: { address: e3, weight: 3 } }));
    await openStreams(10);
    await flow();
    // e1 leaves: its sessions keep streaming (drain timeout 60s).
    ok(await api('DELETE', `/backends/${e1}`));
    await flow();
    ok(await api('PATCH', `/backends/${e2}`, { json: { drain: true } }));
    await openStreams(5);
    await flow();
    expectActiveCountsExact(proxy.service, servers);
    // e1 returns while its old sessions still run: one object, counts kept.
    ok(await api('POST', '/backends', { json: { address: e1 } }));
    ok(await api('PATCH', `/backends/${e2}`, { json: { drain: false, weight: 2 } }));
    ok(await api('GET', `/remove?address=${e3}`));
    await openStreams(5);
    await flow();
    expectActiveCountsExact(proxy.service, servers);
    expect(streams).toHaveLength(50);
    expect(totalRounds()).toBeGreaterThan(50 * 3);

    stop = true;
    await Promise.all(streams.map((s) => s.done));
    expect(streams.filter((s) => s.mismatch !== null).map((s) => s.mismatch)).toEqual([]);
    expect(streams.filter((s) => !s.closedCleanly)).toHaveLength(0);
    // Every backend got sessions at some point, and none is left counted.
    for (const server of servers) expect(server.accepted).toBeGreaterThan(0);
    expect(servers.reduce((n, s) => n + s.accepted, 0)).toBe(50);
    await waitFor(() => proxy.service.sessions.size === 0, 5000, 'sessions to end');
    for (const b of proxy.service.backends.list()) expect(b.active).toBe(0);
    expect(proxy.service.counters.closed).toBe(50);
    const listed = (await api('GET', '/backends')).body.backends;
    expect(listed.map((b: { address: string }) => b.address).sort()).toEqual([e1, e2].sort());
    expect(listed.reduce((n: number, b: { total: number }) => n + b.total, 0)).toBeLessThanOrEqual(50);
  });

  it('a removed backend drains: its sessions continue, then close after the drain timeout', async () => {
    const api = await start(2, 'round-robin', '60s');
    const [a, b] = servers.map((s) => s.address);
    await api('POST', '/backends', { json: { address: b } });
    const first = await kit.connect(proxy); // round robin: a
    await first.send('ping');
    expect((await first.read(4)).toString()).toBe('ping');
    expect(servers[0]!.sockets.size).toBe(1);

    const removed = await api('DELETE', `/backends/${a}?drain_timeout=300ms`);
    expect(removed.body).toMatchObject({ state: 'removed', active: 1 });
    // Still served after removal...
    await first.send('still');
    expect((await first.read(5)).toString()).toBe('still');
    // ...while every new session goes to b.
    for (let i = 0; i < 3; i++) {
      const s = await kit.connect(proxy);
      await s.send('x');
      await s.read(1);
    }
    expect(servers[0]!.accepted).toBe(1);
    expect(servers[1]!.accepted).toBe(3);
    // ...and closed once the drain timeout passes.
    await first.closed();
    await waitFor(() => servers[0]!.sockets.size === 0, 5000, 'upstream of the drained session to close');
    const listed = (await api('GET', '/backends')).body.backends;
    expect(listed).toEqual([expect.objectContaining({ address: b, active: 3 })]);
  });

  it('without drain_timeout a removed backend keeps its sessions for the service drain timeout', async () => {
    const api = await start(1, 'round-robin', '60s');
    const s = await kit.connect(proxy);
    await s.send('a');
    await s.read(1);
    await api('GET', `/remove?address=${servers[0]!.address}`);
    await new Promise((r) => setTimeout(r, 200));
    await s.send('b');
    expect((await s.read(1)).toString()).toBe('b');
    // New sessions have nowhere to go.
    const refused = await kit.connect(proxy);
    await refused.closed();
    expect(servers[0]!.accepted).toBe(1);
  });

  it('least-connections: active counts stay exact as backends are added, removed and re-added', async () => {
    const api = await start(3, 'least-connections');
    const [a, b, c] = servers.map((s) => s.address);
    await api('POST', '/backends', { json: { address: b } });
    const sessions: TestClient[] = [];
    const openOne = async () => {
      const s = await kit.connect(proxy);
      sessions.push(s);
      await s.send('.');
      await s.read(1);
      return s;
    };
    const active = async () =>
      Object.fromEntries(
        (await api('GET', '/backends')).body.backends.map((x: { address: string; active: number }) => [
          x.address,
          x.active,
        ]),
      );

    for (let i = 0; i < 4; i++) await openOne();
    expect(await active()).toEqual({ [a]: 2, [b]: 2 });
    // A new backend gets the next sessions: it has the fewest.
    await api('POST', '/add', { json: { address: c } });
    await openOne();
    await openOne();
    expect(await active()).toEqual({ [a]: 2, [b]: 2, [c]: 2 });
    expectActiveCountsExact(proxy.service, servers);

    // a leaves with 2 sessions that keep running; then comes back: still 2.
    await api('DELETE', `/backends/${a}`);
    expect(await active()).toEqual({ [b]: 2, [c]: 2 });
    await openOne(); // to b or c
    await api('POST', '/backends', { json: { address: a } });
    const afterReadd = await active();
    expect(afterReadd[a]).toBe(2);
    expect(afterReadd[b] + afterReadd[c]).toBe(5);
    expectActiveCountsExact(proxy.service, servers);

    // a closes one of its sessions; the count follows.
    const onA = [...proxy.service.sessions.values()].filter((s) => s.backend?.address === a);
    expect(onA).toHaveLength(2);
    const aClient = sessions.find((s) => s.localPort === onA[0]!.remotePort)!;
    await aClient.end();
    await aClient.closed();
    await waitFor(() => proxy.service.backends.get(a)!.active === 1, 3000, 'a to count 1');
    // The next session goes to a, now the least loaded.
    await openOne();
    expect((await active())[a]).toBe(2);
    expectActiveCountsExact(proxy.service, servers);

    for (const s of sessions) s.destroy();
    await waitFor(() => proxy.service.sessions.size === 0, 5000, 'sessions to end');
    expect(await active()).toEqual({ [a]: 0, [b]: 0, [c]: 0 });
  });
});
