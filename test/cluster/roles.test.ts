import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { StatsAggregator } from '../../core/cluster/aggregate.js';
import type { ClusterBridge } from '../../core/cluster/bridge.js';
import type { BackendStats, WorkerStats } from '../../core/cluster/messages.js';
import { RespawnBackoff } from '../../core/cluster/respawn-backoff.js';
import { applySnapshot, seedFromSnapshot, takeSnapshot } from '../../core/cluster/snapshot.js';
import { loadConfigText } from '../../core/config/load.js';
import { primaryPluginChangesNeedingRestart } from '../../core/reload-plugins.js';
import { Runtime } from '../../core/runtime.js';
import type { HealthCheckApi } from '../../plugins/health-check/index.js';
import { workerStats } from './worker-stats.js';

const log = pino({ level: 'silent' });

const bridge = (role: 'primary' | 'worker'): ClusterBridge => ({
  role,
  request: async () => [],
  handle: () => {},
  workerCount: () => 0,
  workers: () => [],
});

const YAML = `
listen: 127.0.0.1:0
backends: [{ address: 127.0.0.1:1 }, { address: 127.0.0.1:2, weight: 2 }]
plugins:
  health-check: { interval: 1h }
  circuit-breaker: {}
  admin-api: { listen: 127.0.0.1:0 }
  force-disconnect: {}
`;

