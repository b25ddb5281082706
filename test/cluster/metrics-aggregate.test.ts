import { afterEach, describe, expect, it } from 'vitest';
import { type Family, parseExposition, sampleValue } from '../../plugins/metrics/exposition.test-support.js';
import { createTestKit, exchange } from '../../testing/index.js';
import { admin, ClusterProcess, poll, stampedSession } from './cluster-harness.js';

const HISTOGRAM = 'switchyard_backend_connect_seconds';
const CLOSED = 'switchyard_sessions_closed_total';
const REJECTIONS = 'switchyard_service_rejections_total';
const TIMEOUTS = 'switchyard_metrics_worker_timeouts_total';

/**
 * Per-session metrics (connect-time histogram, close and rejection reasons) with workers: 2
 * from the real CLI. Sessions live in the workers; the primary's /metrics must show their sum.
 */
describe('metrics across workers (workers: 2)', () => {
  let cluster: ClusterProcess | undefined;
  const kit = createTestKit();
  const stopped: number[] = [];
  afterEach(async () => {
    for (const pid of stopped.splice(0)) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    try {
      await kit.close();
    } finally {
      await cluster?.kill();
      cluster = undefined;
    }
  });

  const start = async (backend: string) => {
    cluster = new ClusterProcess();
    cluster.writeConfig(`
workers: 2
listen: 127.0.0.1:0
backends: [{ address: "${backend}" }]
plugins:
  ${cluster.pidStamp}: {}
  admin-api: { listen: 127.0.0.1:0 }
  force-disconnect: {}
  metrics: { process_metrics: false, worker_timeout: 500ms }
`);
    cluster.start();
    return cluster.started();
  };

  /** N sessions, one after the other: each gets the worker's pid (pid-stamp), then its echo. */
  /**
   * At least `n` short sessions, and more until every worker in `every` served one (the kernel
   * spreads reuseport connections by a hash: a few can all land on one worker).
   */
  const sessions = async (
    proxy: string,
    n: number,
    every: readonly number[] = [],
  ): Promise<{ pids: Set<number>; count: number }> => {
    const pids = new Set<number>();
    let count = 0;
    while (count < n || !every.every((p) => pids.has(p))) {
      if (count >= 64) throw new Error(`64 sessions did not reach every worker (${every.join(', ')})`);
      const text = (await exchange(proxy, 'ping')).toString();
      expect(text).toMatch(/^\d+\nping$/);
      pids.add(Number(text.split('\n')[0]));
      count++;
    }
    return { pids, count };
  };

  const scrape = async (api: string): Promise<Map<string, Family>> => {
    const res = await admin(api, 'GET', '/metrics');
    expect(res.status).toBe(200);
    return parseExposition(res.body as string);
  };

  /** The per-session numbers a test follows; every scrape checks none went down. */
  const tracker = (api: string, backend: string) => {
    const l = { service: 'default', backend };
    const unconnected = { service: 'default', backend: '' };
    let last: Record<string, number> = {};
    const read = async () => {
      const m = await scrape(api);
      const now = {
        count: sampleValue(m, `${HISTOGRAM}_count`, l) ?? -1,
        inf: sampleValue(m, `${HISTOGRAM}_bucket`, { ...l, le: '+Inf' }) ?? -1,
        sum: sampleValue(m, `${HISTOGRAM}_sum`, l) ?? -1,
        clientClosed: sampleValue(m, CLOSED, { ...l, reason: 'client-closed' }) ?? 0,
        rejected: sampleValue(m, CLOSED, { ...unconnected, reason: 'rejected' }) ?? -1,
        forceDisconnect: sampleValue(m, REJECTIONS, { service: 'default', reason: 'force-disconnect' }) ?? 0,
        timeouts: sampleValue(m, TIMEOUTS) ?? -1,
      };
      for (const [k, v] of Object.entries(now)) {
        expect(v, k).toBeGreaterThanOrEqual(0);
        expect(v, `${k} went down`).toBeGreaterThanOrEqual(last[k] ?? 0);
      }
      last = now;
      return now;
    };
    const until = async (what: string, check: (n: Awaited<ReturnType<typeof read>>) => boolean) => {
      // Stats may lag: a session's close reaches the worker's counters after the client saw it.
      await poll(async () => check(await read()), 15_000, what);
      return last as Awaited<ReturnType<typeof read>>;
    };
    return { read, until };
  };

  it('sums connect times and close reasons of every worker; a killed worker does not take its counts away', async () => {
    const echo = await kit.echo();
    const { proxy, admin: api, pids } = await start(echo.address);
    const t = tracker(api, echo.address);

    const served = await sessions(proxy, 10, pids);
    const first = served.count;
    // Both workers served some, so the count below can only be their sum.
    expect(served.pids).toEqual(new Set(pids));
    let now = await t.until(
      `${first} sessions in the histogram`,
      (n) => n.count === first && n.clientClosed === first,
    );
    expect(now.inf).toBe(first);
    expect(now.rejected).toBe(0);

    // Rejections, counted by the workers that refused (both, in turn).
    expect((await admin(api, 'POST', '/force_disconnect', { enabled: true })).status).toBe(200);
    for (let i = 0; i < 4; i++) expect((await exchange(proxy)).length).toBe(0);
    expect((await admin(api, 'POST', '/force_disconnect', { enabled: false })).status).toBe(200);
    now = await t.until('4 rejections', (n) => n.rejected === 4 && n.forceDisconnect === 4);
    expect(now.count).toBe(first);

    const victim = pids[0]!;
    process.kill(victim, 'SIGKILL');
    await cluster!.waitForLog('worker died');
    // Between the death and the replacement: its last answer still counts.
    now = await t.read();
    expect(now).toMatchObject({ count: first, clientClosed: first, rejected: 4, forceDisconnect: 4 });
    await cluster!.waitForLog('replacement worker listening');
    const live = await cluster!.workerPids();
    expect(live).toHaveLength(2);
    expect(live).not.toContain(victim);
    now = await t.read();
    expect(now).toMatchObject({ count: first, clientClosed: first, rejected: 4, forceDisconnect: 4 });

    // New sessions (the replacement takes its share) add on top of what the dead worker had.
    const again = await sessions(proxy, 6, live);
    expect(again.pids.has(victim)).toBe(false);
    expect([...again.pids].some((pid) => !pids.includes(pid))).toBe(true);
    const total = first + again.count;
    now = await t.until(`${total} sessions`, (n) => n.count === total && n.clientClosed === total);
    expect(now).toMatchObject({ inf: total, rejected: 4, forceDisconnect: 4, timeouts: 0 });
  });

  it('one series per live worker for memory, CPU and sessions; a replaced worker is replaced in them', async () => {
    const echo = await kit.echo();
    const { proxy, admin: api, pids } = await start(echo.address);
    const held = [];
    for (let i = 0; i < 4; i++) held.push((await stampedSession(kit, proxy)).socket);
    const seriesPids = async (name: string) =>
      ((await scrape(api)).get(name)?.samples ?? []).map((x) => Number(x.labels.pid)).sort();
    await poll(
      async () =>
        JSON.stringify(await seriesPids('switchyard_worker_resident_memory_bytes')) ===
        JSON.stringify([...pids].sort()),
      10_000,
      'a memory series per worker',
    );
    const m = await scrape(api);
    for (const x of m.get('switchyard_worker_resident_memory_bytes')!.samples)
      expect(x.value).toBeGreaterThan(10 * 2 ** 20);
    for (const x of m.get('switchyard_worker_cpu_user_seconds_total')!.samples)
      expect(x.value).toBeGreaterThan(0);
    // The held sessions, per worker, add up.
    await poll(
      async () =>
        ((await scrape(api)).get('switchyard_worker_sessions')?.samples ?? []).reduce(
          (n, x) => n + x.value,
          0,
        ) === 4,
      10_000,
      '4 sessions over the workers',
    );
    for (const s of held) s.destroy();

    process.kill(pids[0]!, 'SIGKILL');
    await cluster!.waitForLog('replacement worker listening');
    const live = (await cluster!.workerPids()).sort();
    await poll(
      async () =>
        JSON.stringify(await seriesPids('switchyard_worker_resident_memory_bytes')) === JSON.stringify(live),
      10_000,
      'the replacement in the series, the dead worker gone',
    );
  });

  it('a reload replaces every worker; the old generation keeps its counts after it exits', async () => {
    const echo = await kit.echo();
    const { proxy, admin: api, pids } = await start(echo.address);
    const t = tracker(api, echo.address);
    const before = await sessions(proxy, 6, pids);
    const n0 = before.count;
    expect(before.pids).toEqual(new Set(pids));
    await t.until(`${n0} sessions`, (n) => n.count === n0 && n.clientClosed === n0);

    cluster!.signal('SIGHUP');
    await cluster!.waitForLog('reloaded: new workers listening, old workers draining');
    await cluster!.waitForLog('worker exited', 15_000, 2);
    const now = await t.read();
    expect(now).toMatchObject({ count: n0, clientClosed: n0, inf: n0 });

    const fresh = await sessions(proxy, 4);
    expect([...fresh.pids].some((pid) => pids.includes(pid))).toBe(false);
    await t.until(`${n0 + 4} sessions`, (n) => n.count === n0 + 4 && n.clientClosed === n0 + 4);
  });

  it('a worker that does not answer neither hangs nor fails the scrape; its previous numbers stay', async () => {
    const echo = await kit.echo();
    const { proxy, admin: api, pids } = await start(echo.address);
    const t = tracker(api, echo.address);
    const before = await sessions(proxy, 4, pids);
    const n0 = before.count;
    expect(before.pids).toEqual(new Set(pids));
    await t.until(`${n0} sessions`, (n) => n.count === n0 && n.clientClosed === n0);

    // A stalled worker (stopped: it cannot read its IPC channel).
    const stalled = pids[0]!;
    process.kill(stalled, 'SIGSTOP');
    stopped.push(stalled);
    const began = Date.now();
    const now = await t.read();
    // Bounded by worker_timeout (500ms), not by the bridge's default of 5 s.
    expect(Date.now() - began).toBeLessThan(4500);
    expect(now).toMatchObject({ count: n0, clientClosed: n0, inf: n0 });
    expect(now.timeouts).toBeGreaterThanOrEqual(1);
    // The primary's log line travels through its stdout: it may arrive after the HTTP answer.
    await cluster!.waitForLog(/^metrics: workers did not answer a scrape in time/, 10_000);

    // Back: it answers again and no scrape times out any more.
    process.kill(stalled, 'SIGCONT');
    stopped.splice(stopped.indexOf(stalled), 1);
    let previous = now.timeouts;
    await poll(
      async () => {
        const n = await t.read();
        const quiet = n.timeouts === previous;
        previous = n.timeouts;
        return quiet;
      },
      15_000,
      'scrapes without timeouts',
    );
    const after = await sessions(proxy, 4, pids);
    expect(after.pids).toEqual(new Set(pids));
    const total = n0 + after.count;
    await t.until(`${total} sessions`, (n) => n.count === total && n.clientClosed === total);
  });
});
