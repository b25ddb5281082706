import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_ROUTES, type AdminRoute } from '../../plugin-sdk/index.js';
import { createTestKit, exchange, type TestBackend, type TestProxy, waitFor } from '../../testing/index.js';
import { adminClient } from './test-client.js';

const kit = createTestKit();
afterEach(kit.close);

describe('admin-api endpoints', () => {
  let backends: TestBackend[] = [];
  let proxy: TestProxy;

  const start = async (extra = '') => {
    backends = await Promise.all(['a', 'b', 'c'].map((n) => kit.named(n)));
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
drain_timeout: 10s
backends:
  - address: ${backends[0]!.address}
${extra}
plugins:
  admin-api: { listen: 127.0.0.1:0 }
`);
    return adminClient(proxy.runtime);
  };
  const greeting = async () => (await exchange(proxy.address, '')).toString().trim();

  it('GET /get and GET /backends report every backend field', async () => {
    const api = await start();
    const get = await api('GET', '/get');
    expect(get.status).toBe(200);
    expect(get.body).toEqual([
      {
        address: backends[0]!.address,
        weight: 1,
        state: 'up',
        active: 0,
        total: 0,
        connectFailures: 0,
        bytesIn: 0,
        bytesOut: 0,
        status: {},
        tls: false,
        insecure_skip_verify: false,
        origin: 'config',
      },
    ]);
    const rest = await api('GET', '/backends');
    expect(rest.status).toBe(200);
    expect(rest.body).toEqual({ service: 'default', backends: get.body });
    expect(rest.headers.get('content-type')).toMatch(/application\/json/);
  });

  it('the Go-compatible POST /add and GET /remove change where sessions go', async () => {
    const api = await start();
    const b = backends[1]!.address;
    const add = await api('POST', '/add', { json: { address: b, tls: false, insecure_skip_verify: false } });
    expect(add.status).toBe(200);
    expect(add.body).toMatchObject({ address: b, state: 'up', weight: 1, tls: false });
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(await greeting());
    expect(seen).toEqual(new Set(['a', 'b']));

    const removed = await api('GET', `/remove?address=${b}`);
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ address: b, state: 'removed' });
    for (let i = 0; i < 4; i++) expect(await greeting()).toBe('a');
    expect((await api('GET', '/get')).body.map((x: { address: string }) => x.address)).toEqual([
      backends[0]!.address,
    ]);
  });

  it('POST /add refuses tls: true when no plugin dials TLS, and changes nothing', async () => {
    const api = await start();
    const res = await api('POST', '/add', { json: { address: '127.0.0.1:8443', tls: true } });
    expect(res.status).toBe(400);
    expect(res.body.error).toContain('tls-upstream');
    expect(proxy.service.backends.get('127.0.0.1:8443')).toBeUndefined();
  });

  it('POST /add keeps the tls flags it is given', async () => {
    backends = await Promise.all(['a', 'b', 'c'].map((n) => kit.named(n)));
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends:
  - address: ${backends[0]!.address}
plugins:
  tls-upstream: {}
  admin-api: { listen: 127.0.0.1:0 }
`);
    const api = adminClient(proxy.runtime);
    const res = await api('POST', '/add', {
      json: { address: '127.0.0.1:8443', tls: true, insecure_skip_verify: true },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ tls: true, insecure_skip_verify: true });
    expect(proxy.service.backends.get('127.0.0.1:8443')!.spec).toMatchObject({
      tls: true,
      insecure_skip_verify: true,
    });
  });

  it('REST: POST, GET, PATCH and DELETE /backends/{address}', async () => {
    const api = await start();
    const b = backends[1]!.address;
    const created = await api('POST', '/backends', { json: { address: b, weight: 2 } });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/backends/${encodeURIComponent(b)}`);
    expect(created.body).toMatchObject({ address: b, weight: 2, state: 'up' });
    // A registry error carries its stable code next to the message; a duplicate, the entry it duplicates.
    const again = await api('POST', '/backends', { json: { address: b } });
    expect(again.status).toBe(409);
    expect(again.body).toEqual({
      error: expect.stringContaining(b),
      code: 'SWITCHYARD_E_BACKEND_EXISTS',
      existing: expect.objectContaining({ address: b, weight: 2 }),
    });

    const one = await api('GET', created.headers.get('location')!);
    expect(one.status).toBe(200);
    expect(one.body.address).toBe(b);

    const patched = await api('PATCH', `/backends/${b}`, { json: { weight: 7 } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ weight: 7, state: 'up' });
    expect(proxy.service.backends.get(b)!.weight).toBe(7);

    // Drained: registered, but takes no new sessions.
    const drained = await api('PATCH', `/backends/${b}`, { json: { drain: true } });
    expect(drained.body.state).toBe('draining');
    for (let i = 0; i < 3; i++) expect(await greeting()).toBe('a');
    const undrained = await api('PATCH', `/backends/${b}`, { json: { drain: false, weight: 1 } });
    expect(undrained.body).toMatchObject({ state: 'up', weight: 1 });
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(await greeting());
    expect(seen.has('b')).toBe(true);

    const deleted = await api('DELETE', `/backends/${b}?drain_timeout=1s`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ address: b, state: 'removed' });
    expect((await api('GET', `/backends/${b}`)).status).toBe(404);
    expect((await api('GET', '/backends')).body.backends).toHaveLength(1);
  });

  it('accepts IPv6 backends, URL-encoded in the path', async () => {
    const api = await start();
    expect((await api('POST', '/backends', { json: { address: '[::1]:9' } })).status).toBe(201);
    const got = await api('GET', `/backends/${encodeURIComponent('[::1]:9')}`);
    expect(got.status).toBe(200);
    expect(got.body.address).toBe('[::1]:9');
    // Host names are not resolved to match a registered address.
    expect((await api('GET', '/backends/localhost:9')).status).toBe(404);
  });

  it('PATCH drain with drain_timeout closes the drained sessions after the timeout', async () => {
    const api = await start();
    const s = await kit.connect(proxy);
    expect((await s.read(2)).toString()).toBe('a\n');
    const res = await api('PATCH', `/backends/${backends[0]!.address}?drain_timeout=100ms`, {
      json: { drain: true },
    });
    expect(res.body).toMatchObject({ state: 'draining', active: 1 });
    await s.send('still here');
    expect((await s.read(10)).toString()).toBe('still here');
    await s.closed();
    await waitFor(() => proxy.service.backends.get(backends[0]!.address)!.active === 0);
  });

  it('GET /sessions returns the count and a page', async () => {
    const api = await start();
    for (let i = 0; i < 5; i++) {
      const s = await kit.connect(proxy);
      await s.read(2);
    }
    const all = await api('GET', '/sessions');
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ service: 'default', count: 5, offset: 0, limit: 100 });
    expect(all.body.sessions).toHaveLength(5);
    expect(all.body.sessions[0]).toMatchObject({
      service: 'default',
      backend: backends[0]!.address,
      connected: true,
      attempts: 1,
    });
    const page = await api('GET', '/sessions?limit=2&offset=1');
    expect(page.body.count).toBe(5);
    expect(page.body.sessions.map((s: { id: number }) => s.id)).toEqual(
      all.body.sessions.slice(1, 3).map((s: { id: number }) => s.id),
    );
    expect((await api('GET', '/sessions?offset=10')).body.sessions).toEqual([]);
    // One process: itself as worker 0, with the sessions it holds.
    const workers = await api('GET', '/workers');
    expect(workers.body).toMatchObject({ mode: 'single', primaryPid: null });
    expect(workers.body.workers).toEqual([
      expect.objectContaining({ id: 0, pid: process.pid, sessions: 5, retiring: false }),
    ]);
  });

  it('/healthz answers while alive; /readyz needs listening services with a usable backend', async () => {
    const api = await start();
    const health = await api('GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.body.status).toBe('ok');

    const ready = await api('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({
      ready: true,
      services: [{ name: 'default', listening: true, backendsUp: 1 }],
    });

    // A plugin marking the only backend down makes the proxy unready.
    const backend = proxy.service.backends.get(backends[0]!.address)!;
    proxy.service.setBackendStatus(backend, 'health-check', 'down');
    const down = await api('GET', '/readyz');
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ ready: false, error: 'service default has no backend up' });
    proxy.service.setBackendStatus(backend, 'health-check', 'up');
    expect((await api('GET', '/readyz')).status).toBe(200);

    await api('PATCH', `/backends/${backends[0]!.address}`, { json: { drain: true } });
    expect((await api('GET', '/readyz')).status).toBe(503);
  });

  it('/readyz is 503 while services drain on stop', async () => {
    const api = await start();
    const s = await kit.connect(proxy);
    await s.read(2);
    const stopping = proxy.stop(5000);
    const res = await api('GET', '/readyz');
    expect(res.status).toBe(503);
    expect(res.body.error).toMatch(/not listening/);
    s.destroy();
    await stopping;
  });

  it('?service= picks the service; the default is the first', async () => {
    backends = await Promise.all(['a', 'b'].map((n) => kit.named(n)));
    proxy = await kit.proxy(`
services:
  web:
    listen: 127.0.0.1:0
    backends: [{ address: ${backends[0]!.address} }]
  db:
    listen: 127.0.0.1:0
    backends: [{ address: ${backends[1]!.address} }]
plugins:
  admin-api: { listen: 127.0.0.1:0 }
`);
    const api = adminClient(proxy.runtime);
    expect((await api('GET', '/backends')).body.service).toBe('web');
    const db = await api('GET', '/backends?service=db');
    expect(db.body).toMatchObject({ service: 'db', backends: [{ address: backends[1]!.address }] });
    const created = await api('POST', '/backends?service=db', { json: { address: '127.0.0.1:7' } });
    expect(created.headers.get('location')).toBe(`/backends/${encodeURIComponent('127.0.0.1:7')}?service=db`);
    expect(proxy.runtime.services.get('db')!.backends.get('127.0.0.1:7')).toBeDefined();
    expect(proxy.runtime.services.get('web')!.backends.get('127.0.0.1:7')).toBeUndefined();
    expect((await api('GET', '/get?service=db')).body).toHaveLength(2);
    expect((await api('GET', '/readyz?service=db')).body.services).toHaveLength(1);
    expect((await api('GET', '/readyz')).body.services).toHaveLength(2);
  });

  it('serves routes other plugins contribute, with the same token rules', async () => {
    proxy = await kit.proxy(
      `
listen: 127.0.0.1:0
plugins:
  admin-api: { listen: 127.0.0.1:0, token: test-token-0123456789 }
`,
      { start: false },
    );
    const runtime = proxy.runtime;
    const hits: string[] = [];
    const routes: AdminRoute[] = [
      { method: 'GET', url: '/x/info', handler: async () => ({ ok: 1 }) },
      {
        method: 'POST',
        url: '/x/act',
        schema: {
          body: { type: 'object', additionalProperties: false, properties: { n: { type: 'integer' } } },
        },
        handler: async (req) => {
          hits.push('act');
          return { got: req.body };
        },
      },
      { method: 'POST', url: '/x/query', mutating: false, handler: async () => ({ read: true }) },
      { method: 'GET', url: '/x/danger', mutating: true, handler: async () => ({ done: true }) },
    ];
    for (const r of routes) runtime.contribute(ADMIN_ROUTES, r);
    await proxy.start();
    const api = adminClient(runtime);
    expect((await api('GET', '/x/info')).body).toEqual({ ok: 1 });
    expect((await api('POST', '/x/act', { json: { n: 1 } })).status).toBe(401);
    expect(hits).toEqual([]);
    const act = await api('POST', '/x/act', { json: { n: 1 }, token: 'test-token-0123456789' });
    expect(act.body).toEqual({ got: { n: 1 } });
    // The strict body rules apply to contributed routes too.
    const bad = await api('POST', '/x/act', { json: { n: '1', m: 2 }, token: 'test-token-0123456789' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/unknown field "m"/);
    expect((await api('POST', '/x/query', { json: {} })).body).toEqual({ read: true });
    expect((await api('GET', '/x/danger')).status).toBe(401);
    expect((await api('GET', '/x/info?service=nope')).status).toBe(404);
  });

  it('refuses to start when two routes collide, naming the route', async () => {
    const r = await kit.proxy('listen: 127.0.0.1:0\nplugins:\n  admin-api: { listen: 127.0.0.1:0 }\n', {
      start: false,
    });
    r.runtime.contribute(ADMIN_ROUTES, { method: 'GET', url: '/get', handler: async () => 1 });
    await expect(r.start()).rejects.toThrow(/admin route GET \/get/);
  });
});

describe('admin-api around start', () => {
  it('refuses backend changes with 503 until the service has started', async () => {
    const proxy = await kit.proxy(
      'listen: 127.0.0.1:0\nbackends: [{ address: 127.0.0.1:7 }]\nplugins:\n  admin-api: { listen: 127.0.0.1:0 }\n',
      { start: false },
    );
    const runtime = proxy.runtime;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    runtime.defaultService.hooks.start.tapPromise('test-gate', () => gate);
    const starting = proxy.start();
    try {
      await waitFor(() => runtime.use<{ address(): string | null }>('admin-api')!.address() !== null);
      const api = adminClient(runtime);
      const add = await api('POST', '/add', { json: { address: '127.0.0.1:7' } });
      expect(add).toMatchObject({
        status: 503,
        body: { error: 'service default is starting; retry shortly' },
      });
      expect((await api('DELETE', '/backends/127.0.0.1:7')).status).toBe(503);
      expect((await api('GET', '/readyz')).status).toBe(503);
      release();
      await starting;
      // The config backend was added by the start, not refused as a duplicate.
      expect((await api('GET', '/get')).body).toEqual([expect.objectContaining({ address: '127.0.0.1:7' })]);
      expect((await api('POST', '/add', { json: { address: '127.0.0.1:8' } })).status).toBe(200);
    } finally {
      release();
      await starting.catch(() => {});
    }
  });

  it('HEAD on a state-changing GET needs the token too', async () => {
    const proxy = await kit.proxy(
      'listen: 127.0.0.1:0\nbackends: [{ address: 127.0.0.1:7 }]\nplugins:\n  admin-api: { listen: 127.0.0.1:0, token: head-token-0123456789 }\n',
    );
    const api = adminClient(proxy.runtime);
    expect((await api('HEAD', '/remove?address=127.0.0.1:7')).status).toBe(401);
    expect((await api('HEAD', '/get')).status).toBe(200);
    expect(proxy.service.backends.size).toBe(1);
  });
});
