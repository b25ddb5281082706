import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_ROUTES, type ClusterBridge } from '../../plugin-sdk/index.js';
import { createTestKit, exchange, waitFor } from '../../testing/index.js';
import { type Family, parseExposition, sampleValue } from './exposition.test-support.js';
import { SESSION_STATS_TOPIC, type ServiceReport, type WorkerReport } from './worker-report.js';
import { WorkerTotals } from './worker-totals.js';

const kit = createTestKit();
afterEach(kit.close);

const BOUNDS = [0.001, 0.01, 0.1, 1];
/** A pid no process has (above any pid_max): a worker that exited. */
const GONE = 2_147_483_000;

/** A worker's answer with one backend. */
function report(
  worker: number,
  pid: number,
  backend: Partial<{ counts: number[]; sum: number; count: number; closed: Record<string, number> }>,
  extra: Partial<ServiceReport> = {},
  bounds = BOUNDS,
): WorkerReport {
  return {
    worker,
    pid,
    bounds,
    services: {
      default: {
        closedUnconnected: {},
        rejections: {},
        backends: {
          '127.0.0.1:1': {
            counts: backend.counts ?? [0, 0, 0, 0, 0],
            sum: backend.sum ?? 0,
            count: backend.count ?? 0,
            closed: backend.closed ?? {},
          },
        },
        ...extra,
      },
    },
  };
}

/**
 * A primary's bridge over simulated workers: `answers` are what answering workers reply,
 * `silent` live workers never answer (the request resolves after its timeout, as the real
 * one does).
 */
function fakeBridge() {
  const state = { answers: [] as unknown[], silent: 0, asked: 0, timeouts: [] as Array<number | undefined> };
  const bridge: ClusterBridge = {
    role: 'primary',
    async request<T>(topic: string, _payload: unknown, options?: { sticky?: boolean; timeout?: number }) {
      expect(topic).toBe(SESSION_STATS_TOPIC);
      expect(options?.sticky).toBe(false);
      state.asked++;
      state.timeouts.push(options?.timeout);
      if (state.silent > 0) await new Promise((r) => setTimeout(r, options?.timeout ?? 5000));
      return structuredClone(state.answers) as T[];
    },
    handle() {},
    workerCount: () => state.answers.length + state.silent,
    workers: () => [],
  };
  return { bridge, state };
}

