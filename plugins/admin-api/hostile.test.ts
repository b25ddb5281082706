import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestKit, exchange, type TestBackend, type TestProxy } from '../../testing/index.js';
import { isLoopbackHost } from './auth.js';
import { type AdminCall, adminClient } from './test-client.js';

const TOKEN = 'hostile-test-token-0123456789';

/**
 * Every answer to bad input: a 4xx with a JSON `{ error }` that says what is wrong, and nothing
 * else but, for registry errors, their stable `code`.
 */
function expectError(res: { status: number; body: any }, status: number, message: RegExp) {
  expect(res.status).toBe(status);
  const { code, ...rest } = res.body;
  expect(rest).toEqual({ error: expect.stringMatching(message) });
  if (code !== undefined) expect(code).toMatch(/^SWITCHYARD_E_[A-Z_]+$/);
}

describe('admin-api under hostile input (token set)', () => {
  const kit = createTestKit();
  let backend: TestBackend;
  let proxy: TestProxy;
  let api: AdminCall;
  let before: unknown;

  beforeAll(async () => {
    backend = await kit.named('a');
    proxy = await kit.proxy(`
services:
  web:
    listen: 127.0.0.1:0
    backends: [{ address: ${backend.address} }]
plugins:
  admin-api: { listen: 127.0.0.1:0, token: ${TOKEN} }
  force-disconnect: {}
`);
    api = adminClient(proxy.runtime, TOKEN);
    before = (await api('GET', '/backends')).body;
  });
  afterAll(async () => {
    try {
      // Nothing above changed state, crashed the server or broke proxying.
      expect((await api('GET', '/backends')).body).toEqual(before);
      expect((await exchange(proxy.address, 'x')).toString()).toBe('a\nx');
    } finally {
      await kit.close();
    }
  });

  it('malformed, empty or non-object JSON bodies', async () => {
    const json = { 'content-type': 'application/json' };
    expectError(
      await api('POST', '/add', { raw: '{"address": ', headers: json }),
      400,
      /^malformed JSON body: /,
    );
    expectError(await api('POST', '/backends', { raw: "{'a':1}", headers: json }), 400, /malformed JSON/);
    expectError(await api('POST', '/add', { raw: '', headers: json }), 400, /body is empty/);
    expectError(await api('POST', '/add', { raw: '   ', headers: json }), 400, /body is empty/);
    expectError(await api('POST', '/add', { json: [] }), 400, /^body must be object$/);
    expectError(await api('POST', '/add', { json: null }), 400, /^body must be object$/);
    expectError(await api('POST', '/add', { json: 'x' }), 400, /^body must be object$/);
    expectError(await api('POST', '/add'), 400, /body must be object/);
    expectError(
      await api('POST', '/force_disconnect', { raw: '{"enabled":tru}', headers: json }),
      400,
      /malformed JSON/,
    );
  });

  it('bodies over the limit and other content types', async () => {
    const huge = JSON.stringify({ address: `${'a'.repeat(20_000)}:80` });
    expectError(
      await api('POST', '/add', { raw: huge, headers: { 'content-type': 'application/json' } }),
      413,
      /larger than 16384 bytes/,
    );
    expectError(
      await api('POST', '/add', { raw: 'address=1.2.3.4:80', headers: { 'content-type': 'text/plain' } }),
      415,
      /unsupported content type "text\/plain".*application\/json/,
    );
    expectError(
      await api('POST', '/add', {
        raw: 'address=1.2.3.4:80',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      }),
      415,
      /unsupported content type/,
    );
  });

  it('bad addresses and ports', async () => {
    const cases: Array<[unknown, RegExp]> = [
      ['127.0.0.1:0', /port 0 is out of range 1-65535/],
      ['127.0.0.1:70000', /port 70000 is out of range 1-65535/],
      ['127.0.0.1:123456', /"123456" is not a port number/],
      ['127.0.0.1', /has no port/],
      ['nohost', /has no port/],
      ['::1:80', /IPv6 addresses in brackets/],
      ['[::1:80', /is not "\[ipv6\]:port"/],
      ['bad host!:80', /not a valid IP address or host name/],
      ['127.0.0.1:-1', /not a port number/],
      ['', /body.address must NOT have fewer than 1 characters/],
      ['a'.repeat(301), /body.address must NOT have more than 300 characters/],
    ];
    for (const [address, message] of cases) {
      expectError(await api('POST', '/add', { json: { address } }), 400, message);
      expectError(await api('POST', '/backends', { json: { address } }), 400, message);
    }
    expectError(await api('GET', '/backends/127.0.0.1:70000'), 400, /port 70000 is out of range/);
    expectError(await api('DELETE', '/backends/nope'), 400, /has no port/);
    expectError(await api('PATCH', '/backends/x:0', { json: { weight: 2 } }), 400, /port 0 is out of range/);
    expectError(await api('GET', '/remove?address=1.2.3.4:99999'), 400, /out of range/);
  });

  it('wrong types and out-of-range values', async () => {
    const addr = '127.0.0.1:7';
    const cases: Array<[object, RegExp]> = [
      [{ address: 123 }, /^body.address must be string$/],
      [{ address: addr, weight: '3' }, /^body.weight must be integer$/],
      [{ address: addr, weight: 1.5 }, /^body.weight must be integer$/],
      [{ address: addr, weight: 0 }, /^body.weight must be >= 1$/],
      [{ address: addr, weight: 257 }, /^body.weight must be <= 256$/],
      [{ address: addr, tls: 'yes' }, /^body.tls must be boolean$/],
      [{ address: addr, insecure_skip_verify: 1 }, /^body.insecure_skip_verify must be boolean$/],
      [{ address: addr, tls: null }, /^body.tls must be boolean$/],
    ];
    for (const [json, message] of cases) expectError(await api('POST', '/backends', { json }), 400, message);
    const b = `/backends/${backend.address}`;
    expectError(await api('PATCH', b, { json: { drain: 'true' } }), 400, /^body.drain must be boolean$/);
    expectError(await api('PATCH', b, { json: { weight: -1 } }), 400, /body.weight must be >= 1/);
    expectError(await api('PATCH', b, { json: {} }), 400, /at least 1 field/);
    expectError(
      await api('PATCH', `${b}?drain_timeout=1s`, { json: { weight: 1 } }),
      400,
      /drain_timeout applies only with "drain": true/,
    );
    expectError(
      await api('POST', '/force_disconnect', { json: { enabled: 'true' } }),
      400,
      /enabled must be boolean/,
    );
    expectError(
      await api('POST', '/force_disconnect', { json: {} }),
      400,
      /missing required field "enabled"/,
    );
  });

  it('unknown fields in bodies and query strings', async () => {
    expectError(
      await api('POST', '/add', { json: { address: '127.0.0.1:7', weigth: 2 } }),
      400,
      /^body: unknown field "weigth"$/,
    );
    expectError(
      await api('POST', '/backends', { json: { address: '127.0.0.1:7', __proto__x: 1, state: 'up' } }),
      400,
      /unknown field "__proto__x".*unknown field "state"/,
    );
    expectError(
      await api('POST', '/add', {
        raw: '{"address":"127.0.0.1:7","__proto__":{"admin":true}}',
        headers: { 'content-type': 'application/json' },
      }),
      400,
      /unknown field "__proto__"/,
    );
    expectError(
      await api('PATCH', `/backends/${backend.address}`, { json: { state: 'up' } }),
      400,
      /unknown field "state"/,
    );
    expectError(
      await api('POST', '/force_disconnect', { json: { enabled: false, all: true } }),
      400,
      /unknown field "all"/,
    );
    expectError(await api('GET', '/backends?verbose=1'), 400, /^query: unknown field "verbose"$/);
    expectError(await api('GET', '/sessions?page=2'), 400, /unknown field "page"/);
  });

  it('bad query values', async () => {
    expectError(await api('GET', '/sessions?limit=abc'), 400, /query.limit must be integer/);
    expectError(await api('GET', '/sessions?limit=0'), 400, /query.limit must be >= 1/);
    expectError(await api('GET', '/sessions?limit=5000'), 400, /query.limit must be <= 1000/);
    expectError(await api('GET', '/sessions?offset=-1'), 400, /query.offset must be >= 0/);
    expectError(await api('GET', '/sessions?limit=1&limit=2'), 400, /query.limit/);
    expectError(await api('GET', '/remove'), 400, /missing required field "address"/);
    expectError(
      await api('DELETE', '/backends/1.2.3.4:80?drain_timeout=soon'),
      400,
      /^query.drain_timeout must be a duration such as "5s", "250ms", "1m" or a number of milliseconds$/,
    );
    expectError(await api('DELETE', '/backends/1.2.3.4:80?drain_timeout=100h'), 400, /at most 24h/);
    expectError(await api('GET', '/get?service=web&service=web'), 400, /service must be given once/);
  });

  it('missing, wrong and malformed tokens', async () => {
    const add = { json: { address: '127.0.0.1:7' } };
    const missing = await api('POST', '/add', { ...add, token: null });
    expectError(missing, 401, /missing token/);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expectError(await api('POST', '/add', { ...add, token: 'wrong' }), 401, /^invalid token$/);
    expectError(await api('POST', '/add', { ...add, token: `${TOKEN}x` }), 401, /^invalid token$/);
    expectError(await api('POST', '/add', { ...add, token: TOKEN.slice(0, -1) }), 401, /^invalid token$/);
    expectError(
      await api('POST', '/add', { ...add, token: null, headers: { authorization: `Basic ${TOKEN}` } }),
      401,
      /malformed Authorization header/,
    );
    expectError(await api('DELETE', `/backends/${backend.address}`, { token: null }), 401, /missing token/);
    expectError(
      await api('PATCH', `/backends/${backend.address}`, { json: { weight: 2 }, token: null }),
      401,
      /missing token/,
    );
    expectError(
      await api('POST', '/force_disconnect', { json: { enabled: true }, token: null }),
      401,
      /missing token/,
    );
    // GET /remove changes state, so it needs the token although it is a GET.
    expectError(
      await api('GET', `/remove?address=${backend.address}`, { token: null }),
      401,
      /missing token/,
    );
    // Read-only calls are open by default, but a wrong token is still refused.
    expect((await api('GET', '/get', { token: null })).status).toBe(200);
    expect((await api('GET', '/force_disconnect', { token: null })).status).toBe(200);
    expectError(await api('GET', '/get', { token: 'wrong' }), 401, /invalid token/);
    // The token is checked before the body is even parsed.
    expectError(
      await api('POST', '/add', {
        raw: '{bad',
        headers: { 'content-type': 'application/json' },
        token: null,
      }),
      401,
      /missing token/,
    );
  });

  it('unknown backends, duplicates and unknown services', async () => {
    expectError(await api('GET', '/backends/127.0.0.1:1'), 404, /^no backend 127.0.0.1:1$/);
    expectError(await api('PATCH', '/backends/127.0.0.1:1', { json: { weight: 2 } }), 404, /no backend/);
    expectError(await api('DELETE', '/backends/127.0.0.1:1'), 404, /no backend/);
    expectError(await api('GET', '/remove?address=127.0.0.1:1'), 404, /no backend/);
    // A duplicate is a 409 that shows the backend it duplicates.
    for (const res of [
      await api('POST', '/add', { json: { address: backend.address } }),
      await api('POST', '/backends', { json: { address: backend.address } }),
    ]) {
      expect(res.status).toBe(409);
      expect(res.body.error).toMatch(/already exists/);
      expect(res.body.existing).toMatchObject({ address: backend.address });
    }
    for (const [method, path] of [
      ['GET', '/get?service=nope'],
      ['GET', '/backends?service=nope'],
      ['GET', '/sessions?service=nope'],
      ['GET', '/readyz?service=nope'],
      ['GET', '/force_disconnect?service=nope'],
      ['DELETE', `/backends/${backend.address}?service=nope`],
    ] as const)
      expectError(await api(method, path), 404, /^unknown service "nope" \(services: web\)$/);
    expectError(
      await api('POST', '/add?service=nope', { json: { address: '127.0.0.1:7' } }),
      404,
      /unknown service/,
    );
    expectError(await api('GET', '/nothing'), 404, /no route GET \/nothing/);
    expectError(await api('PUT', '/backends'), 404, /no route PUT \/backends/);
  });
});