describe('runtime roles', () => {
  const runtimes: Runtime[] = [];
  afterEach(async () => {
    for (const r of runtimes.splice(0)) await r.stop(0);
  });
  const build = async (role: 'primary' | 'worker') => {
    const config = await loadConfigText(YAML, 'roles.yaml');
    const runtime = await Runtime.create(config, log, { role, cluster: bridge(role) });
    runtimes.push(runtime);
    await runtime.start();
    return runtime;
  };

  it('primary: runs process plugins and control-plane service plugins only, holds the registry, binds nothing', async () => {
    const runtime = await build('primary');
    expect(runtime.role).toBe('primary');
    expect(runtime.use('admin-api')).toBeDefined();
    expect(runtime.use('force-disconnect')).toBeDefined();
    expect(runtime.use<ClusterBridge>('cluster')?.role).toBe('primary');
    const service = runtime.defaultService;
    expect(service.addresses()).toEqual([]);
    // health-check is `runsIn: 'any'` (it probes here); the breaker judges sessions, in workers only.
    expect(service.use('health-check')).toBeDefined();
    expect(service.use('circuit-breaker')).toBeUndefined();
    expect([...runtime.primaryStatusSources]).toEqual(['health-check']);
    expect(service.backends.list().map((b) => b.address)).toEqual(['127.0.0.1:1', '127.0.0.1:2']);
  });

  it('worker: binds, applies service plugins, skips runsIn: primary plugins', async () => {
    const runtime = await build('worker');
    expect(runtime.use('admin-api')).toBeUndefined();
    expect(runtime.use('force-disconnect')).toBeDefined();
    expect(runtime.defaultService.addresses()).toHaveLength(1);
    expect(runtime.defaultService.use('health-check')).toBeDefined();
  });

  it('a worker follows snapshots through its registry (add, remove, weight, drain)', async () => {
    const primary = await build('primary');
    const worker = await build('worker');
    const p = primary.defaultService.backends;
    p.remove('127.0.0.1:1');
    p.add({ address: '127.0.0.1:3' });
    p.setWeight('127.0.0.1:2', 5);
    p.setDraining('127.0.0.1:3', true);
    const snapshot = takeSnapshot(primary, 7);
    expect(snapshot.version).toBe(7);
    applySnapshot(worker, snapshot, log);
    const got = worker.defaultService.backends.list().map((b) => [b.address, b.weight, b.state]);
    expect(got).toEqual([
      ['127.0.0.1:2', 5, 'up'],
      ['127.0.0.1:3', 1, 'draining'],
    ]);
    // Applying the same snapshot again changes nothing.
    applySnapshot(worker, snapshot, log);
    expect(worker.defaultService.backends.list()).toHaveLength(2);
  });

  it("a worker follows the primary's health verdicts from snapshots and probes nothing itself", async () => {
    const primary = await build('primary');
    const worker = await build('worker');
    const pb = primary.defaultService.backends.get('127.0.0.1:1')!;
    // What the primary's checker does on a failed check (checks themselves are tested in the plugin).
    primary.defaultService.setBackendStatus(pb, 'health-check', 'down');
    const snapshot = takeSnapshot(primary, 3);
    expect(snapshot.services.default!.map((e) => e.status)).toEqual([
      { 'health-check': 'down' },
      { 'health-check': 'up' },
    ]);
    applySnapshot(worker, snapshot, log);
    const health = worker.defaultService.use<HealthCheckApi>('health-check')!;
    const wb = worker.defaultService.backends.get('127.0.0.1:1')!;
    expect(health.isHealthy(wb)).toBe(false);
    expect(health.counters.checks).toBe(0);
    primary.defaultService.setBackendStatus(pb, 'health-check', 'up');
    applySnapshot(worker, takeSnapshot(primary, 4), log);
    expect(health.isHealthy(wb)).toBe(true);
  });

  it("a starting worker has the primary's verdicts before its listeners bind (seeded), and only then", async () => {
    const primary = await build('primary');
    primary.defaultService.setBackendStatus(
      primary.defaultService.backends.get('127.0.0.1:1')!,
      'health-check',
      'down',
    );
    const config = await loadConfigText(YAML, 'roles.yaml');
    const worker = await Runtime.create(config, log, { role: 'worker', cluster: bridge('worker') });
    runtimes.push(worker);
    const done = seedFromSnapshot(worker, takeSnapshot(primary, 1));
    const health = worker.defaultService.use<HealthCheckApi>('health-check')!;
    // Checked at the moment the listener binds: the verdict is already there.
    let healthyAtBind: boolean | undefined;
    worker.defaultService.hooks.listen.tap('test', (factory) => {
      healthyAtBind = health.isHealthy(worker.defaultService.backends.get('127.0.0.1:1')!);
      return factory;
    });
    await worker.start();
    done();
    expect(healthyAtBind).toBe(false);
    // Seeding is over: a backend removed and added again starts from its plugins' initial state.
    worker.defaultService.backends.remove('127.0.0.1:1', { drainTimeout: 0 });
    const again = worker.defaultService.backends.add({ address: '127.0.0.1:1' });
    expect(health.isHealthy(again)).toBe(true);
  });

  it('sums workers into the primary: active over live workers, totals kept after exit, bad status wins', async () => {
    const primary = await build('primary');
    const agg = new StatsAggregator(primary);
    const report = (sessions: number, b1: Partial<BackendStats>): WorkerStats =>
      workerStats(
        { '127.0.0.1:1': b1 },
        {
          sessions,
          limit: 100,
          counters: { accepted: sessions * 2, established: sessions, closed: sessions },
        },
      );
    agg.report(
      1,
      report(3, {
        active: 3,
        total: 10,
        bytesIn: 100,
        status: { 'circuit-breaker': 'closed', 'health-check': 'down' },
      }),
    );
    agg.report(2, report(4, { active: 4, total: 5, bytesIn: 50, status: { 'circuit-breaker': 'open' } }));
    agg.apply();
    const service = primary.defaultService;
    const b = service.backends.get('127.0.0.1:1')!;
    expect([b.active, b.total, b.bytesIn]).toEqual([7, 15, 150]);
    // The breaker status is merged (open wins); health is the primary's own verdict, not a report.
    expect(b.status).toEqual({ 'health-check': 'up', 'circuit-breaker': 'open' });
    expect(service.sessionCount).toBe(7);
    expect(service.counters.accepted).toBe(14);

    agg.retire(2);
    agg.report(1, report(1, { active: 1, total: 12, bytesIn: 120, status: { 'circuit-breaker': 'closed' } }));
    agg.apply();
    expect([b.active, b.total, b.bytesIn]).toEqual([1, 17, 170]);
    expect(b.status).toEqual({ 'health-check': 'up', 'circuit-breaker': 'closed' });
    expect(service.sessionCount).toBe(1);
    expect(service.counters.accepted).toBe(10);
  });

  it("moves an open session's bytes to the backend's total exactly once, and a worker's exit keeps them", async () => {
    const primary = await build('primary');
    const agg = new StatsAggregator(primary);
    const b = primary.defaultService.backends.get('127.0.0.1:2')!;
    const seen: number[] = [];
    // One worker's successive reports of one backend: closed bytes, open bytes so far, factor.
    const send = (id: number, closed: number, open: number, weightFactor?: number) => {
      const row: Partial<BackendStats> = {
        active: open > 0 ? 1 : 0,
        total: 1,
        bytesIn: closed,
        bytesOut: closed * 2,
        openBytesIn: open,
        openBytesOut: open * 2,
      };
      if (weightFactor !== undefined) row.weightFactor = weightFactor;
      agg.report(id, workerStats({ '127.0.0.1:2': row }, { counters: primary.defaultService.counters }));
      agg.apply();
      seen.push(b.bytesIn + b.openBytesIn);
    };
    send(1, 0, 1000); // a download under way
    send(1, 0, 3000);
    send(1, 3500, 0); // it ended (3,500 in all) between two reports: counted once, no dip
    expect([b.bytesIn, b.openBytesIn, b.bytesOut, b.openBytesOut]).toEqual([3500, 0, 7000, 0]);
    send(2, 0, 400, 0.25); // another worker: a session open, the backend ramping at 25%
    expect(b.effectiveWeight).toBeCloseTo(2 * ((1 + 0.25) / 2)); // weight 2, the mean of the factors
    agg.retire(2); // it exits with the session open: its 400 bytes stay
    agg.apply();
    seen.push(b.bytesIn + b.openBytesIn);
    expect(seen).toEqual([1000, 3000, 3500, 3900, 3900]);
    expect(b.effectiveWeight).toBe(2);
    // The weight the workers get is the configured one: the factor stays in the primary.
    expect(
      takeSnapshot(primary, 1).services.default!.find((e) => e.spec.address === '127.0.0.1:2')!.weight,
    ).toBe(2);
  });
});