describe('metrics with several workers: WorkerTotals', () => {
  /** A primary's service: its registry holds the backends, it binds nothing. */
  const service = async () => {
    const proxy = await kit.proxy(
      'listen: 127.0.0.1:0\nbackends: [{ address: 127.0.0.1:1 }, { address: 127.0.0.1:2 }]\n',
      { role: 'primary' },
    );
    return proxy.service;
  };
  const backendOf = async () => {
    const s = await service();
    return { s, b1: s.backends.get('127.0.0.1:1')!, b2: s.backends.get('127.0.0.1:2')! };
  };

  it('sums every worker, keeps a dead worker in a retired base, never goes down', async () => {
    const { s, b1, b2 } = await backendOf();
    const { bridge, state } = fakeBridge();
    const totals = new WorkerTotals({ bounds: BOUNDS });
    state.answers = [
      report(1, process.pid, {
        counts: [1, 2, 0, 0, 0],
        sum: 0.02,
        count: 3,
        closed: { 'client-closed': 3 },
      }),
      report(2, GONE, { counts: [0, 1, 0, 0, 1], sum: 2.5, count: 2, closed: { 'backend-reset': 2 } }),
    ];
    await totals.refresh(bridge, 100);
    let h = totals.statsOf(s).backends.get(b1)!;
    expect([...h.connectTimes.counts]).toEqual([1, 3, 0, 0, 1]);
    expect(h.connectTimes.count).toBe(5);
    expect(h.connectTimes.sum).toBeCloseTo(2.52);
    expect(h.closed).toEqual({ 'client-closed': 3, 'backend-reset': 2 });
    expect(totals.statsOf(s).backends.get(b2)).toBeUndefined();

    // Worker 2 is gone (its pid does not exist): folded into the base, still counted.
    expect(totals.tracked).toBe(2);
    state.answers = [state.answers[0]!];
    await totals.refresh(bridge, 100);
    expect(totals.tracked).toBe(1);
    h = totals.statsOf(s).backends.get(b1)!;
    expect(h.connectTimes.count).toBe(5);
    expect(h.closed).toEqual({ 'client-closed': 3, 'backend-reset': 2 });

    // Its replacement starts at zero and adds up on top.
    state.answers.push(report(3, process.pid, { counts: [1, 0, 0, 0, 0], sum: 0.001, count: 1 }));
    await totals.refresh(bridge, 100);
    h = totals.statsOf(s).backends.get(b1)!;
    expect(h.connectTimes.count).toBe(6);
    expect([...h.connectTimes.counts]).toEqual([2, 3, 0, 0, 1]);
    // The base was folded once, not on every refresh.
    await totals.refresh(bridge, 100);
    expect(totals.statsOf(s).backends.get(b1)!.connectTimes.count).toBe(6);
  });

  it('a live worker that does not answer keeps its previous numbers and is reported missing', async () => {
    const { s, b1 } = await backendOf();
    const { bridge, state } = fakeBridge();
    const missing: number[] = [];
    const totals = new WorkerTotals({ bounds: BOUNDS, onMissing: (n) => missing.push(n) });
    const slow = report(2, process.pid, { counts: [4, 0, 0, 0, 0], count: 4 });
    state.answers = [report(1, process.pid, { counts: [1, 0, 0, 0, 0], count: 1 }), slow];
    await totals.refresh(bridge, 50);
    expect(missing).toEqual([]);
    state.answers = [report(1, process.pid, { counts: [2, 0, 0, 0, 0], count: 2 })];
    state.silent = 1; // worker 2 is alive (this pid) but stalled
    await totals.refresh(bridge, 50);
    expect(missing).toEqual([1]);
    expect(totals.tracked).toBe(2);
    expect(state.timeouts).toEqual([50, 50]);
    expect(totals.statsOf(s).backends.get(b1)!.connectTimes.count).toBe(6);
  });

  it('concurrent scrapes share one request', async () => {
    const { bridge, state } = fakeBridge();
    const totals = new WorkerTotals({ bounds: BOUNDS });
    state.answers = [report(1, process.pid, {})];
    await Promise.all([totals.refresh(bridge, 50), totals.refresh(bridge, 50), totals.refresh(bridge, 50)]);
    expect(state.asked).toBe(1);
    await totals.refresh(bridge, 50);
    expect(state.asked).toBe(2);
  });

  it('re-buckets a worker with other bounds (a reload changed them): count and sum stay exact', async () => {
    const { s, b1 } = await backendOf();
    const { bridge, state } = fakeBridge();
    const totals = new WorkerTotals({ bounds: BOUNDS });
    // Worker bounds 0.005, 0.5, 5: into the first primary bucket at least as large (0.01, 1, +Inf).
    state.answers = [
      report(1, process.pid, { counts: [1, 2, 3, 4], sum: 9, count: 10 }, {}, [0.005, 0.5, 5]),
    ];
    await totals.refresh(bridge, 50);
    const h = totals.statsOf(s).backends.get(b1)!.connectTimes;
    expect([...h.counts]).toEqual([0, 1, 0, 2, 7]);
    expect(h.count).toBe(10);
    expect(h.sum).toBe(9);
  });

  it('caps rejection reasons across workers, keeps admitted ones, ignores malformed answers', async () => {
    const { s } = await backendOf();
    const { bridge, state } = fakeBridge();
    const totals = new WorkerTotals({ bounds: BOUNDS });
    const reasons = (from: number, n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`r${from + i}`, 1]));
    state.answers = [
      report(1, process.pid, {}, { rejections: reasons(0, 20), closedUnconnected: { rejected: 20 } }),
      report(
        2,
        process.pid,
        {},
        { rejections: { ...reasons(20, 20), other: 3 }, closedUnconnected: { rejected: 23 } },
      ),
      null,
      { worker: 'x' },
      report(3, process.pid, { counts: [Number.NaN, -4, 1, 0, 0], sum: -1, count: 1 }),
    ];
    await totals.refresh(bridge, 50);
    const stats = totals.statsOf(s);
    expect(stats.rejections.size).toBe(33);
    expect(stats.rejections.get('other')).toBe(3 + 8);
    expect(stats.rejections.get('r0')).toBe(1);
    expect(stats.closedUnconnected.rejected).toBe(43);
    expect(stats.closedUnconnected['no-backend']).toBe(0);
    const h = stats.backends.get(s.backends.get('127.0.0.1:1')!)!.connectTimes;
    expect([...h.counts]).toEqual([0, 0, 1, 0, 0]);
    expect(h.sum).toBe(0);
  });
});

