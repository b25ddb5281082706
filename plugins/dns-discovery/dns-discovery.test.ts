import { afterEach, describe, expect, it } from 'vitest';
import { Dnsmasq } from '../../test/fixtures/dnsmasq.js';
import { createTestKit, exchange, type TestBackend, type TestProxy, waitFor } from '../../testing/index.js';
import { adminClient } from '../admin-api/test-client.js';
import { reportHeader } from '../proxy-protocol/socket.test-support.js';

describe('dns-discovery against a real dnsmasq', () => {
  let dns: Dnsmasq | undefined;
  let proxy: TestProxy | undefined;
  const kit = createTestKit();
  let servers: TestBackend[] = [];
  afterEach(async () => {
    await kit.close();
    proxy = undefined;
    await dns?.stop();
    dns = undefined;
  });

  const names = async (n: number) => {
    const seen: string[] = [];
    for (let i = 0; i < n; i++) seen.push((await exchange(proxy!.address, '')).toString().trim());
    return seen;
  };
  const backends = () => proxy!.service.backends.list().map((b) => `${b.address} w${b.weight} ${b.state}`);

  /** Three servers on 127.0.0.11-13, one port: what A records with `port` point at. */
  const startHosts = async () => {
    const { port } = await kit.named('h11', { host: '127.0.0.11' });
    await kit.named('h12', { host: '127.0.0.12', port });
    await kit.named('h13', { host: '127.0.0.13', port });
    return port;
  };

  it('A records with a port: added, removed and restored while the proxy runs; the TTL sets the pace', async () => {
    const port = await startHosts();
    dns = await Dnsmasq.start({ hosts: ['127.0.0.11 web.sy.test'] }, 1);
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
drain_timeout: 200ms
plugins:
  dns-discovery:
    name: web.sy.test
    port: ${port}
    resolvers: [${dns.address}]
    min_refresh: 200ms
    hold_empty: 0
  admin-api: { listen: 127.0.0.1:0 }
`);
    // The first answer is in before the listener binds.
    expect(backends()).toEqual([`127.0.0.11:${port} w1 up`]);
    expect(await names(2)).toEqual(['h11', 'h11']);
    const api = adminClient(proxy.runtime);
    const listed = (await api('GET', '/backends')).body.backends;
    expect(listed.map((b: { origin: string }) => b.origin)).toEqual(['dns-discovery']);

    // Two more records: within the 1 s TTL (plus a lookup), traffic reaches all three.
    const held = await kit.connect(proxy.address);
    expect((await held.read(4)).toString()).toBe('h11\n');
    const h11 = proxy.service.backends.get(`127.0.0.11:${port}`)!;
    await dns.setHosts(['127.0.0.11 web.sy.test', '127.0.0.12 web.sy.test', '127.0.0.13 web.sy.test']);
    await waitFor(() => proxy!.service.backends.size === 3, 4000, 'three backends');
    expect(proxy.service.backends.get(`127.0.0.11:${port}`)).toBe(h11); // the same object stays
    expect((await names(6)).sort()).toEqual(['h11', 'h11', 'h12', 'h12', 'h13', 'h13']);

    // 127.0.0.11 leaves DNS: it drains (no new sessions; the held one is closed at 200 ms).
    const closed = held.closed();
    await dns.setHosts(['127.0.0.12 web.sy.test', '127.0.0.13 web.sy.test']);
    await waitFor(() => h11.state === 'removed', 4000, 'h11 removed');
    expect((await names(4)).sort()).toEqual(['h12', 'h12', 'h13', 'h13']);
    await closed;
    // Both changes were seen within seconds although refresh is 30 s: the records' 1 s TTL paced
    // the lookups (clamped to min_refresh .. max_refresh).
  });

  it('SRV: targets, ports and weights; re-weighted and removed when the zone changes', async () => {
    servers = await Promise.all(['a', 'b', 'c'].map((name) => kit.named(name)));
    const [a, b, c] = servers.map((s) => s.port);
    const srv = (...records: string[]) => ({ hosts: ['127.0.0.1 t.sy.test'], srv: records });
    dns = await Dnsmasq.start(
      srv(
        `_app._tcp.sy.test,t.sy.test,${a},0,1`,
        `_app._tcp.sy.test,t.sy.test,${b},0,3`,
        `_app._tcp.sy.test,t.sy.test,${c},1,5`,
      ),
      1,
    );
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
drain_timeout: 200ms
plugins:
  dns-discovery:
    name: _app._tcp.sy.test
    resolvers: [${dns.address}]
    min_refresh: 200ms
`);
    // Priority 1 (c) is a fallback tier: only the lowest priority is used.
    expect(backends().sort()).toEqual([`127.0.0.1:${a} w1 up`, `127.0.0.1:${b} w3 up`].sort());
    const seen = await names(8);
    expect(seen.filter((n) => n === 'b').length).toBe(6);

    // Re-weighted in the zone (a restart of dnsmasq: SRV records are not re-read on SIGHUP).
    const bBackend = proxy.service.backends.get(`127.0.0.1:${b}`)!;
    await dns.restartWith(
      srv(`_app._tcp.sy.test,t.sy.test,${a},0,2`, `_app._tcp.sy.test,t.sy.test,${b},0,2`),
    );
    await waitFor(() => bBackend.weight === 2, 5000, 'b re-weighted');
    expect(proxy.service.backends.get(`127.0.0.1:${b}`)).toBe(bBackend);
    expect(backends().sort()).toEqual([`127.0.0.1:${a} w2 up`, `127.0.0.1:${b} w2 up`].sort());

    // b removed, c added at priority 0.
    await dns.restartWith(
      srv(`_app._tcp.sy.test,t.sy.test,${a},0,2`, `_app._tcp.sy.test,t.sy.test,${c},0,2`),
    );
    await waitFor(() => proxy!.service.backends.get(`127.0.0.1:${c}`) !== undefined, 5000, 'c added');
    expect(bBackend.state).toBe('removed');
    expect((await names(4)).sort()).toEqual(['a', 'a', 'c', 'c']);
  });

  it('the server stops: the last set keeps serving, /readyz says degraded; it comes back: converges', async () => {
    const port = await startHosts();
    dns = await Dnsmasq.start({ hosts: ['127.0.0.11 web.sy.test', '127.0.0.12 web.sy.test'] }, 1);
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
plugins:
  dns-discovery:
    name: web.sy.test
    port: ${port}
    resolvers: [${dns.address}]
    min_refresh: 100ms
    max_refresh: 1s
    timeout: 200ms
  admin-api: { listen: 127.0.0.1:0 }
`);
    const api = adminClient(proxy.runtime);
    expect(proxy.service.backends.size).toBe(2);
    await dns.kill();
    await waitFor(() => proxy!.service.discoverySources[0]!.ok === false, 5000, 'source failing');
    const ready = await api('GET', '/readyz');
    expect(ready.status).toBe(200); // still serving: ready, but degraded
    expect(ready.body.degraded[0]).toMatch(
      /dns-discovery cannot look up web\.sy\.test: (ETIMEOUT|ECONNREFUSED)/,
    );
    expect(ready.body.services[0].sources[0]).toMatchObject({ name: 'dns-discovery', ok: false, listed: 2 });
    // Several failed lookups later, both backends still take traffic.
    await new Promise((r) => setTimeout(r, 1200));
    expect(proxy.service.backends.size).toBe(2);
    expect((await names(4)).sort()).toEqual(['h11', 'h11', 'h12', 'h12']);

    // Back, with a change made while it was down.
    await dns.restartWith({ hosts: ['127.0.0.13 web.sy.test'] });
    await waitFor(() => proxy!.service.discoverySources[0]!.ok, 5000, 'source ok again');
    await waitFor(() => proxy!.service.backends.size === 1, 5000, 'converged');
    expect(await names(2)).toEqual(['h13', 'h13']);
    expect((await api('GET', '/readyz')).body.degraded).toBeUndefined();
  });

  it('an empty answer (NXDOMAIN) is an answer: the backends go after hold_empty, not before', async () => {
    const port = await startHosts();
    dns = await Dnsmasq.start({ hosts: ['127.0.0.11 web.sy.test'] }, 1);
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
plugins:
  dns-discovery:
    name: web.sy.test
    port: ${port}
    resolvers: [${dns.address}]
    min_refresh: 100ms
    hold_empty: 3s
`);
    await dns.setHosts([]);
    const since = Date.now();
    // Looked up as NXDOMAIN within ~1 s; kept for hold_empty after that.
    await new Promise((r) => setTimeout(r, 1200));
    expect(proxy.service.backends.size).toBe(1);
    expect(proxy.service.discoverySources[0]!.ok).toBe(true); // an answer, not a failure
    await waitFor(() => proxy!.service.backends.size === 0, 8000, 'backends removed after hold_empty');
    expect(Date.now() - since).toBeGreaterThanOrEqual(3000);
  });

  it('a record type the name lacks (NODATA) is empty too; a refused query is a failure', async () => {
    const port = await startHosts();
    dns = await Dnsmasq.start({ hosts: ['127.0.0.11 web.sy.test'] }, 1);
    // AAAA asked of a name with only an A record: NODATA, so nothing to add, and no failure.
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
plugins:
  dns-discovery: { name: web.sy.test, port: ${port}, family: ipv6, resolvers: [${dns.address}], hold_empty: 0 }
`);
    expect(proxy.service.backends.size).toBe(0);
    expect(proxy.service.discoverySources[0]!.ok).toBe(true);
    await proxy.stop();
    // Outside the server's domain it refuses (no upstream): an error, reported as such.
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
plugins:
  dns-discovery: { name: web.elsewhere.example, port: ${port}, resolvers: [${dns.address}] }
`);
    expect(proxy.service.discoverySources[0]).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/EREFUSED/),
    });
  });

  it('refuses bad options with the key that is wrong', async () => {
    const bad = async (options: string) => {
      try {
        proxy = await kit.proxy(`
listen: 127.0.0.1:0
plugins:
  dns-discovery: ${options}
`);
      } catch (err) {
        const issues = (err as { issues?: Array<{ path: string; message: string }> }).issues;
        return issues ? issues.map((i) => `${i.path}: ${i.message}`).join('; ') : (err as Error).message;
      }
      throw new Error('started');
    };
    expect(await bad('{ port: 80 }')).toMatch(/name/);
    // Reported at the key (the plugin's check), like schema errors.
    expect(await bad('{ name: "web.sy.test", port: 80, resolvers: ["127.0.0.1", "dns.example:53"] }')).toBe(
      'plugins.dns-discovery.resolvers[1]: "dns.example:53" is not an IP address with an optional port',
    );
    expect(await bad('{ name: "web.sy.test", port: 80, min_refresh: 10s, max_refresh: 1s }')).toBe(
      'plugins.dns-discovery.min_refresh: min_refresh (10000 ms) is above max_refresh (1000 ms)',
    );
    expect(await bad('{ name: "_a._tcp.sy.test", weight: 3 }')).toMatch(
      /^plugins\.dns-discovery\.weight: weight applies to A\/AAAA mode/,
    );
    expect(await bad('{ name: "web.sy.test", port: 80, refresh: forever }')).toMatch(/refresh/);
  });

  it("backend: carries plugins' backend keys: proxy_protocol: v2 gives every discovered backend a v2 PROXY header", async () => {
    const { port } = await kit.backend(reportHeader('h11'), { host: '127.0.0.11' });
    await kit.backend(reportHeader('h12'), { host: '127.0.0.12', port });
    dns = await Dnsmasq.start({ hosts: ['127.0.0.11 web.sy.test'] }, 1);
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
plugins:
  dns-discovery:
    name: web.sy.test
    port: ${port}
    resolvers: [${dns.address}]
    min_refresh: 200ms
    backend: { proxy_protocol: v2 }
  proxy-protocol: {}
`);
    const answer = async () => (await exchange(proxy!.address, 'x\n')).toString().trim();
    expect(await answer()).toMatch(/^h11 v2 127\.0\.0\.1:\d+$/);
    expect(proxy.service.backends.get(`127.0.0.11:${port}`)!.spec.proxy_protocol).toBe('v2');
    // A backend that DNS adds later gets the fields too.
    await dns.setHosts(['127.0.0.12 web.sy.test']);
    await waitFor(() => proxy!.service.backends.get(`127.0.0.12:${port}`)?.state === 'up', 4000, 'h12 added');
    await waitFor(() => proxy!.service.backends.size === 1, 4000, 'h11 gone');
    expect(await answer()).toMatch(/^h12 v2 127\.0\.0\.1:\d+$/);
  });

  it('backend: a plugin key is a config error at its line without that plugin in the service, or with a bad value', async () => {
    const start = (yaml: string) => kit.proxy(yaml);
    // proxy-protocol is loaded (service b enables it), but service a does not enable it.
    await expect(
      start(`services:
  a:
    listen: 127.0.0.1:0
    plugins:
      dns-discovery:
        name: web.sy.test
        port: 80
        backend: { proxy_protocol: v2 }
  b:
    listen: 127.0.0.2:0
    plugins: { proxy-protocol: { send: v1 } }
`),
    ).rejects.toThrow(
      /test\.yaml:8:20 {2}services\.a\.plugins\.dns-discovery\.backend\.proxy_protocol {2}"proxy_protocol" is an option of plugin "proxy-protocol", which this service does not enable/,
    );
    await expect(
      start(`listen: 127.0.0.1:0
plugins:
  dns-discovery:
    name: web.sy.test
    port: 80
    backend:
      proxy_protocol: v9
  proxy-protocol: {}
`),
    ).rejects.toThrow(
      /test\.yaml:7:23 {2}plugins\.dns-discovery\.backend\.proxy_protocol {2}must be equal to one of the allowed values: v1, v2, none/,
    );
    // A key no plugin owns, and weight (A records take the `weight` option, SRV records their own).
    for (const [key, col] of [
      ['proxy_protocl: v2', 7],
      ['weight: 2', 7],
    ] as const)
      await expect(
        start(`listen: 127.0.0.1:0
plugins:
  dns-discovery:
    name: web.sy.test
    port: 80
    backend:
      ${key}
  proxy-protocol: {}
`),
      ).rejects.toThrow(
        new RegExp(
          `test\\.yaml:7:${col} {2}plugins\\.dns-discovery\\.backend\\.${key.split(':')[0]} {2}unknown key "${key.split(':')[0]}"`,
        ),
      );
  });
});
