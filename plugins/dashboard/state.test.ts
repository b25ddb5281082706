import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, type TestBackend, type TestProxy, waitFor } from '../../testing/index.js';
import { ASSET_FILES, assetDirs, loadAssets } from './assets.js';
import type { DashboardState } from './state.js';

interface AdminApi {
  address(): string | null;
}

/** The dashboard's HTTP side without a browser: state JSON, files, headers, options. */
describe('dashboard routes', () => {
  const kit = createTestKit();
  afterEach(kit.close);
  let servers: TestBackend[] = [];
  let proxy: TestProxy;

  async function start(dashboard = '{}'): Promise<string> {
    servers = await Promise.all([kit.echo(), kit.echo()]);
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends:
  - address: ${servers[0]!.address}
  - address: ${servers[1]!.address}
    weight: 3
plugins:
  admin-api: { listen: "127.0.0.1:0" }
  dashboard: ${dashboard}
`);
    return `http://${proxy.runtime.use<AdminApi>('admin-api')!.address()}`;
  }

  async function state(base: string): Promise<DashboardState> {
    const res = await fetch(`${base}/dashboard/state`);
    expect(res.status).toBe(200);
    return (await res.json()) as DashboardState;
  }

  it('reports services and backends with live bytes, and removed backends while they drain', async () => {
    const base = await start();
    const [a, b] = servers.map((s) => s.address) as [string, string];
    let s = await state(base);
    expect(s.refresh).toBe(2000);
    expect(s.forceDisconnect).toBeNull();
    expect(s.process.pid).toBe(process.pid);
    expect(s.services).toHaveLength(1);
    const svc = s.services[0]!;
    expect(svc.name).toBe('default');
    expect(svc.listen).toEqual([proxy.address]);
    expect(svc.state).toBe('running');
    expect(svc.queue).toBeNull();
    expect(svc.backends.map((x) => [x.address, x.weight, x.state, x.active])).toEqual([
      [a, 1, 'up', 0],
      [b, 3, 'up', 0],
    ]);
    expect(svc.backends[0]!.changedAt).toBeGreaterThan(0);

    const client = await kit.connect(proxy);
    await client.send(Buffer.alloc(300, 1));
    await client.read(300);
    const backend = proxy.service.sessions.values().next().value!.backend!;
    proxy.service.setBackendStatus(backend, 'health-check', 'down');
    proxy.service.backends.remove(backend.address, { drainTimeout: 60_000 });

    s = await state(base);
    const row = s.services[0]!.backends.find((x) => x.address === backend.address)!;
    expect(row).toMatchObject({ state: 'removed', active: 1, bytesIn: 300, bytesOut: 300, total: 1 });
    expect(row.status).toEqual({ 'health-check': 'down' });
    expect(s.services[0]!.sessions).toBe(1);
    expect(s.services[0]!.counters.accepted).toBe(1);

    await client.end();
    await waitFor(() => proxy.service.counters.closed === 1, 5000, 'the session to close');
    s = await state(base);
    expect(s.services[0]!.backends.map((x) => x.address)).not.toContain(backend.address);
  });

  it('reports the queue of backend-limits and the force-disconnect switch when those plugins run', async () => {
    const base = await start('{}\n  backend-limits: { max_connections: 5 }\n  force-disconnect: {}');
    const s = await state(base);
    expect(s.services[0]!.queue).toBe(0);
    expect(s.forceDisconnect).toMatchObject({ enabled: false, closed: 0 });
  });

  it('serves the page and its files with a strict content security policy', async () => {
    const base = await start('{ path: /stats, refresh: 1s }');
    expect((await fetch(`${base}/`)).status).toBe(404);
    const page = await fetch(`${base}/stats`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await page.text();
    expect(html).toContain('/dashboard/dashboard.js');
    for (const [file, type] of [
      ['dashboard.js', 'text/javascript; charset=utf-8'],
      ['dashboard.css', 'text/css; charset=utf-8'],
      ['uplot.js', 'text/javascript; charset=utf-8'],
      ['uplot.css', 'text/css; charset=utf-8'],
    ] as const) {
      const res = await fetch(`${base}/dashboard/${file}`);
      expect(res.status, file).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
    }
    expect((await state(base)).refresh).toBe(1000);
  });

  it('loads nothing from other origins and writes no markup from data', () => {
    const assets = loadAssets();
    for (const text of [assets.html, assets.css, assets.js]) {
      expect(text).not.toMatch(/https?:\/\//);
      expect(text).not.toMatch(/<style|style=/);
    }
    // uPlot: its only URL is the banner comment; it fetches nothing and writes no markup or style attribute.
    expect(assets.uplotJs.match(/https?:\/\/[^\s"')]*/g)).toEqual(['https://github.com/leeoniya/uPlot']);
    expect(assets.uplotJs).toMatch(/^\/\*! https:\/\/github.com\/leeoniya\/uPlot/);
    expect(assets.uplotJs).not.toMatch(/fetch\(|XMLHttpRequest|innerHTML|setAttribute\(|import\(/);
    expect(assets.uplotCss).not.toMatch(/url\(|@import/);
    expect(assets.html).not.toMatch(/<script>[^<]/); // no inline script
    // The script never parses strings as HTML.
    expect(assets.js).not.toMatch(
      /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/,
    );
  });

  it('finds its files next to the module, or in the source folder when run from dist', () => {
    const dirs = assetDirs('file:///opt/switchyard/dist/plugins/dashboard/assets.js').map((u) => u.href);
    expect(dirs).toEqual([
      'file:///opt/switchyard/dist/plugins/dashboard/public/',
      'file:///opt/switchyard/plugins/dashboard/public/',
    ]);
    expect(Object.values(ASSET_FILES)).toEqual(['dashboard.html', 'dashboard.css', 'dashboard.js']);
  });

  it('rejects bad options', async () => {
    await expect(start('{ history: { window: 2h } }')).rejects.toThrow(/7200 samples; at most 3600/);
    await expect(start('{ history: { interval: 50ms } }')).rejects.toThrow(
      /history.interval must be between/,
    );
    await expect(start('{ history: { interval: 10s, window: 1s } }')).rejects.toThrow(
      /at least history.interval/,
    );
    await expect(start('{ history: { max_backends: 5000 } }')).rejects.toThrow(/over 1,000,000 slots/);
    await expect(start('{ timeline: 0 }')).rejects.toThrow(/timeline/);
    await expect(start('{ refresh: 100ms }')).rejects.toThrow(/refresh must be between/);
    await expect(start('{ path: /dashboard/x }')).rejects.toThrow(/must not be under/);
    await expect(start('{ path: stats }')).rejects.toThrow(/path/);
  });
});