describe('metrics plugin in cluster roles (in process)', () => {
  const build = async (yaml: string, role: 'primary' | 'worker', bridge: ClusterBridge) =>
    (await kit.proxy(yaml, { role, cluster: bridge })).runtime;

  it('worker: counts its sessions, answers the topic, serves nothing itself', async () => {
    const echo = await kit.echo();
    const handlers = new Map<string, (payload: unknown) => unknown>();
    const bridge: ClusterBridge = {
      role: 'worker',
      request: async () => [],
      handle: (topic, fn) => handlers.set(topic, fn),
      workerCount: () => 0,
      workers: () => [],
    };
    const runtime = await build(
      `listen: 127.0.0.1:0
backends: [{ address: "${echo.address}" }]
plugins:
  admin-api: { listen: 127.0.0.1:0 }
  metrics: {}
`,
      'worker',
      bridge,
    );
    expect(runtime.contributions(ADMIN_ROUTES)).toEqual([]);
    const proxy = runtime.defaultService.addresses()[0]!;
    for (let i = 0; i < 3; i++) expect((await exchange(proxy, 'hi')).toString()).toBe('hi');
    await waitFor(() => runtime.defaultService.counters.closed === 3, 5000, '3 closed');

    const answer = (await handlers.get(SESSION_STATS_TOPIC)!(null)) as WorkerReport;
    // What crosses IPC: plain JSON.
    expect(JSON.parse(JSON.stringify(answer))).toEqual(answer);
    expect(answer.pid).toBe(process.pid);
    expect(answer.bounds).toHaveLength(13);
    const b = answer.services.default!.backends[echo.address]!;
    expect(b.count).toBe(3);
    expect(b.counts.reduce((x, y) => x + y, 0)).toBe(3);
    expect(b.counts).toHaveLength(14);
    expect(b.closed).toEqual({ 'client-closed': 3 });
    expect(answer.services.default!.closedUnconnected['client-closed']).toBe(0);
  });

  it("primary: a scrape renders the workers' sums and survives a worker that does not answer", async () => {
    const { bridge, state } = fakeBridge();
    const runtime = await build(
      `listen: 127.0.0.1:0
backends: [{ address: "127.0.0.1:1" }]
plugins:
  admin-api: { listen: 127.0.0.1:0 }
  metrics: { process_metrics: false, worker_timeout: 50ms, connect_time_buckets: [0.001, 0.01, 0.1, 1] }
`,
      'primary',
      bridge,
    );
    const url = `http://${runtime.use<{ address(): string }>('admin-api')!.address()}/metrics`;
    const scrape = async (): Promise<Map<string, Family>> => {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      return parseExposition(await res.text());
    };
    const l = { service: 'default', backend: '127.0.0.1:1' };

    // No worker yet: the series exist at zero, as in one process.
    let m = await scrape();
    expect(sampleValue(m, 'switchyard_backend_connect_seconds_count', l)).toBe(0);
    expect(sampleValue(m, 'switchyard_metrics_worker_timeouts_total')).toBe(0);

    state.answers = [
      report(1, process.pid, {
        counts: [1, 0, 0, 0, 0],
        sum: 0.001,
        count: 1,
        closed: { 'client-closed': 1 },
      }),
      report(
        2,
        process.pid,
        { counts: [0, 2, 0, 0, 0], sum: 0.01, count: 2, closed: { 'client-closed': 2 } },
        { rejections: { 'force-disconnect': 4 }, closedUnconnected: { rejected: 4 } },
      ),
    ];
    m = await scrape();
    expect(sampleValue(m, 'switchyard_backend_connect_seconds_count', l)).toBe(3);
    expect(sampleValue(m, 'switchyard_backend_connect_seconds_bucket', { ...l, le: '0.01' })).toBe(3);
    expect(sampleValue(m, 'switchyard_backend_connect_seconds_sum', l)).toBeCloseTo(0.011);
    expect(sampleValue(m, 'switchyard_sessions_closed_total', { ...l, reason: 'client-closed' })).toBe(3);
    expect(
      sampleValue(m, 'switchyard_sessions_closed_total', {
        service: 'default',
        backend: '',
        reason: 'rejected',
      }),
    ).toBe(4);
    expect(
      sampleValue(m, 'switchyard_service_rejections_total', {
        service: 'default',
        reason: 'force-disconnect',
      }),
    ).toBe(4);

    // Worker 2 stalls: the scrape still answers, with its previous numbers, and counts it.
    state.answers = [state.answers[0]!];
    state.silent = 1;
    m = await scrape();
    expect(sampleValue(m, 'switchyard_backend_connect_seconds_count', l)).toBe(3);
    expect(sampleValue(m, 'switchyard_metrics_worker_timeouts_total')).toBe(1);
    expect(state.timeouts.at(-1)).toBe(50);
  });

  it('rejects a worker_timeout out of range', async () => {
    const { bridge } = fakeBridge();
    await expect(
      build(
        'listen: 127.0.0.1:0\nbackends: [{ address: "127.0.0.1:1" }]\nplugins:\n  metrics: { worker_timeout: 2m }\n',
        'primary',
        bridge,
      ),
    ).rejects.toThrow(/worker_timeout must be between/);
  });
});
