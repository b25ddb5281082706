import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Service, Session } from '../../plugin-sdk/index.js';
import { CertFactory, type CertFiles } from '../../test/fixtures/tls/certs.js';
import { sClient, startTlsServer, type TestTlsServer, tlsExchange } from '../../test/fixtures/tls/peers.js';
import {
  createTestKit,
  freePort,
  loadConfig,
  type TestBackend,
  type TestProxy,
  waitFor,
} from '../../testing/index.js';
import type { SniRouterApi } from './api.js';
import { clientHello } from './hello.test-support.js';

let certs: CertFactory;
let ca: CertFiles;
let apiCert: CertFiles;
let appsCert: CertFiles;
let fallbackCert: CertFiles;

beforeAll(async () => {
  certs = await CertFactory.create();
  ca = await certs.ca('ca');
  [apiCert, appsCert, fallbackCert] = await Promise.all([
    certs.leaf('api', { cn: 'api.example.com', ca }),
    certs.leaf('apps', { cn: 'apps', san: ['DNS:*.apps.example.com'], ca }),
    certs.leaf('fallback', { cn: 'fallback.example.com', ca }),
  ]);
});
afterAll(() => certs.cleanup());

/** A backend that terminates TLS with its own certificate and answers `<name>:<first line>`, then closes. */
function tlsBackend(name: string, cert: CertFiles): Promise<TestTlsServer> {
  return startTlsServer(
    { cert: readFileSync(cert.cert), key: readFileSync(cert.key), ALPNProtocols: ['h2', 'http/1.1'] },
    (socket) => {
      socket.once('data', (d) =>
        socket.end(`${name}:${d.toString().trim()}:${socket.alpnProtocol || '-'}\n`),
      );
    },
  );
}

const kit = createTestKit();
afterEach(kit.close);
let proxy: TestProxy | undefined;

function service(name: string): Service {
  return proxy!.runtime.services.get(name) as unknown as Service;
}
const router = () => service('edge').use<SniRouterApi>('sni-router')!;

interface Pools {
  api: TestTlsServer;
  apps1: TestTlsServer;
  apps2: TestTlsServer;
  fallback: TestTlsServer;
}

/** edge routes api.example.com → api, *.apps.example.com → apps (two backends); `extra` goes under sni-router. */
async function startRouted(extra = '', edgeExtra = '', edgePlugins = ''): Promise<Pools> {
  const pools: Pools = {
    api: await tlsBackend('api', apiCert),
    apps1: await tlsBackend('apps-1', appsCert),
    apps2: await tlsBackend('apps-2', appsCert),
    fallback: await tlsBackend('fallback', fallbackCert),
  };
  for (const s of Object.values(pools)) kit.track(s);
  proxy = await kit.proxy(`
services:
  edge:
    listen: 127.0.0.1:0
    retries: 0
${edgeExtra.replace(/^/gm, '    ')}
    plugins:
${edgePlugins.replace(/^/gm, '      ')}
      sni-router:
        timeout: 300ms
        routes:
          api.example.com: api
          "*.apps.example.com": apps
${extra.replace(/^/gm, '        ')}
  api:
    backends: [{ address: ${pools.api.address} }]
  apps:
    backends: [{ address: ${pools.apps1.address} }, { address: ${pools.apps2.address} }]
  fallback:
    backends: [{ address: ${pools.fallback.address} }]
`);
  return pools;
}

/** Opens a raw client to the edge; errors (resets) are kept, not thrown. */
async function rawClient(): Promise<Socket> {
  const { socket } = await kit.connect(proxy!);
  socket.on('error', () => {});
  return socket;
}

/** Everything the socket receives until it closes. */
async function untilClosed(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c) => chunks.push(c));
  if (!socket.closed) await once(socket, 'close');
  return Buffer.concat(chunks);
}

const ALERT = { unrecognizedName: 112, decodeError: 50, handshakeFailure: 40 };
const alert = (minor: number, description: number) => Buffer.from([21, 3, minor, 0, 2, 2, description]);

