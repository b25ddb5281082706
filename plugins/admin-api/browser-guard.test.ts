import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestKit, type TestProxy } from '../../testing/index.js';
import type { AdminApi } from './index.js';
import { type RawResponse, rawHttp } from './raw-http.test-support.js';

/**
 * Host and Origin checks on raw requests: what a page after DNS rebinding, or a page on another
 * site, makes a browser send (browser.test.ts does the same from a real browser).
 */
describe('admin-api Host and cross-site checks (raw requests)', () => {
  let proxy: TestProxy;
  let admin: string;
  let port: string;
  const kit = createTestKit();

  beforeAll(async () => {
    proxy = await kit.proxy(
      `
listen: 127.0.0.1:0
backends: [{ address: "127.0.0.1:10001" }, { address: "127.0.0.1:10002" }]
plugins:
  admin-api: { listen: "127.0.0.1:0", allowed_hosts: [admin.example.com, .example.org] }
  force-disconnect: {}
`,
      { logs: 'warn' },
    );
    admin = proxy.runtime.use<AdminApi>('admin-api')!.address()!;
    port = admin.split(':')[1]!;
  });
  afterAll(kit.close);

  const send = (method: string, path: string, headers: Record<string, string>, body?: string) => {
    const lines = [`${method} ${path} HTTP/1.1`, 'Connection: close'];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    if (body !== undefined)
      lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`);
    return rawHttp(admin, `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`);
  };
  const json = (r: RawResponse) => JSON.parse(r.body) as { error?: string };
  const addresses = () => proxy.service.backends.list().map((b) => b.address);

  it('answers only the Host names it is reached by: a rebinding name reads and changes nothing', async () => {
    for (const host of [`evil.example:${port}`, 'evil.example', 'localhost.evil.example', 'example.com']) {
      const read = await send('GET', '/get', { Host: host });
      expect(read.status, host).toBe(403);
      expect(json(read).error).toMatch(
        /^Host ".*" is not a name this admin API answers to; add it to admin-api "allowed_hosts"/,
      );
      expect(read.body).not.toContain('10001');
      expect((await send('GET', '/sessions', { Host: host })).status).toBe(403);
      expect((await send('GET', '/healthz', { Host: host })).status).toBe(403);
      expect((await send('POST', '/backends', { Host: host }, '{"address":"127.0.0.1:20001"}')).status).toBe(
        403,
      );
      expect((await send('GET', '/remove?address=127.0.0.1:10001', { Host: host })).status).toBe(403);
    }
    expect(addresses()).toEqual(['127.0.0.1:10001', '127.0.0.1:10002']);
  });

  it('accepts IP addresses, localhost names, and the allowed_hosts list', async () => {
    for (const host of [
      `127.0.0.1:${port}`,
      '127.0.0.1',
      `[::1]:${port}`,
      '10.1.2.3:9090',
      `localhost:${port}`,
      'LOCALHOST.',
      'app.localhost',
      'admin.example.com',
      'Admin.Example.Com:443',
      'example.org',
      'deep.sub.example.org:8443',
    ]) {
      const res = await send('GET', '/get', { Host: host });
      expect(res.status, host).toBe(200);
    }
    for (const host of ['other.example.com', 'badexample.org', 'example.org.evil.test', '[::1', 'a_b:80'])
      expect((await send('GET', '/get', { Host: host })).status, host).toBe(403);
  });

  it('logs refused Host headers once per interval, with how many so far', async () => {
    const warnings = proxy.logs.filter((l) => /Host header not in allowed_hosts/.test(String(l.msg)));
    // Dozens were refused above, within far less than the 10 s interval.
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ host: expect.stringContaining('evil.example'), refusedSoFar: 1 });
  });

  it('refuses changes a browser labels cross-site or same-site, or whose Origin is elsewhere', async () => {
    const host = `127.0.0.1:${port}`;
    const refused: Array<Record<string, string>> = [
      { 'Sec-Fetch-Site': 'cross-site' },
      { 'Sec-Fetch-Site': 'same-site' },
      { 'Sec-Fetch-Site': 'something-new' },
      { Origin: 'http://127.0.0.2:8000' },
      { Origin: `http://localhost:${port}` },
      { Origin: 'https://127.0.0.1' },
      { Origin: 'http://127.0.0.1' },
      { Origin: 'null' },
      { Origin: 'file://' },
      { Origin: `http://127.0.0.1:${port}`, 'Sec-Fetch-Site': 'cross-site' },
    ];
    for (const headers of refused) {
      const label = JSON.stringify(headers);
      const remove = await send('GET', '/remove?address=127.0.0.1:10001', { Host: host, ...headers });
      expect(remove.status, label).toBe(403);
      expect(json(remove).error, label).toMatch(
        /^cross-(site|origin) request refused: this call changes state/,
      );
      const add = await send('POST', '/add', { Host: host, ...headers }, '{"address":"127.0.0.1:20001"}');
      expect(add.status, label).toBe(403);
      const off = await send('POST', '/force_disconnect', { Host: host, ...headers }, '{"enabled":true}');
      expect(off.status, label).toBe(403);
      const drain = await send(
        'PATCH',
        '/backends/127.0.0.1:10001',
        { Host: host, ...headers },
        '{"drain":true}',
      );
      expect(drain.status, label).toBe(403);
      // Reads are not changes: a cross-site page cannot read the answer anyway (no CORS).
      expect((await send('GET', '/get', { Host: host, ...headers })).status, label).toBe(200);
    }
    expect(addresses()).toEqual(['127.0.0.1:10001', '127.0.0.1:10002']);
    expect(proxy.service.backends.get('127.0.0.1:10001')!.state).toBe('up');
  });

  it("lets through the API's own pages, typed URLs, a TLS proxy on an allowed name, and curl", async () => {
    const host = `127.0.0.1:${port}`;
    const add = async (address: string, headers: Record<string, string>) =>
      send('POST', '/backends', { Host: host, ...headers }, JSON.stringify({ address }));
    expect(
      (await add('127.0.0.1:20001', { Origin: `http://${host}`, 'Sec-Fetch-Site': 'same-origin' })).status,
    ).toBe(201);
    expect((await add('127.0.0.1:20002', { 'Sec-Fetch-Site': 'none' })).status).toBe(201);
    expect((await add('127.0.0.1:20003', { Origin: 'https://admin.example.com' })).status).toBe(201);
    const viaProxy = await send(
      'POST',
      '/backends',
      { Host: 'admin.example.com', Origin: 'https://admin.example.com' },
      '{"address":"127.0.0.1:20004"}',
    );
    expect(viaProxy.status).toBe(201);
    expect(
      (
        await send(
          'POST',
          '/add',
          { Host: `localhost:${port}`, Origin: `http://localhost:${port}` },
          '{"address":"127.0.0.1:20005"}',
        )
      ).status,
    ).toBe(200);
    // The original proxy's GET /remove from curl or a script: neither header.
    const curl = await send('GET', '/remove?address=127.0.0.1:20001', {
      Host: host,
      'User-Agent': 'curl/8.0',
    });
    expect(curl.status).toBe(200);
    expect(addresses()).toEqual([
      '127.0.0.1:10001',
      '127.0.0.1:10002',
      '127.0.0.1:20002',
      '127.0.0.1:20003',
      '127.0.0.1:20004',
      '127.0.0.1:20005',
    ]);
  });
});
