import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, type TestBackend, type TestProxy, waitFor } from '../../testing/index.js';
import { History, type HistoryView, memoryBound } from './history.js';
import type { DashboardState } from './state.js';

interface AdminApi {
  address(): string | null;
}

/** History, backend conditions, timeline and the admin auth hint: the JSON the page reads. */
describe('dashboard history and states', () => {
  const kit = createTestKit();
  afterEach(kit.close);
  let servers: TestBackend[] = [];
  let proxy: TestProxy;

  async function start(
    plugins = '',
    dashboard = '{ history: { interval: 100ms, window: 10s } }',
  ): Promise<string> {
    servers = await Promise.all([kit.echo(), kit.echo()]);
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends:
  - address: ${servers[0]!.address}
  - address: ${servers[1]!.address}
    weight: 4
plugins:
  admin-api: { listen: "127.0.0.1:0" }
  dashboard: ${dashboard}
  ${plugins}
`);
    return `http://${proxy.runtime.use<AdminApi>('admin-api')!.address()}`;
  }

  async function get<T>(url: string): Promise<T> {
    const res = await fetch(url);
    expect(res.status, url).toBe(200);
    return (await res.json()) as T;
  }

  it('keeps sessions, rates and connect times per backend, and answers only newer samples with since', async () => {
    const base = await start('metrics: {}');
    const client = await kit.connect(proxy);
    await client.send(Buffer.alloc(50_000, 1));
    await client.read(50_000);
    const backend = proxy.service.sessions.values().next().value!.backend!.address;
    // A sample that sees the open session with its bytes, and a later one that sees it still open.
    let view!: HistoryView;
    await waitFor(
      async () => {
        view = await get<HistoryView>(`${base}/dashboard/history`);
        const b = view.services[0]!.backends.find((x) => x.address === backend)!;
        return b.series.sessions.at(-1) === 1 && b.series.bytesIn.some((v) => v !== null && v > 0);
      },
      5000,
      'a sample with the open session and its bytes',
    );
    expect(view.interval).toBe(100);
    expect(view.capacity).toBe(100);
    expect(view.connectTimes).toBe(true);
    const svc = view.services[0]!;
    const b = svc.backends.find((x) => x.address === backend)!;
    const n = view.t.length;
    for (const s of [svc.series, b.series])
      for (const values of Object.values(s)) expect(values).toHaveLength(n);
    for (let i = 1; i < n; i++) expect(view.t[i]!).toBeGreaterThan(view.t[i - 1]!);
    // 50,000 bytes each way arrived within the samples; rates times intervals add up to them.
    const total = (values: Array<number | null>) =>
      values.reduce<number>(
        (sum, v, i) => sum + (v ?? 0) * (i > 0 ? (view.t[i]! - view.t[i - 1]!) / 1000 : 0),
        0,
      );
    expect(total(b.series.bytesIn)).toBeGreaterThan(45_000);
    expect(total(b.series.bytesIn)).toBeLessThan(55_000);
    expect(total(svc.series.bytesOut)).toBeGreaterThan(45_000);
    expect(b.series.newSessions.some((v) => v !== null && v > 0)).toBe(true);
    expect(svc.series.newSessions.some((v) => v !== null && v > 0)).toBe(true);
    expect(b.series.connectMs.some((v) => v !== null && v >= 0)).toBe(true);
    expect(svc.series.sessions.at(-1)).toBe(1);

    const last = view.t.at(-1)!;
    const newer = await get<HistoryView>(`${base}/dashboard/history?since=${last}`);
    for (const t of newer.t) expect(t).toBeGreaterThan(last);
    await client.end();
    await waitFor(
      async () => {
        const v = await get<HistoryView>(`${base}/dashboard/history?since=${last}`);
        return v.services[0]!.backends.find((x) => x.address === backend)!.series.sessions.at(-1) === 0;
      },
      5000,
      'a sample after the session closed',
    );
    expect((await fetch(`${base}/dashboard/history?since=-1`)).status).toBe(400);
    expect((await fetch(`${base}/dashboard/history?since=x`)).status).toBe(400);
  });

  it('says connect times are not measured without the metrics plugin', async () => {
    const base = await start();
    const view = await get<HistoryView>(`${base}/dashboard/history`);
    expect(view.connectTimes).toBe(false);
    expect(view.services[0]!.series.connectMs.every((v) => v === null)).toBe(true);
  });

  it('wraps its rings at capacity and caps the backends it tracks', async () => {
    await start();
    const history = new History(proxy.runtime, 5, 1000, 1, () => undefined);
    for (let i = 1; i <= 12; i++) history.sample(1000 * i);
    const view = history.view();
    expect(view.t).toEqual([8000, 9000, 10_000, 11_000, 12_000]);
    expect(view.services[0]!.backends).toHaveLength(1);
    expect(history.trackedBackends).toBe(1);
    expect(view.untracked).toBe(12);
    expect(history.view(10_000).t).toEqual([11_000, 12_000]);
    // The bound the README states: 5 samples × (clock 8 B + 1 backend × 20 B).
    expect(memoryBound(5, 1)).toBe(5 * 8 + 5 * 20);
    expect(memoryBound(600, 256)).toBe(3_076_800);
  });

  it('gives each backend one condition: down, ejected, half-open, ramping, draining, at limit', async () => {
    const base = await start('backend-limits: { max_connections: 1 }');
    const [a, b] = servers.map((s) => s.address) as [string, string];
    const service = proxy.service;
    const state = () => get<DashboardState>(`${base}/dashboard/state`);
    const conditionOf = async (address: string) =>
      (await state()).services[0]!.backends.find((x) => x.address === address)!.condition;

    expect(await conditionOf(a)).toMatchObject({ state: 'up', takes: 'all' });
    service.setBackendStatus(service.backends.get(a)!, 'health-check', 'down');
    expect(await conditionOf(a)).toMatchObject({
      state: 'down',
      takes: 'none',
      reason: 'health-check: down',
    });
    service.setBackendStatus(service.backends.get(a)!, 'health-check', 'up');
    service.setBackendStatus(service.backends.get(a)!, 'circuit-breaker', 'open');
    expect(await conditionOf(a)).toMatchObject({ state: 'ejected', takes: 'none' });
    service.setBackendStatus(service.backends.get(a)!, 'circuit-breaker', 'half-open');
    expect(await conditionOf(a)).toMatchObject({ state: 'half-open', takes: 'some' });
    service.setBackendStatus(service.backends.get(a)!, 'circuit-breaker', 'closed');
    service.backends.setWeightFactor(service.backends.get(b)!, 'slow-start', 0.25);
    service.setBackendStatus(service.backends.get(b)!, 'slow-start', 'slow-start');
    expect(await conditionOf(b)).toMatchObject({ state: 'ramping', takes: 'some', ramp: 25 });
    service.backends.setWeightFactor(service.backends.get(b)!, 'slow-start', 1);
    service.clearBackendStatus(service.backends.get(b)!, 'slow-start');
    service.backends.setDraining(b, true);
    expect(await conditionOf(b)).toMatchObject({ state: 'draining', takes: 'none' });

    // One session fills a's only slot (b is drained): backend-limits says it is full.
    const client = await kit.connect(proxy);
    await client.send('x');
    await client.read(1);
    expect(await conditionOf(a)).toMatchObject({ state: 'at-limit', takes: 'none' });
    await client.end();
    await waitFor(async () => (await conditionOf(a)).state === 'up', 5000, 'a free again');

    // Each change is on the timeline, newest first, with what it was before.
    const timeline = (await state()).timeline;
    const mine = timeline.filter((e) => e.backend === a).map((e) => `${e.source}:${e.previous}>${e.status}`);
    expect(mine).toEqual([
      'circuit-breaker:half-open>closed',
      'circuit-breaker:open>half-open',
      'circuit-breaker:null>open',
      'health-check:down>up',
      'health-check:null>down',
    ]);
    expect(
      timeline.filter((e) => e.backend === b).map((e) => `${e.source}:${e.previous}>${e.status}`),
    ).toEqual(['registry:up>draining', 'slow-start:slow-start>', 'slow-start:null>slow-start']);
    expect(timeline[0]!.at).toBeGreaterThanOrEqual(timeline.at(-1)!.at);
  });

  it('keeps the timeline bounded, newest first', async () => {
    const base = await start('', '{ timeline: 3 }');
    const backend = proxy.service.backends.get(servers[0]!.address)!;
    for (const status of ['down', 'up', 'down', 'up', 'down'])
      proxy.service.setBackendStatus(backend, 'health-check', status);
    const timeline = (await get<DashboardState>(`${base}/dashboard/state`)).timeline;
    expect(timeline.map((e) => e.status)).toEqual(['down', 'up', 'down']);
    expect(timeline.map((e) => e.seq)).toEqual([5, 4, 3]);
  });

  it('describes the topology: listeners, sni-router routes to pools, balancers', async () => {
    servers = await Promise.all([kit.echo(), kit.echo()]);
    proxy = await kit.proxy(`
services:
  edge:
    listen: 127.0.0.1:0
    plugins:
      proxy-protocol: { accept: true, trusted: [127.0.0.1/32] }
      sni-router:
        routes:
          api.example.com: api
          grpc.example.com: { service: api, alpn: { h2: hashed } }
        default: hashed
  api:
    backends: [{ address: ${servers[0]!.address} }]
    plugins:
      proxy-protocol: { send: v2 }
  hashed:
    backends: [{ address: ${servers[1]!.address} }]
    plugins:
      consistent-hash: { key: sni }
plugins:
  admin-api: { listen: "127.0.0.1:0" }
  dashboard: {}
`);
    const base = `http://${proxy.runtime.use<AdminApi>('admin-api')!.address()}`;
    const s = await get<DashboardState>(`${base}/dashboard/state`);
    const [edge, api, hashed] = s.services.map((x) => x.topology);
    expect(edge).toMatchObject({
      name: 'edge',
      balancer: 'round-robin',
      proxyProtocol: ['accept'],
      tls: false,
    });
    expect(edge!.listen).toHaveLength(1);
    expect(edge!.routes).toEqual([
      { match: 'sni api.example.com', service: 'api' },
      { match: 'sni grpc.example.com', service: 'api' },
      { match: 'sni grpc.example.com + alpn h2', service: 'hashed' },
      { match: 'default', service: 'hashed' },
    ]);
    expect(api).toMatchObject({ listen: [], routes: [], proxyProtocol: ['send v2'] });
    expect(hashed!.balancer).toBe('consistent-hash (sni)');
  });

  it('tells the page whether the admin API needs a token', async () => {
    let base = await start();
    expect((await get<DashboardState>(`${base}/dashboard/state`)).admin).toEqual({
      token: false,
      readsOpen: true,
    });
    await kit.close();
    servers = await Promise.all([kit.echo()]);
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends: [{ address: ${servers[0]!.address} }]
plugins:
  admin-api: { listen: "127.0.0.1:0", token: "a-token-of-sixteen-chars" }
  dashboard: {}
`);
    base = `http://${proxy.runtime.use<AdminApi>('admin-api')!.address()}`;
    expect((await get<DashboardState>(`${base}/dashboard/state`)).admin).toEqual({
      token: true,
      readsOpen: true,
    });
  });
});