describe('sni-router: TLS passes through to the backends of the routed pool', () => {
  it('openssl s_client -servername: the backend of the named pool terminates TLS with its own certificate (TLS 1.2 and 1.3)', async () => {
    await startRouted();
    for (const version of ['-tls1_2', '-tls1_3']) {
      const r = await sClient(
        proxy!.address,
        ['-servername', 'api.example.com', '-CAfile', ca.cert, '-verify_return_error', version],
        'hello\n',
      );
      expect(r.stdout).toMatch(/subject=CN\s*=\s*api\.example\.com/);
      // Verified against the CA end to end: the proxy never saw a key, the bytes are the client's.
      expect(r.stdout).toMatch(/Verify return code: 0 \(ok\)/);
      expect(r.stdout).toContain(version === '-tls1_3' ? 'TLSv1.3' : 'TLSv1.2');
      expect(r.stdout).toContain('api:hello:-');
    }
    expect(router().stats.routed).toEqual({ api: 2 });
    expect(service('edge').counters).toMatchObject({ accepted: 2, routed: 2, established: 0, closed: 2 });
    expect(service('api').counters).toMatchObject({ accepted: 0, routedIn: 2, established: 2, closed: 2 });
  });

  it('a one-label wildcard spreads over its pool with the pool balancer; case and a trailing dot do not matter', async () => {
    const pools = await startRouted();
    const names: string[] = [];
    for (const sni of [
      'x.apps.example.com',
      'Y.APPS.example.com',
      'z.apps.example.com.',
      'w.apps.example.com',
    ]) {
      const r = await tlsExchange(proxy!.address, 'hi\n', { servername: sni });
      names.push(r.data.toString().split(':')[0]!);
      expect(r.subjectCN).toBe('apps');
    }
    // Round-robin of the apps pool: both of its backends, two sessions each.
    expect(names.sort()).toEqual(['apps-1', 'apps-1', 'apps-2', 'apps-2']);
    expect(pools.api.sessions).toHaveLength(0);
    expect(router().stats.routed).toEqual({ apps: 4 });
  });

  it('no route and no default: refused with a TLS unrecognized_name alert, counted; deeper names and the bare suffix do not match the wildcard', async () => {
    await startRouted();
    const r = await sClient(proxy!.address, ['-servername', 'a.b.apps.example.com'], 'x\n');
    expect(r.stdout + r.stderr).toMatch(/unrecognized name/i);
    for (const sni of ['apps.example.com', 'unknown.example.com']) {
      await expect(tlsExchange(proxy!.address, 'x', { servername: sni })).rejects.toThrow(
        /unrecognized name/i,
      );
    }
    // No SNI at all (an IP-address connection).
    const none = await sClient(proxy!.address, ['-noservername'], 'x\n');
    expect(none.stdout + none.stderr).toMatch(/unrecognized name/i);
    expect(router().stats.refused['no-route']).toBe(4);
    expect(router().stats.withoutSni).toBe(1);
    expect(service('edge').counters).toMatchObject({ accepted: 4, rejected: 4, routed: 0 });
    for (const name of ['api', 'apps', 'fallback']) expect(service(name).counters.routedIn).toBe(0);
  });

  it('with default: unknown and missing names go to the default pool', async () => {
    await startRouted('default: fallback');
    const unknown = await tlsExchange(proxy!.address, 'a\n', { servername: 'nobody.example.org' });
    expect(unknown.subjectCN).toBe('fallback.example.com');
    const none = await sClient(proxy!.address, ['-noservername'], 'b\n');
    expect(none.stdout).toContain('fallback:b');
    expect(router().stats.routed).toEqual({ fallback: 2 });
  });

  it('ALPN: a top-level protocol route wins over the name; a route object sends some protocols elsewhere', async () => {
    await startRouted(`alpn:
  acme-tls/1: fallback
`);
    const r1 = await tlsExchange(proxy!.address, 'a\n', {
      servername: 'api.example.com',
      ALPNProtocols: ['http/1.1'],
    });
    expect(r1.data.toString()).toBe('api:a:http/1.1\n');
    // Offered first: acme-tls/1 → fallback, whatever the name (the backend then picks http/1.1).
    const r2 = await tlsExchange(proxy!.address, 'b\n', {
      servername: 'api.example.com',
      ALPNProtocols: ['acme-tls/1', 'http/1.1'],
    });
    expect(r2.data.toString()).toBe('fallback:b:http/1.1\n');
    expect(router().stats.routed).toEqual({ api: 1, fallback: 1 });
    expect(service('fallback').counters.routedIn).toBe(1);
  });

  it('ALPN per name: h2 to one pool, other protocols to the name route’s service (Node TLS 1.2 and 1.3 clients)', async () => {
    const pools = {
      api: await tlsBackend('api', apiCert),
      h2: await tlsBackend('api-h2', apiCert),
    };
    for (const s of Object.values(pools)) kit.track(s);
    proxy = await kit.proxy(`
services:
  edge:
    listen: 127.0.0.1:0
    plugins:
      sni-router:
        routes:
          api.example.com: { service: api, alpn: { h2: api-h2 } }
  api:
    backends: [{ address: ${pools.api.address} }]
  api-h2:
    backends: [{ address: ${pools.h2.address} }]
`);
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const h2 = await tlsExchange(proxy!.address, 'a\n', {
        servername: 'api.example.com',
        ALPNProtocols: ['h2', 'http/1.1'],
        maxVersion,
      });
      expect(h2.protocol).toBe(maxVersion);
      expect(h2.data.toString()).toBe('api-h2:a:h2\n');
      const h1 = await tlsExchange(proxy!.address, 'b\n', {
        servername: 'api.example.com',
        ALPNProtocols: ['http/1.1'],
        maxVersion,
      });
      expect(h1.data.toString()).toBe('api:b:http/1.1\n');
    }
  });
});

