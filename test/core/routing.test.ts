import { afterEach, describe, expect, it } from 'vitest';
import type { Service } from '../../core/service.js';
import type { Session } from '../../core/types.js';
import {
  createTestKit,
  type TestBackend,
  type TestClient,
  type TestProxy,
  waitFor,
} from '../../testing/index.js';

/**
 * The routing contract: a `route` tap in the listening service hands a session to another
 * service's pool, whose hooks, balancer and settings then apply; both services count it.
 */

const kit = createTestKit();
afterEach(kit.close);
let proxy: TestProxy | undefined;

const svc = (name: string) => proxy!.runtime.services.get(name) as unknown as Service;

function client(): Promise<TestClient> {
  return kit.connect(proxy!);
}

async function closed(c: TestClient): Promise<void> {
  await c.closed();
}

/** edge (own backend "edge-own") and pool "api" (two backends), edge routing by the first byte the client sends. */
async function startPair(
  edgeExtra = '',
  apiExtra = '',
): Promise<{ own: TestBackend; a: TestBackend; b: TestBackend }> {
  const own = await kit.named('edge-own');
  const a = await kit.named('api-a');
  const b = await kit.named('api-b');
  proxy = await kit.proxy(`
services:
  edge:
    listen: 127.0.0.1:0
    backends: [{ address: ${own.address} }]
${edgeExtra.replace(/^/gm, '    ')}
  api:
    backends: [{ address: ${a.address} }, { address: ${b.address} }]
${apiExtra.replace(/^/gm, '    ')}
`);
  return { own, a, b };
}

/** Routes on `session.data.to`, set by the test before the route step (in `admit`). */
function routeBy(target: (s: Session) => ReturnType<Parameters<Service['hooks']['route']['tap']>[1]>) {
  svc('edge').hooks.route.tap('test-router', target);
}

