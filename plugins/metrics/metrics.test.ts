import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTestKit, exchange, type TestBackend, type TestProxy, waitFor } from '../../testing/index.js';
import { type Family, parseExposition, sampleValue } from './exposition.test-support.js';

interface AdminApi {
  address(): string | null;
}

const SWITCHYARD_LABELS = new Set([
  'service',
  'backend',
  'reason',
  'state',
  'source',
  'status',
  'le',
  'metric',
  'listener',
]);

describe('metrics', () => {
  const kit = createTestKit();
  let proxy: TestProxy;

  afterEach(async () => {
    vi.restoreAllMocks();
    await kit.close();
  });

  function config(backends: string[], options = '{}', extra = ''): string {
    return `
listen: 127.0.0.1:0
connect_timeout: 2s
retries: 0
${extra}
backends:
${backends.map((b) => `  - address: ${b}`).join('\n')}
plugins:
  admin-api: { listen: "127.0.0.1:0" }
  metrics: ${options}
`;
  }

  function adminUrl(): string {
    const address = proxy.runtime.use<AdminApi>('admin-api')?.address();
    if (!address) throw new Error('admin-api is not listening');
    return `http://${address}`;
  }

  async function scrapeText(
    path = '/metrics',
  ): Promise<{ status: number; type: string | null; text: string }> {
    const res = await fetch(`${adminUrl()}${path}`);
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
  }

  async function scrape(): Promise<Map<string, Family>> {
    const { status, text } = await scrapeText();
    expect(status).toBe(200);
    return parseExposition(text);
  }

  function echoes(n: number): Promise<TestBackend[]> {
    return Promise.all(Array.from({ length: n }, () => kit.echo()));
  }

  const closedCount = (n: number) => () => proxy.service.counters.closed >= n;

  it('counts sessions, bytes, connect times and close reasons of real sessions exactly', async () => {
    const [a, b] = await echoes(2);
    proxy = await kit.proxy(config([a!.address, b!.address]));
    const payload = 'x'.repeat(100);
    for (let i = 0; i < 4; i++) expect((await exchange(proxy.address, payload)).toString()).toBe(payload);
    await waitFor(closedCount(4), 5000, '4 closed sessions');

    const m = await scrape();
    const svc = { service: 'default' };
    for (const backend of [a!.address, b!.address]) {
      const l = { service: 'default', backend };
      expect(sampleValue(m, 'switchyard_backend_sessions_total', l)).toBe(2);
      expect(sampleValue(m, 'switchyard_backend_sessions_active', l)).toBe(0);
      expect(sampleValue(m, 'switchyard_backend_bytes_in_total', l)).toBe(200);
      expect(sampleValue(m, 'switchyard_backend_bytes_out_total', l)).toBe(200);
      expect(sampleValue(m, 'switchyard_backend_connect_failures_total', l)).toBe(0);
      expect(sampleValue(m, 'switchyard_backend_weight', l)).toBe(1);
      expect(sampleValue(m, 'switchyard_backend_state', { ...l, state: 'up' })).toBe(1);
      expect(sampleValue(m, 'switchyard_backend_state', { ...l, state: 'draining' })).toBe(0);
      expect(sampleValue(m, 'switchyard_backend_connect_seconds_count', l)).toBe(2);
      expect(sampleValue(m, 'switchyard_backend_connect_seconds_bucket', { ...l, le: '+Inf' })).toBe(2);
      expect(sampleValue(m, 'switchyard_sessions_closed_total', { ...l, reason: 'client-closed' })).toBe(2);
      // Per backend, a reason appears with its first session.
      expect(
        sampleValue(m, 'switchyard_sessions_closed_total', { ...l, reason: 'backend-reset' }),
      ).toBeUndefined();
    }
    expect(sampleValue(m, 'switchyard_service_accepted_total', svc)).toBe(4);
    expect(sampleValue(m, 'switchyard_service_established_total', svc)).toBe(4);
    expect(sampleValue(m, 'switchyard_service_closed_total', svc)).toBe(4);
    expect(sampleValue(m, 'switchyard_service_sessions_active', svc)).toBe(0);
    expect(sampleValue(m, 'switchyard_service_rejected_total', svc)).toBe(0);
    expect(sampleValue(m, 'switchyard_service_connect_failures_total', svc)).toBe(0);
    expect(sampleValue(m, 'switchyard_service_retries_total', svc)).toBe(0);
    expect(
      sampleValue(m, 'switchyard_sessions_closed_total', { ...svc, backend: '', reason: 'client-closed' }),
    ).toBe(0);
    // Loopback connects take well under a second: every observation is in the 1s bucket.
    expect(
      sampleValue(m, 'switchyard_backend_connect_seconds_bucket', {
        service: 'default',
        backend: a!.address,
        le: '1',
      }),
    ).toBe(2);
    // No backend-limits plugin: no queue series.
    expect(sampleValue(m, 'switchyard_service_queue_length', svc)).toBeUndefined();
  });

  it('includes the bytes of open sessions, and the totals stay put when they close', async () => {
    const [a] = await echoes(1);
    proxy = await kit.proxy(config([a!.address]));
    const client = await kit.connect(proxy);
    await client.send(Buffer.alloc(1000, 1));
    await client.read(1000);

    const l = { service: 'default', backend: a!.address };
    let m = await scrape();
    expect(sampleValue(m, 'switchyard_backend_bytes_in_total', l)).toBe(1000);
    expect(sampleValue(m, 'switchyard_backend_bytes_out_total', l)).toBe(1000);
    expect(sampleValue(m, 'switchyard_backend_sessions_active', l)).toBe(1);
    expect(sampleValue(m, 'switchyard_service_sessions_active', { service: 'default' })).toBe(1);

    await client.send(Buffer.alloc(500, 2));
    await client.read(500);
    m = await scrape();
    expect(sampleValue(m, 'switchyard_backend_bytes_in_total', l)).toBe(1500);
    expect(sampleValue(m, 'switchyard_backend_bytes_out_total', l)).toBe(1500);

    await client.end();
    await waitFor(closedCount(1), 5000, 'the session to close');
    m = await scrape();
    expect(sampleValue(m, 'switchyard_backend_bytes_in_total', l)).toBe(1500);
    expect(sampleValue(m, 'switchyard_backend_bytes_out_total', l)).toBe(1500);
    expect(sampleValue(m, 'switchyard_backend_sessions_active', l)).toBe(0);
    expect(sampleValue(m, 'switchyard_sessions_closed_total', { ...l, reason: 'client-closed' })).toBe(1);
  });

  it('counts connect failures against a refusing port', async () => {
    const dead = (await kit.refusing()).address;
    proxy = await kit.proxy(config([dead]));
    // No payload: the proxy never reads from a client it cannot connect, so data sent would turn its close into a reset.
    expect((await exchange(proxy.address)).length).toBe(0);
    await waitFor(closedCount(1), 5000, 'the refused session to close');

    const m = await scrape();
    const l = { service: 'default', backend: dead };
    expect(sampleValue(m, 'switchyard_backend_connect_failures_total', l)).toBe(1);
    expect(sampleValue(m, 'switchyard_backend_sessions_total', l)).toBe(0);
    expect(sampleValue(m, 'switchyard_backend_connect_seconds_count', l)).toBe(0);
    expect(sampleValue(m, 'switchyard_service_connect_failures_total', { service: 'default' })).toBe(1);
    expect(sampleValue(m, 'switchyard_service_retries_total', { service: 'default' })).toBe(0);
    expect(
      sampleValue(m, 'switchyard_sessions_closed_total', {
        service: 'default',
        backend: '',
        reason: 'connect-failed',
      }),
    ).toBe(1);
    expect(
      sampleValue(m, 'switchyard_sessions_closed_total', { ...l, reason: 'connect-failed' }),
    ).toBeUndefined();
  });

  it('counts retries on another backend after a refused connect', async () => {
    const [good] = await echoes(1);
    const dead = (await kit.refusing()).address;
    proxy = await kit.proxy(config([dead, good!.address]).replace('retries: 0', 'retries: 1'));
    for (let i = 0; i < 4; i++) expect((await exchange(proxy.address, 'ok')).toString()).toBe('ok');
    await waitFor(closedCount(4), 5000, '4 closed sessions');

    const m = await scrape();
    // Round robin alternates: sessions 1 and 3 try the dead backend first, then retry.
    expect(
      sampleValue(m, 'switchyard_backend_connect_failures_total', { service: 'default', backend: dead }),
    ).toBe(2);
    expect(sampleValue(m, 'switchyard_service_retries_total', { service: 'default' })).toBe(2);
    expect(sampleValue(m, 'switchyard_service_connect_failures_total', { service: 'default' })).toBe(2);
    expect(
      sampleValue(m, 'switchyard_backend_sessions_total', { service: 'default', backend: good!.address }),
    ).toBe(4);
    expect(
      sampleValue(m, 'switchyard_sessions_closed_total', {
        service: 'default',
        backend: good!.address,
        reason: 'client-closed',
      }),
    ).toBe(4);
    expect(proxy.service.counters.retries).toBe(2);
  });

  it('counts refusals by reason, with a bounded number of reasons', async () => {
    const [a] = await echoes(1);
    proxy = await kit.proxy(config([a!.address]));
    const reasons = ['deny-a', 'deny-a', 'deny-a', 'deny-b', 'deny-b'];
    for (let i = 0; i < 40; i++) reasons.push(`generated-${i}`);
    let next = 0;
    proxy.service.hooks.accept.tap('test', () => ({ reason: reasons[next++]! }));
    for (let i = 0; i < reasons.length; i++) await exchange(proxy.address);
    await waitFor(closedCount(reasons.length), 10_000, 'every refused session to close');

    const m = await scrape();
    const svc = { service: 'default' };
    expect(sampleValue(m, 'switchyard_service_rejected_total', svc)).toBe(45);
    expect(sampleValue(m, 'switchyard_service_rejections_total', { ...svc, reason: 'deny-a' })).toBe(3);
    expect(sampleValue(m, 'switchyard_service_rejections_total', { ...svc, reason: 'deny-b' })).toBe(2);
    expect(sampleValue(m, 'switchyard_service_rejections_total', { ...svc, reason: 'generated-29' })).toBe(1);
    // 2 + 30 distinct reasons fill the 32 slots; the last 10 are counted as "other".
    expect(
      sampleValue(m, 'switchyard_service_rejections_total', { ...svc, reason: 'generated-30' }),
    ).toBeUndefined();
    expect(sampleValue(m, 'switchyard_service_rejections_total', { ...svc, reason: 'other' })).toBe(10);
    expect(m.get('switchyard_service_rejections_total')!.samples).toHaveLength(33);
    expect(
      sampleValue(m, 'switchyard_sessions_closed_total', { ...svc, backend: '', reason: 'rejected' }),
    ).toBe(45);
  });

  it('reports registry state and plugin statuses; a removed backend stays while its sessions drain', async () => {
    const [a, b] = await echoes(2);
    proxy = await kit.proxy(config([a!.address, b!.address]));
    const service = proxy.service;
    const backendA = service.backends.get(a!.address)!;
    service.setBackendStatus(backendA, 'health-check', 'down');
    service.setBackendStatus(backendA, 'circuit-breaker', 'open');
    service.backends.setDraining(b!.address, true);
    service.backends.setWeight(a!.address, 7);

    let m = await scrape();
    const la = { service: 'default', backend: a!.address };
    const lb = { service: 'default', backend: b!.address };
    expect(
      sampleValue(m, 'switchyard_backend_status', { ...la, source: 'health-check', status: 'down' }),
    ).toBe(1);
    expect(
      sampleValue(m, 'switchyard_backend_status', { ...la, source: 'circuit-breaker', status: 'open' }),
    ).toBe(1);
    expect(m.get('switchyard_backend_status')!.samples).toHaveLength(2);
    expect(sampleValue(m, 'switchyard_backend_state', { ...lb, state: 'draining' })).toBe(1);
    expect(sampleValue(m, 'switchyard_backend_state', { ...lb, state: 'up' })).toBe(0);
    expect(sampleValue(m, 'switchyard_backend_weight', la)).toBe(7);

    // A status that changes replaces its series (the old one disappears).
    service.setBackendStatus(backendA, 'health-check', 'up');
    m = await scrape();
    expect(
      sampleValue(m, 'switchyard_backend_status', { ...la, source: 'health-check', status: 'down' }),
    ).toBeUndefined();
    expect(sampleValue(m, 'switchyard_backend_status', { ...la, source: 'health-check', status: 'up' })).toBe(
      1,
    );

    // b is draining, so the session goes to a; then a is removed while the session runs.
    const client = await kit.connect(proxy);
    await client.send('hi');
    await client.read(2);
    service.backends.remove(a!.address, { drainTimeout: 60_000 });
    m = await scrape();
    expect(sampleValue(m, 'switchyard_backend_state', { ...la, state: 'removed' })).toBe(1);
    expect(sampleValue(m, 'switchyard_backend_sessions_active', la)).toBe(1);
    expect(sampleValue(m, 'switchyard_backend_bytes_in_total', la)).toBe(2);

    await client.end();
    await waitFor(closedCount(1), 5000, 'the session to close');
    m = await scrape();
    expect(sampleValue(m, 'switchyard_backend_sessions_active', la)).toBeUndefined();
    expect(sampleValue(m, 'switchyard_backend_state', { ...lb, state: 'draining' })).toBe(1);
  });

  it('reports the queue length of backend-limits', async () => {
    const [a] = await echoes(1);
    proxy = await kit.proxy(
      config([a!.address]).replace(
        'metrics: {}',
        'metrics: {}\n  backend-limits: { max_connections: 1, overflow: queue, queue_timeout: 30s }',
      ),
    );
    const svc = { service: 'default' };
    const first = await kit.connect(proxy);
    await first.send('1');
    await first.read(1);
    const second = await kit.connect(proxy);
    await waitFor(() => proxy.service.counters.accepted === 2, 5000, 'the second session');
    await second.send('2');

    let m = await scrape();
    expect(sampleValue(m, 'switchyard_service_queue_length', svc)).toBe(1);
    expect(sampleValue(m, 'switchyard_backend_sessions_active', { ...svc, backend: a!.address })).toBe(1);

    await first.end();
    expect((await second.read(1)).toString()).toBe('2');
    m = await scrape();
    expect(sampleValue(m, 'switchyard_service_queue_length', svc)).toBe(0);
  });

  it('keeps labels bounded: more clients add no series, no label names a client', async () => {
    const [a] = await echoes(1);
    const dead = (await kit.refusing()).address;
    proxy = await kit.proxy(config([a!.address, dead]).replace('retries: 0', 'retries: 1'));
    await exchange(proxy.address, 'x');
    await waitFor(closedCount(1), 5000, 'one session');
    const count = (m: Map<string, Family>) =>
      [...m.values()]
        .filter((f) => f.name.startsWith('switchyard_'))
        .reduce((n, f) => n + f.samples.length, 0);
    const before = count(await scrape());

    const ports: number[] = [];
    for (let i = 0; i < 20; i++) {
      const c = await kit.connect(proxy);
      ports.push(c.localPort);
      await c.end('y');
    }
    await waitFor(closedCount(21), 10_000, '21 sessions');
    const m = await scrape();
    expect(count(m)).toBe(before);

    const allowedBackends = new Set(['', a!.address, dead]);
    for (const f of m.values()) {
      if (!f.name.startsWith('switchyard_')) continue;
      for (const s of f.samples) {
        for (const [name, value] of Object.entries(s.labels)) {
          expect(SWITCHYARD_LABELS.has(name), `label ${name} of ${s.name}`).toBe(true);
          if (name === 'backend') expect(allowedBackends.has(value), `backend label ${value}`).toBe(true);
          for (const port of ports) expect(value.endsWith(`:${port}`), `${s.name} ${value}`).toBe(false);
        }
      }
    }
  });

  it('serves text that parses as the Prometheus format, with process metrics', async () => {
    const [a] = await echoes(1);
    proxy = await kit.proxy(config([a!.address, (await kit.refusing()).address]));
    proxy.service.setBackendStatus(proxy.service.backends.get(a!.address)!, 'health "check"\\', 'up\nnow');
    await exchange(proxy.address, 'abc');
    await exchange(proxy.address);
    await waitFor(closedCount(2), 5000, 'two sessions');
    const { status, type, text } = await scrapeText();
    expect(status).toBe(200);
    expect(type).toBe('text/plain; version=0.0.4; charset=utf-8');
    const m = parseExposition(text);
    // Escaped label values come back intact.
    expect(
      sampleValue(m, 'switchyard_backend_status', {
        service: 'default',
        backend: a!.address,
        source: 'health "check"\\',
        status: 'up\nnow',
      }),
    ).toBe(1);
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_start_time_seconds',
      'nodejs_heap_size_used_bytes',
    ])
      expect(m.get(name)?.samples.length, name).toBeGreaterThan(0);
    for (const f of m.values()) if (f.name.startsWith('switchyard_')) expect(f.help, f.name).not.toBe('');
    expect(m.get('switchyard_backend_connect_seconds')!.type).toBe('histogram');
    expect(m.get('switchyard_backend_sessions_total')!.type).toBe('counter');
    expect(m.get('switchyard_backend_sessions_active')!.type).toBe('gauge');
  });

  it('answers even when process collectors throw (EMFILE at the fd limit), and counts the failure', async () => {
    const [a] = await echoes(1);
    proxy = await kit.proxy(config([a!.address]));
    const emfile = () => {
      const err: NodeJS.ErrnoException = new Error('EMFILE: too many open files, uv_resident_set_memory');
      err.code = 'EMFILE';
      throw err;
    };
    vi.spyOn(process, 'memoryUsage').mockImplementation(emfile as () => NodeJS.MemoryUsage);
    vi.spyOn(process, 'cpuUsage').mockImplementation(emfile as () => NodeJS.CpuUsage);
    await exchange(proxy.address, 'abc');
    await waitFor(closedCount(1), 5000, 'one session');

    let m = await scrape();
    expect(
      sampleValue(m, 'switchyard_backend_sessions_total', { service: 'default', backend: a!.address }),
    ).toBe(1);
    expect(m.has('process_cpu_user_seconds_total')).toBe(false);
    expect(
      sampleValue(m, 'switchyard_metrics_collect_errors_total', { metric: 'process_cpu_user_seconds_total' }),
    ).toBe(1);
    // prom-client's memory gauges catch the error themselves (keeping their last value).
    expect(m.has('nodejs_heap_size_used_bytes')).toBe(true);

    vi.restoreAllMocks();
    m = await scrape();
    expect(m.get('process_cpu_user_seconds_total')!.samples.length).toBe(1);
    expect(
      sampleValue(m, 'switchyard_metrics_collect_errors_total', { metric: 'process_cpu_user_seconds_total' }),
    ).toBe(1);
  });

  it('labels each service, and honours path, process_metrics and connect_time_buckets', async () => {
    const [a, b] = await echoes(2);
    proxy = await kit.proxy(`
services:
  web:
    listen: 127.0.0.1:0
    backends: [{ address: "${a!.address}" }]
  db:
    listen: 127.0.0.1:0
    backends: [{ address: "${b!.address}" }]
plugins:
  admin-api: { listen: "127.0.0.1:0" }
  metrics: { path: /prom, process_metrics: false, connect_time_buckets: [0.001, 10] }
`);
    const db = proxy.runtime.services.get('db')!;
    await exchange(proxy.address, 'web!');
    await exchange(db.addresses()[0]!, 'db');
    await waitFor(
      () => proxy.service.counters.closed === 1 && db.counters.closed === 1,
      5000,
      'both sessions',
    );

    expect((await scrapeText('/metrics')).status).toBe(404);
    const { status, text } = await scrapeText('/prom');
    expect(status).toBe(200);
    const m = parseExposition(text);
    expect(sampleValue(m, 'switchyard_backend_bytes_in_total', { service: 'web', backend: a!.address })).toBe(
      4,
    );
    expect(sampleValue(m, 'switchyard_backend_bytes_in_total', { service: 'db', backend: b!.address })).toBe(
      2,
    );
    expect(sampleValue(m, 'switchyard_service_accepted_total', { service: 'web' })).toBe(1);
    expect(sampleValue(m, 'switchyard_service_accepted_total', { service: 'db' })).toBe(1);
    const les = m
      .get('switchyard_backend_connect_seconds')!
      .samples.filter((s) => s.name.endsWith('_bucket') && s.labels.service === 'web')
      .map((s) => s.labels.le);
    expect(les).toEqual(['0.001', '10', '+Inf']);
    expect([...m.keys()].filter((n) => n.startsWith('process_') || n.startsWith('nodejs_'))).toEqual([]);
  });

  it('rejects bad options', async () => {
    await expect(kit.proxy(config(['127.0.0.1:1'], '{ connect_time_buckets: [1, 0.5] }'))).rejects.toThrow(
      /strictly increasing/,
    );
    await expect(kit.proxy(config(['127.0.0.1:1'], '{ path: metrics }'))).rejects.toThrow(/path/);
    await expect(kit.proxy(config(['127.0.0.1:1'], '{ interval: 5 }'))).rejects.toThrow(/interval/);
  });
});

describe('the exposition reader used by these tests', () => {
  it('rejects what Prometheus would reject', () => {
    const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 3\n';
    expect(parseExposition(ok).get('a_total')!.samples[0]!.value).toBe(3);
    const bad = [
      'a_total 3\n', // no HELP/TYPE
      '# TYPE a_total counter\na_total{x="1} 3\n', // unterminated
      '# TYPE a_total counter\na_total{x="1",x="2"} 3\n', // duplicate label
      '# TYPE a_total counter\na_total -1\n', // negative counter
      '# TYPE a_total counter\na_total 1\na_total 2\n', // duplicate series
      '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="y"} 2\n', // not contiguous
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', // not cumulative
      '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n', // count mismatch
      '# TYPE a gauge\na 1', // no final newline
    ];
    for (const text of bad) expect(() => parseExposition(text), text).toThrow();
  });
});