describe('admin-api token rules', () => {
  const kit = createTestKit();
  const saved = process.env.SWITCHYARD_ADMIN_TOKEN;
  afterEach(async () => {
    await kit.close();
    if (saved === undefined) delete process.env.SWITCHYARD_ADMIN_TOKEN;
    else process.env.SWITCHYARD_ADMIN_TOKEN = saved;
  });

  it('refuses to start on a non-loopback address without a token', async () => {
    delete process.env.SWITCHYARD_ADMIN_TOKEN;
    for (const listen of ['0.0.0.0:0', '"[::]:0"', '192.0.2.1:9090', 'example.com:9090']) {
      await expect(
        kit.proxy(`listen: 127.0.0.1:0\nplugins:\n  admin-api: { listen: ${listen} }\n`),
      ).rejects.toThrow(
        /reachable from other hosts, so a token is mandatory: set the "token" option or SWITCHYARD_ADMIN_TOKEN/,
      );
    }
  });

  it('knows which hosts are loopback', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '::ffff:127.0.0.1'])
      expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.com', '::2'])
      expect(isLoopbackHost(h)).toBe(false);
  });

  it('takes the token from SWITCHYARD_ADMIN_TOKEN', async () => {
    process.env.SWITCHYARD_ADMIN_TOKEN = 'from-the-environment-0123';
    const proxy = await kit.proxy('listen: 127.0.0.1:0\nplugins:\n  admin-api: { listen: 127.0.0.1:0 }\n');
    const api = adminClient(proxy.runtime);
    const add = { json: { address: '127.0.0.1:7' } };
    expectError(await api('POST', '/add', add), 401, /missing token/);
    expect((await api('POST', '/add', { ...add, token: 'from-the-environment-0123' })).status).toBe(200);
  });

  it('the token option wins over the environment', async () => {
    process.env.SWITCHYARD_ADMIN_TOKEN = 'from-the-environment-0123';
    const proxy = await kit.proxy(
      'listen: 127.0.0.1:0\nplugins:\n  admin-api: { listen: 127.0.0.1:0, token: from-the-config-0123456 }\n',
    );
    const api = adminClient(proxy.runtime);
    const add = { json: { address: '127.0.0.1:7' } };
    expectError(
      await api('POST', '/add', { ...add, token: 'from-the-environment-0123' }),
      401,
      /invalid token/,
    );
    expect((await api('POST', '/add', { ...add, token: 'from-the-config-0123456' })).status).toBe(200);
  });

  it('read_only_open: false closes reads too, but not the probes', async () => {
    delete process.env.SWITCHYARD_ADMIN_TOKEN;
    const proxy = await kit.proxy(
      'listen: 127.0.0.1:0\nplugins:\n  admin-api: { listen: 127.0.0.1:0, token: closed-token-0123456789, read_only_open: false }\n',
    );
    const api = adminClient(proxy.runtime);
    for (const path of ['/get', '/backends', '/sessions', '/nothing'])
      expectError(await api('GET', path), 401, /missing token/);
    expect((await api('GET', '/healthz')).status).toBe(200);
    expect((await api('GET', '/readyz')).status).toBe(503); // no backends, but answered without a token
    expect((await api('GET', '/get', { token: 'closed-token-0123456789' })).status).toBe(200);
  });

  it('without any token on loopback, every call is open', async () => {
    delete process.env.SWITCHYARD_ADMIN_TOKEN;
    const proxy = await kit.proxy('listen: 127.0.0.1:0\nplugins:\n  admin-api: { listen: 127.0.0.1:0 }\n');
    const api = adminClient(proxy.runtime);
    expect((await api('POST', '/add', { json: { address: '127.0.0.1:7' } })).status).toBe(200);
    expect((await api('GET', '/remove?address=127.0.0.1:7')).status).toBe(200);
  });

  it('reports a busy listen address clearly', async () => {
    delete process.env.SWITCHYARD_ADMIN_TOKEN;
    const proxy = await kit.proxy('listen: 127.0.0.1:0\nplugins:\n  admin-api: { listen: 127.0.0.1:0 }\n');
    const taken = proxy.runtime.use<{ address(): string }>('admin-api')!.address();
    await expect(
      kit.proxy(`listen: 127.0.0.1:0\nplugins:\n  admin-api: { listen: "${taken}" }\n`),
    ).rejects.toThrow(`admin-api cannot listen on ${taken}: EADDRINUSE`);
  });
});