describe('routing to a pool', () => {
  it('the pool selects, dials and pipes; each phase runs in its own service; both count the session', async () => {
    await startPair();
    const calls: string[] = [];
    for (const name of ['edge', 'api']) {
      const h = svc(name).hooks;
      h.accept.tap('t', () => void calls.push(`${name}.accept`));
      h.admit.tap('t', () => void calls.push(`${name}.admit`));
      h.candidates.tap('t', (list) => {
        calls.push(`${name}.candidates`);
        return list;
      });
      h.connect.tap('t', () => void calls.push(`${name}.connect`));
      h.established.tap('t', () => void calls.push(`${name}.established`));
      h.closed.tap('t', (s) => void calls.push(`${name}.closed:${s.service.name}->${s.pool.name}`));
    }
    routeBy(() => 'api');
    const names: string[] = [];
    for (let i = 0; i < 2; i++) {
      const c = await client();
      names.push((await c.read(6)).toString());
      c.end();
      await closed(c);
    }
    // The pool's round-robin over its own two backends; the edge's backend untouched.
    expect(names.sort()).toEqual(['api-a\n', 'api-b\n']);
    await waitFor(() => svc('edge').sessionCount === 0, 3000, 'release');
    expect(calls.slice(0, calls.indexOf('api.closed:edge->api') + 2)).toEqual([
      'edge.accept',
      'edge.admit',
      'api.candidates',
      'api.connect',
      'api.established',
      'api.closed:edge->api',
      'edge.closed:edge->api',
    ]);
    expect(svc('edge').counters).toMatchObject({
      accepted: 2,
      routed: 2,
      routedIn: 0,
      established: 0,
      closed: 2,
    });
    expect(svc('api').counters).toMatchObject({
      accepted: 0,
      routed: 0,
      routedIn: 2,
      established: 2,
      closed: 2,
    });
    expect(
      svc('api')
        .backends.list()
        .map((b) => b.total),
    ).toEqual([1, 1]);
  });

  it('a live routed session is in both session tables, with its pool; the pool backend counts it active', async () => {
    const { a } = await startPair();
    routeBy(() => 'api');
    const c = await client();
    await c.read(6);
    const [edgeSession] = [...svc('edge').sessions.values()];
    expect(svc('api').sessions.get(edgeSession!.id)).toBe(edgeSession);
    expect(edgeSession!.toJSON()).toMatchObject({
      service: 'edge',
      pool: 'api',
      backend: expect.any(String),
    });
    const active = svc('api')
      .backends.list()
      .reduce((n, b) => n + b.active, 0);
    expect(active).toBe(1);
    expect(svc('edge').backends.list()[0]!.active).toBe(0);
    void a;
    c.destroy();
    await waitFor(
      () => svc('api').sessionCount === 0 && svc('edge').sessionCount === 0,
      3000,
      'both tables empty',
    );
    expect(
      svc('api')
        .backends.list()
        .reduce((n, b) => n + b.active, 0),
    ).toBe(0);
  });

  it('undefined or its own name stays; a Rejection refuses in the listening service', async () => {
    await startPair();
    const answers: Array<string | undefined | { reason: string }> = [
      undefined,
      'edge',
      { reason: 'no-route' },
    ];
    routeBy(() => answers.shift());
    for (const expected of ['edge-o', 'edge-o'])
      expect((await (await client()).read(6)).toString()).toBe(expected);
    const refused = await client();
    await closed(refused);
    await waitFor(() => svc('edge').counters.rejected === 1, 3000, 'the refusal');
    expect(svc('edge').counters.routed).toBe(0);
    expect(svc('api').counters.routedIn).toBe(0);
  });

  it('an unknown service name or a throwing tap fails that session only (internal-error, detail route)', async () => {
    await startPair();
    const reasons: Array<[string | null, string | null]> = [];
    svc('edge').hooks.closed.tap('t', (s) => void reasons.push([s.closeReason, s.closeDetail]));
    const answers: Array<() => string> = [
      () => 'nope',
      () => {
        throw new Error('boom');
      },
      () => 'api',
    ];
    routeBy(() => answers.shift()!());
    await closed(await client());
    await closed(await client());
    expect((await (await client()).read(4)).toString()).toBe('api-');
    await waitFor(() => reasons.length === 2, 3000, 'two failed sessions');
    expect(reasons).toEqual([
      ['internal-error', 'route'],
      ['internal-error', 'route'],
    ]);
  });

  it('the pool’s connect timeout and retries apply, not the listening service’s', async () => {
    const hole = await kit.blackhole();
    const live = await kit.named('live');
    proxy = await kit.proxy(`
services:
  edge:
    listen: 127.0.0.1:0
    connect_timeout: 30s
    retries: 0
  api:
    connect_timeout: 150ms
    retries: 1
    backends: [{ address: ${hole.address} }, { address: ${live.address} }]
`);
    routeBy(() => 'api');
    const t0 = Date.now();
    for (let i = 0; i < 2; i++) expect((await (await client()).read(5)).toString()).toBe('live\n');
    // One attempt hit the blackhole and timed out after the pool's 150 ms, then retried.
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(svc('api').counters).toMatchObject({ connectFailures: 1, retries: 1, established: 2 });
    expect(svc('edge').counters).toMatchObject({ connectFailures: 0, retries: 0 });
  });

  it('idle timeouts: the shorter of the listening service’s and the pool’s closes a routed session', async () => {
    for (const [edgeIdle, poolIdle] of [
      ['200ms', '1h'],
      ['1h', '200ms'],
    ]) {
      const backend = await kit.backend(() => {});
      proxy = await kit.proxy(`
services:
  edge:
    listen: 127.0.0.1:0
    idle_timeout: ${edgeIdle}
  api:
    idle_timeout: ${poolIdle}
    backends: [{ address: ${backend.address} }]
`);
      routeBy(() => 'api');
      const reasons: string[] = [];
      svc('edge').hooks.closed.tap('t', (s) => void reasons.push(s.closeReason!));
      const c = await client();
      const t0 = Date.now();
      await closed(c);
      expect(Date.now() - t0).toBeLessThan(3000);
      await waitFor(() => reasons.length === 1, 3000, 'the release');
      expect(reasons).toEqual(['idle-timeout']);
      await proxy.stop();
      proxy = undefined;
      await backend.close();
    }
  });

  it('the pool’s drain on stop closes routed sessions; every table empties', async () => {
    const backend = await kit.backend(() => {});
    proxy = await kit.proxy(`
services:
  edge:
    listen: 127.0.0.1:0
  api:
    backends: [{ address: ${backend.address} }]
`);
    routeBy(() => 'api');
    const c = await client();
    await waitFor(() => svc('api').backends.list()[0]!.active === 1, 3000, 'connected');
    const reasons: string[] = [];
    svc('edge').hooks.closed.tap('t', (s) => void reasons.push(s.closeReason!));
    await proxy.stop(100);
    proxy = undefined;
    await closed(c);
    expect(reasons).toEqual(['shutdown']);
  });
});

describe('pool services', () => {
  it('start: every service’s plugins and backends are ready before any listener binds', async () => {
    const live = await kit.named('live');
    proxy = await kit.proxy(
      `
services:
  edge:
    listen: 127.0.0.1:0
  api:
    backends: [{ address: ${live.address} }]
`,
      { start: false },
    );
    const edge = svc('edge');
    const api = svc('api');
    let edgeBoundBeforePoolReady: boolean | undefined;
    api.hooks.start.tapPromise('slow', async () => {
      await new Promise((r) => setTimeout(r, 100));
      edgeBoundBeforePoolReady = edge.addresses().length > 0;
    });
    await proxy.start();
    expect(edgeBoundBeforePoolReady).toBe(false);
    expect(api.addresses()).toEqual([]);
    expect(api.backends.size).toBe(1);
    expect(edge.addresses()).toHaveLength(1);
  });

  it('slow-start in a pool ramps a backend added at run time (a pool has no listener, yet it has started)', async () => {
    const { a } = await startPair('', 'plugins: { slow-start: { window: 10s } }');
    const api = svc('api');
    expect(api.backends.get(a.address)!.status['slow-start']).toBeUndefined();
    const late = await kit.named('late');
    // A pool counts as started from the turn after its configured backends were added.
    await new Promise((r) => setImmediate(r));
    const added = api.backends.add({ address: late.address });
    expect(added.status['slow-start']).toBe('slow-start');
    expect(added.effectiveWeight).toBeLessThan(1);
  });
});