describe('sni-router: the bytes and the refusals', () => {
  /** A pool backend that records every byte it gets and answers "ok". */
  async function recorder(): Promise<{ server: TestBackend; received: Buffer[] }> {
    const received: Buffer[] = [];
    const server = await kit.backend((socket) => {
      const i = received.push(Buffer.alloc(0)) - 1;
      socket.on('data', (c) => {
        received[i] = Buffer.concat([received[i]!, c]);
        if (received[i]!.toString('latin1').endsWith('END')) socket.end('ok');
      });
    });
    return { server, received };
  }

  async function startRaw(extra = ''): Promise<{ received: Buffer[] }> {
    const { server, received } = await recorder();
    proxy = await kit.proxy(`
services:
  edge:
    listen: 127.0.0.1:0
    plugins:
      sni-router:
        timeout: 300ms
        routes: { raw.example.com: raw }
${extra.replace(/^/gm, '        ')}
  raw:
    backends: [{ address: ${server.address} }]
`);
    return { received };
  }

  it('a hand-built ClientHello split over TCP segments and TLS records reaches the backend byte for byte, followed by what comes next', async () => {
    const { received } = await startRaw();
    const hello = clientHello({ sni: 'raw.example.com', alpn: ['h2'], padTo: 600 }, 200);
    const socket = await rawClient();
    socket.setNoDelay(true);
    const cuts = [0, 3, 7, 150, 420, hello.length];
    for (let i = 1; i < cuts.length; i++) {
      socket.write(hello.subarray(cuts[i - 1], cuts[i]));
      await new Promise((r) => setTimeout(r, 30));
    }
    socket.write('END');
    expect((await untilClosed(socket)).toString()).toBe('ok');
    expect(received).toHaveLength(1);
    expect(received[0]!.equals(Buffer.concat([hello, Buffer.from('END')]))).toBe(true);
    expect(service('edge').counters.peekTimeouts).toBe(0);
  });

  it('malformed hello: a decode_error alert, closed, counted; nothing reaches a backend', async () => {
    const { received } = await startRaw();
    const bad = clientHello({ sni: 'raw.example.com' });
    bad.writeUInt16BE(3, 5 + 4 + 2 + 32 + 1 + 32); // odd cipher suites length
    const socket = await rawClient();
    socket.write(bad);
    expect(await untilClosed(socket)).toEqual(alert(1, ALERT.decodeError));
    expect(router().stats.refused['tls-malformed']).toBe(1);
    expect(received).toHaveLength(0);
    expect(service('edge').counters).toMatchObject({ rejected: 1, routed: 0 });
  });

  it('oversized hello: refused from its length alone, before the bytes arrive (handshake_failure alert)', async () => {
    const { received } = await startRaw('max_bytes: 1024');
    const big = clientHello({ sni: 'raw.example.com', padTo: 3000 }, undefined);
    const socket = await rawClient();
    socket.write(big.subarray(0, 9)); // record header + handshake header
    expect(await untilClosed(socket)).toEqual(alert(1, ALERT.handshakeFailure));
    expect(router().stats.refused['tls-too-large']).toBe(1);
    expect(received).toHaveLength(0);
  });

  it('not TLS (a plain HTTP request): closed without an alert, counted', async () => {
    await startRaw();
    const socket = await rawClient();
    socket.write('GET / HTTP/1.1\r\nHost: raw.example.com\r\n\r\n');
    expect((await untilClosed(socket)).length).toBe(0);
    expect(router().stats.refused['not-tls']).toBe(1);
  });

  it('a client that sends nothing, or half a hello, is closed after the timeout (peek-timeout, counted)', async () => {
    await startRaw();
    const reasons: Array<[string | null, string | null]> = [];
    service('edge').hooks.closed.tap('test', (s: Session) => {
      reasons.push([s.closeReason, s.closeDetail]);
    });
    const silent = await rawClient();
    const half = await rawClient();
    half.write(clientHello({ sni: 'raw.example.com' }).subarray(0, 40));
    const t0 = Date.now();
    await Promise.all([untilClosed(silent), untilClosed(half)]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    await waitFor(() => reasons.length === 2, 3000, 'both sessions released');
    expect(reasons).toEqual([
      ['peek-timeout', 'sni-router'],
      ['peek-timeout', 'sni-router'],
    ]);
    expect(service('edge').counters.peekTimeouts).toBe(2);
  });

  it('a client that half-closes mid-hello is closed as client-closed; the other sessions are untouched', async () => {
    const { received } = await startRaw();
    const good = await rawClient();
    const hello = clientHello({ sni: 'raw.example.com' });
    good.write(hello);
    const quitter = await rawClient();
    quitter.end(hello.subarray(0, 20));
    await untilClosed(quitter);
    good.write('END');
    expect((await untilClosed(good)).toString()).toBe('ok');
    expect(received).toHaveLength(1);
  });
});

describe('sni-router: the pool’s resilience applies to routed sessions', () => {
  it('the pool’s retries and connect failures: a dead backend among live ones costs clients nothing (edge retries: 0)', async () => {
    const live = await tlsBackend('live', apiCert);
    kit.track(live);
    const dead = await freePort();
    proxy = await kit.proxy(`
services:
  edge:
    listen: 127.0.0.1:0
    retries: 0
    plugins:
      sni-router: { routes: { api.example.com: api } }
  api:
    retries: 2
    connect_timeout: 1s
    backends: [{ address: 127.0.0.1:${dead} }, { address: ${live.address} }]
`);
    for (let i = 0; i < 4; i++) {
      const r = await tlsExchange(proxy.address, `${i}\n`, { servername: 'api.example.com' });
      expect(r.data.toString()).toBe(`live:${i}:-\n`);
    }
    expect(service('api').counters.connectFailures).toBe(2);
    expect(service('api').counters.retries).toBe(2);
    expect(service('edge').counters).toMatchObject({ connectFailures: 0, retries: 0 });
  });

  it('health checks of the pool take a down backend out of routed traffic; the circuit breaker opens on routed failures', async () => {
    const live = await tlsBackend('live', apiCert);
    const flaky = await tlsBackend('flaky', apiCert);
    kit.track(live);
    kit.track(flaky);
    const dead = await freePort();
    proxy = await kit.proxy(`
services:
  edge:
    listen: 127.0.0.1:0
    plugins:
      sni-router: { routes: { hc.example.com: checked, cb.example.com: broken } }
  checked:
    backends: [{ address: ${flaky.address} }, { address: ${live.address} }]
    plugins:
      health-check: { interval: 100ms, jitter: 0, rise: 1, fall: 1 }
  broken:
    retries: 1
    backends: [{ address: 127.0.0.1:${dead} }, { address: ${live.address} }]
    plugins:
      circuit-breaker: { consecutive_failures: 1, base_ejection_time: 1m }
`);
    const checked = service('checked');
    const flakyBackend = checked.backends.get(flaky.address)!;
    await flaky.close();
    await waitFor(
      () => flakyBackend.status['health-check'] === 'down',
      3000,
      'the health check to mark it down',
    );
    for (let i = 0; i < 4; i++) {
      const r = await tlsExchange(proxy.address, 'x\n', { servername: 'hc.example.com' });
      expect(r.data.toString()).toBe('live:x:-\n');
    }
    expect(checked.counters.connectFailures).toBe(0);

    const broken = service('broken');
    const deadBackend = broken.backends.get(`127.0.0.1:${dead}`)!;
    for (let i = 0; i < 4; i++) {
      const r = await tlsExchange(proxy.address, 'y\n', { servername: 'cb.example.com' });
      expect(r.data.toString()).toBe('live:y:-\n');
    }
    expect(deadBackend.status['circuit-breaker']).toBe('open');
    // One failure opened it; the later sessions never dialled it.
    expect(deadBackend.connectFailures).toBe(1);
    expect(broken.counters.routedIn).toBe(4);
  });
});

describe('sni-router: admin API, metrics and access log', () => {
  it('a routed session is listed and counted in both services; metrics show routed and routed_in; force-disconnect closes it once', async () => {
    const held: Socket[] = [];
    const backend = await kit.backend((s) => {
      held.push(s);
    });
    proxy = await kit.proxy(`
services:
  edge:
    listen: 127.0.0.1:0
    plugins:
      sni-router: { routes: { api.example.com: api } }
  api:
    backends: [{ address: ${backend.address} }]
plugins:
  admin-api: { listen: 127.0.0.1:0 }
  metrics: {}
  force-disconnect: {}
`);
    const { adminClient } = await import('../admin-api/test-client.js');
    const api = adminClient(proxy.runtime as never);
    const client = await rawClient();
    client.write(clientHello({ sni: 'api.example.com' }));
    await waitFor(() => held.length === 1, 3000, 'the backend connection');
    const refused = await rawClient();
    refused.write(clientHello({ sni: 'nobody.example.com' }));
    await untilClosed(refused);

    const edge = (await api('GET', '/sessions?service=edge')).body;
    const pool = (await api('GET', '/sessions?service=api')).body;
    expect(edge.count).toBe(1);
    expect(pool.count).toBe(1);
    expect(edge.sessions[0]).toMatchObject({
      service: 'edge',
      pool: 'api',
      sni: 'api.example.com',
      connected: true,
    });
    expect(pool.sessions[0].id).toBe(edge.sessions[0].id);

    const text = (await api('GET', '/metrics')).text;
    expect(text).toMatch(/^switchyard_service_routed_total\{service="edge"\} 1$/m);
    expect(text).toMatch(/^switchyard_service_routed_in_total\{service="api"\} 1$/m);
    expect(text).toMatch(/^switchyard_service_sessions_active\{service="edge"\} 1$/m);
    expect(text).toMatch(/^switchyard_service_sessions_active\{service="api"\} 1$/m);
    expect(text).toMatch(/^switchyard_service_accepted_total\{service="api"\} 0$/m);
    expect(text).toMatch(/^switchyard_service_established_total\{service="api"\} 1$/m);
    expect(text).toMatch(/^switchyard_service_rejections_total\{service="edge",reason="no-route"\} 1$/m);
    expect(text).toMatch(
      new RegExp(
        `^switchyard_backend_sessions_active\\{service="api",backend="${backend.address}"\\} 1$`,
        'm',
      ),
    );

    // The pool's backend is reported under the pool only, not under the service that routed.
    expect(text).not.toMatch(/^switchyard_backend_\w+\{service="edge"/m);

    // force-disconnect closes it once, though it is in two tables.
    const off = await api('POST', '/force_disconnect', { json: { enabled: true } });
    expect(off.body.closed).toBe(1);
    await untilClosed(client);
    await api('POST', '/force_disconnect', { json: { enabled: false } });
    for (const s of held) s.end();
    await waitFor(() => service('api').sessionCount === 0 && service('edge').sessionCount === 0);
    expect(service('api').counters.closed).toBe(1);
    expect(service('edge').counters.closed).toBe(2);
  });
});

describe('sni-router: config', () => {
  /** The issues loading `yaml` reports (line, col, path, message). */
  async function issues(yaml: string) {
    try {
      await loadConfig(yaml);
    } catch (err) {
      return (
        err as { issues: Array<{ line: number; col: number; path: string; message: string }> }
      ).issues.map(({ line, col, path, message }) => ({ line, col, path, message }));
    }
    throw new Error('the config loaded');
  }

  it('a route to a service that does not exist is an error at the route’s line and column', async () => {
    const found = await issues(`services:
  edge:
    listen: 127.0.0.1:0
    plugins:
      sni-router:
        routes:
          api.example.com: api
          "*.apps.example.com": aps
        alpn: { acme-tls/1: acme }
        default: nowhere
  api:
    backends: []
`);
    expect(found).toEqual([
      {
        line: 8,
        col: 33,
        path: 'services.edge.plugins.sni-router.routes["*.apps.example.com"]',
        message: 'no service named "aps" (services: edge, api)',
      },
      {
        line: 9,
        col: 29,
        path: 'services.edge.plugins.sni-router.alpn["acme-tls/1"]',
        message: expect.stringMatching(/"acme"/),
      },
      {
        line: 10,
        col: 18,
        path: 'services.edge.plugins.sni-router.default',
        message: expect.stringMatching(/"nowhere"/),
      },
    ]);
  });

  it('names that are not host names or one-label wildcards, and two spellings of one name', async () => {
    const found = await issues(`services:
  edge:
    listen: 127.0.0.1:0
    plugins:
      sni-router:
        routes:
          "api.*.com": api
          "**.example.com": api
          "bad name.com": api
          API.example.com: api
          api.example.com.: api
  api: {}
`);
    expect(found.map((i) => [i.line, i.message])).toEqual([
      [7, expect.stringMatching(/whole first label/)],
      [8, expect.stringMatching(/whole first label/)],
      [9, expect.stringMatching(/not a valid host name/)],
      [11, '"api.example.com." is the same name as "API.example.com"'],
    ]);
  });

  it('a router in a service that does not listen, a router with nothing to route, and no service listening', async () => {
    const found = await issues(`services:
  edge:
    plugins:
      sni-router: { routes: {} }
  api: {}
`);
    expect(found.map((i) => [i.path, i.message])).toEqual([
      ['services.edge.plugins.sni-router', 'nothing to route: give routes, alpn or default'],
      ['services.edge.plugins.sni-router', expect.stringMatching(/has no listen: a pool never accepts/)],
      ['services', expect.stringMatching(/no service has "listen"/)],
    ]);
  });

  it('after tls-listener it refuses to start: TLS would be ended before the peek stage', async () => {
    await expect(
      kit.proxy(`services:
  edge:
    listen: 127.0.0.1:0
    plugins:
      tls-listener: { cert: ${JSON.stringify(apiCert.cert)}, key: ${JSON.stringify(apiCert.key)}, watch: false }
      sni-router: { default: api }
  api: {}
`),
    ).rejects.toThrow(/cannot follow tls-listener/);
  });
});

describe('sni-router: reload and access log', () => {
  it('reconfigure swaps the routes in place; a route to a service this process does not run is refused', async () => {
    await startRouted();
    const { default: plugin } = await import('./index.js');
    const edge = service('edge');
    expect(router().match('api.example.com')).toBe('api');
    plugin.reconfigure!(edge, {
      routes: { 'api.example.com': 'fallback' },
      timeout: 300,
      max_bytes: 16_384,
    });
    const r = await tlsExchange(proxy!.address, 'z\n', { servername: 'api.example.com' });
    expect(r.data.toString()).toBe('fallback:z:-\n');
    expect(() =>
      plugin.reconfigure!(edge, { routes: { 'api.example.com': 'later' }, timeout: 300, max_bytes: 16_384 }),
    ).toThrow(/does not run \(later\)/);
    expect(router().match('api.example.com')).toBe('fallback');
  });

  it('access-log in the listening service: one line per session with its pool and server name', async () => {
    const { mkdtemp, readFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'sni-log-'));
    try {
      await startRouted('', '', `access-log: { file: ${JSON.stringify(join(dir, 'a.log'))} }`);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    await tlsExchange(proxy!.address, 'q\n', { servername: 'x.apps.example.com' });
    await expect(tlsExchange(proxy!.address, 'q\n', { servername: 'nope.example.com' })).rejects.toThrow();
    await proxy!.stop();
    proxy = undefined;
    const lines = (await readFile(join(dir, 'a.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    await rm(dir, { recursive: true, force: true });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      service: 'edge',
      pool: 'apps',
      sni: 'x.apps.example.com',
      reason: 'client-closed',
    });
    expect(lines[1]).toMatchObject({
      service: 'edge',
      pool: 'edge',
      backend: null,
      sni: 'nope.example.com',
      reason: 'rejected',
      detail: 'no-route',
    });
  });
});