describe('respawn back-off', () => {
  it('forks at once after one crash, then doubles up to 30 s, and forgets crashes after a minute', () => {
    let now = 0;
    const backoff = new RespawnBackoff(() => now);
    const delays = Array.from({ length: 10 }, () => backoff.next());
    expect(delays).toEqual([0, 250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    now += 61_000;
    expect(backoff.next()).toBe(0);
  });
});

describe('reload checks for plugins that run in the primary', () => {
  const load = (yaml: string) => loadConfigText(yaml, 'reload.yaml');
  it('names every control-plane plugin added, removed, or brought by a new service', async () => {
    const before = await load(`
services:
  a: { listen: 127.0.0.1:0, backends: [{ address: 127.0.0.1:1 }], plugins: { health-check: {} } }
  b: { listen: 127.0.0.1:0, backends: [{ address: 127.0.0.1:1 }] }
`);
    const after = await load(`
services:
  a: { listen: 127.0.0.1:0, backends: [{ address: 127.0.0.1:1 }] }
  b: { listen: 127.0.0.1:0, backends: [{ address: 127.0.0.1:1 }], plugins: { health-check: {} } }
  c: { listen: 127.0.0.1:0, backends: [{ address: 127.0.0.1:1 }], plugins: { health-check: {}, circuit-breaker: {} } }
`);
    expect(primaryPluginChangesNeedingRestart(before, after)).toEqual([
      'plugin "health-check" removed from service "a"',
      'plugin "health-check" added to service "b"',
      'service "c" is new and uses plugin "health-check", which runs in the primary',
    ]);
    // Options changes and data-plane plugins (circuit-breaker) are fine.
    const tuned = await load(`
services:
  a: { listen: 127.0.0.1:0, backends: [{ address: 127.0.0.1:1 }], plugins: { health-check: { interval: 1s }, circuit-breaker: {} } }
  b: { listen: 127.0.0.1:0, backends: [{ address: 127.0.0.1:1 }] }
`);
    expect(primaryPluginChangesNeedingRestart(before, tuned)).toEqual([]);
  });
});
