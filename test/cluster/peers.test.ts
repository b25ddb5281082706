import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterBridge } from '../../core/cluster/bridge.js';
import type { WorkerStats } from '../../core/cluster/messages.js';
import { applyPeers, peerViews } from '../../core/cluster/peers.js';
import { loadConfigText } from '../../core/config/load.js';
import { Runtime } from '../../core/runtime.js';
import type { CircuitBreakerApi } from '../../plugins/circuit-breaker/index.js';
import { admin, ClusterProcess, clusterFixture, poll, stampedSession } from './cluster-harness.js';
import { workerStats } from './worker-stats.js';

const log = pino({ level: 'silent' });

describe('peer views', () => {
  it("gives each worker the sum of the others' sessions and their merged statuses, not its own", () => {
    const live = new Map<number, WorkerStats>([
      [1, workerStats({ a: { active: 3, status: { 'circuit-breaker': 'open', 'health-check': 'down' } } })],
      [2, workerStats({ a: { active: 4, status: { 'circuit-breaker': 'closed' } }, b: { active: 1 } })],
      [3, workerStats({ a: { active: 5, status: { 'circuit-breaker': 'closed' } } })],
    ]);
    const views = peerViews(live, new Set(['health-check']));
    expect(views.get(1)!.default).toEqual({
      a: { active: 9, status: { 'circuit-breaker': 'closed' } },
      b: { active: 1 },
    });
    // Worker 1's open wins over worker 3's closed; the primary's own source is left out.
    expect(views.get(2)!.default!.a).toEqual({ active: 8, status: { 'circuit-breaker': 'open' } });
    expect(views.get(3)!.default!.b).toEqual({ active: 1 });
    expect(peerViews(new Map([[1, live.get(1)!]]), new Set()).get(1)!.default!.a).toEqual({ active: 0 });
  });

  const bridge: ClusterBridge = {
    role: 'worker',
    request: async () => [],
    handle: () => {},
    workerCount: () => 0,
    workers: () => [],
  };
  const runtimes: Runtime[] = [];
  afterEach(async () => {
    for (const r of runtimes.splice(0)) await r.stop(0);
  });

  it('a worker applies its view: peerActive, peerStatus and one backendPeerStatus call per change; a peer open opens the breaker', async () => {
    const config = await loadConfigText(
      `
listen: 127.0.0.1:0
backends: [{ address: 127.0.0.1:1 }, { address: 127.0.0.1:2 }]
plugins:
  circuit-breaker: { max_ejection_percent: 50 }
`,
      'peers.yaml',
    );
    const runtime = await Runtime.create(config, log, { role: 'worker', cluster: bridge });
    runtimes.push(runtime);
    await runtime.start();
    const service = runtime.defaultService;
    const calls: string[] = [];
    service.hooks.backendPeerStatus.tap('test', (b, source, status) =>
      calls.push(`${b.port} ${source}=${status}`),
    );
    const [b1, b2] = service.backends.list();

    applyPeers(runtime, { default: { '127.0.0.1:1': { active: 7, status: { 'circuit-breaker': 'open' } } } });
    expect([b1!.peerActive, b2!.peerActive]).toEqual([7, 0]);
    expect(b1!.peerStatus).toEqual({ 'circuit-breaker': 'open' });
    expect(calls).toEqual(['1 circuit-breaker=open']);
    const breakers = service.use<CircuitBreakerApi>('circuit-breaker')!;
    expect(breakers.get('127.0.0.1:1')).toMatchObject({ state: 'open', lastReason: 'peer-opened' });

    // The same view again changes nothing; a view without the source clears it ('').
    applyPeers(runtime, { default: { '127.0.0.1:1': { active: 7, status: { 'circuit-breaker': 'open' } } } });
    applyPeers(runtime, { default: { '127.0.0.1:1': { active: 2 } } });
    expect(calls).toEqual(['1 circuit-breaker=open', '1 circuit-breaker=']);
    expect(b1!.peerStatus).toEqual({});
    // Our own breaker runs its own course: a peer closing does not close it.
    expect(breakers.get('127.0.0.1:1')?.state).toBe('open');

    // max_ejection_percent still holds: b2 opened elsewhere, but ejecting both is not allowed.
    applyPeers(runtime, { default: { '127.0.0.1:2': { active: 0, status: { 'circuit-breaker': 'open' } } } });
    expect(breakers.get('127.0.0.1:2')?.state).toBe('closed');

    // A tap that throws is logged; the worker's IPC handler and the other backends carry on.
    service.hooks.backendPeerStatus.tap('boom', (b) => {
      if (b.port === 1) throw new Error('boom');
    });
    const view = {
      default: {
        '127.0.0.1:1': { active: 1, status: { x: 'down' } },
        '127.0.0.1:2': { active: 3, status: { x: 'down' } },
      },
    };
    expect(() => applyPeers(runtime, view)).not.toThrow();
    expect([b1!.peerStatus, b2!.peerStatus, b2!.peerActive]).toEqual([{ x: 'down' }, { x: 'down' }, 3]);
  });
});

describe('cluster-wide ejection (workers: 2, real CLI)', () => {
  const t = clusterFixture();

  it('a breaker that opens in one worker opens in the other within a stats round', async () => {
    const echo = await t.kit.echo();
    const dead = (await t.kit.refusing()).address;
    t.cluster = new ClusterProcess();
    t.cluster.writeConfig(`
workers: 2
listen: 127.0.0.1:0
retries: 2
backends: [{ address: "${dead}" }, { address: "${echo.address}" }]
plugins:
  ${t.cluster.pidStamp}: {}
  circuit-breaker: { consecutive_failures: 1, base_ejection_time: 1m }
  admin-api: { listen: 127.0.0.1:0 }
`);
    const live = echo.address;
    t.cluster.start();
    const { proxy, admin: api } = await t.cluster.started();
    // One session: the worker that takes it tries the dead backend first, trips, and retries.
    const s = await stampedSession(t.kit, proxy);
    const first = await t.cluster.waitForLog('circuit breaker opened');
    const second = await t.cluster.waitForLog('circuit breaker opened', 10_000, 2);
    expect(first.pid).toBe(s.pid);
    expect(second.pid).not.toBe(s.pid);
    expect([first.reason, second.reason]).toEqual(['consecutive-failures', 'peer-opened']);
    expect(first.backend).toBe(dead);
    expect(second.backend).toBe(dead);
    // Both workers now skip it: sessions in either worker make no attempt on the dead port.
    const pids = new Set<number>();
    for (let i = 0; i < 6; i++) {
      const next = await stampedSession(t.kit, proxy);
      pids.add(next.pid);
    }
    expect(pids.size).toBe(2);
    // The primary's sums: all 7 sessions on the live backend, the one failed attempt only.
    await poll(
      async () =>
        (await admin(api, 'GET', '/get')).body.find((b: { address: string }) => b.address === live)?.total >=
        7,
      10_000,
      'the reports of 7 sessions',
    );
    const deadNow = (await admin(api, 'GET', '/get')).body.find(
      (b: { address: string }) => b.address === dead,
    );
    expect(deadNow.connectFailures).toBe(1);
  });
});
