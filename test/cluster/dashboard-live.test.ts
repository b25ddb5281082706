import { describe, expect, it } from 'vitest';
import type { HistoryView } from '../../plugins/dashboard/history.js';
import type { BackendRow, DashboardState } from '../../plugins/dashboard/state.js';
import { ClusterProcess, clusterFixture, poll } from './cluster-harness.js';

/**
 * The cluster dashboard as live as the one-process one (workers: 2, real CLI): the bytes of a
 * session still open, reported by its worker every stats round, and slow start's share while
 * a backend ramps in the workers.
 */
describe('cluster dashboard: open sessions and ramps (workers: 2)', () => {
  const t = clusterFixture();
  const { kit } = t;

  const getter =
    (admin: string) =>
    async <T>(path: string): Promise<T> => {
      const res = await fetch(`http://${admin}${path}`);
      expect(res.status, path).toBe(200);
      return (await res.json()) as T;
    };
  const row = (s: DashboardState, address: string): BackendRow | undefined =>
    s.services[0]!.backends.find((b) => b.address === address);

  it('shows a long session growing before it ends, and its exact bytes once after', async () => {
    const backend = await kit.echo();
    const cluster = new ClusterProcess();
    t.cluster = cluster;
    cluster.writeConfig(`
workers: 2
listen: 127.0.0.1:0
backends: [{ address: "${backend.address}" }]
plugins:
  admin-api: { listen: 127.0.0.1:0 }
  dashboard: { history: { interval: 200ms, window: 1m } }
  metrics: { process_metrics: false }
`);
    cluster.start();
    const { proxy, admin } = await cluster.started();
    const get = getter(admin);
    const metricBytes = async (): Promise<number> => {
      const text = await (await fetch(`http://${admin}/metrics`)).text();
      const line = text
        .split('\n')
        .find((l) => l.startsWith('switchyard_backend_bytes_in_total') && l.includes(backend.address));
      return Number(line?.split(' ').pop() ?? Number.NaN);
    };

    // One session moving 32 KiB each way per step, checked while it stays open.
    const client = await kit.connect(proxy);
    const chunk = Buffer.alloc(32 * 1024, 'x');
    let sent = 0;
    const readings: number[] = [];
    const deadline = Date.now() + 15_000;
    for (let step = 0; step < 400 && readings.length < 3; step++) {
      await client.send(chunk);
      await client.read(chunk.length);
      sent += chunk.length;
      await new Promise((r) => setTimeout(r, 50));
      const b = row(await get<DashboardState>('/dashboard/state'), backend.address)!;
      expect(b.bytesIn).toBeLessThanOrEqual(sent);
      expect(b.bytesOut).toBeLessThanOrEqual(sent);
      // Keep a reading each time it moved: it must move at least twice while the session lasts.
      if (b.bytesIn > (readings.at(-1) ?? 0)) readings.push(b.bytesIn);
      if (Date.now() > deadline) break;
    }
    expect(readings.length, `bytes seen while the session was open: ${readings}`).toBe(3);
    expect(client.socket.destroyed).toBe(false);
    expect(await metricBytes()).toBeGreaterThan(0); // /metrics is live too
    const during = await get<HistoryView>('/dashboard/history');
    const rates = during.services[0]!.backends[0]!.series.bytesIn;
    expect(rates.some((v) => v !== null && v > 0)).toBe(true);

    await client.end();
    await client.closed();
    await poll(
      async () => row(await get<DashboardState>('/dashboard/state'), backend.address)!.bytesIn === sent,
      10_000,
      `the backend's bytes to reach the ${sent} sent`,
    );
    // A few stats rounds later: counted once (not also as open bytes), in the state, the
    // metrics and the history, whose rates add up to what was sent (no spike, no dip).
    await new Promise((r) => setTimeout(r, 1500));
    const b = row(await get<DashboardState>('/dashboard/state'), backend.address)!;
    expect([b.bytesIn, b.bytesOut, b.active]).toEqual([sent, sent, 0]);
    expect(await metricBytes()).toBe(sent);
    const view = await get<HistoryView>('/dashboard/history');
    const series = view.services[0]!.backends[0]!.series;
    const total = (values: Array<number | null>) =>
      values.reduce<number>(
        (n, v, i) => n + (i > 0 && v !== null ? (v * (view.t[i]! - view.t[i - 1]!)) / 1000 : 0),
        0,
      );
    // Only the first samples have no rate (before the backend, then no previous sample): a
    // counter that went back would leave a gap (null) and lose bytes from the sum.
    const rated = series.bytesIn.slice(series.bytesIn.findIndex((v) => v !== null));
    expect(
      rated.every((v) => v !== null && v >= 0),
      `bytesIn rates: ${series.bytesIn}`,
    ).toBe(true);
    expect(Math.abs(total(series.bytesIn) - sent)).toBeLessThan(Math.max(64, sent * 1e-4));
    expect(Math.abs(total(series.bytesOut) - sent)).toBeLessThan(Math.max(64, sent * 1e-4));
  }, 40_000);

  it("shows slow start's share while a backend added at run time ramps in the workers", async () => {
    const [first, added] = await Promise.all([kit.echo(), kit.echo()]);
    const cluster = new ClusterProcess();
    t.cluster = cluster;
    cluster.writeConfig(`
workers: 2
listen: 127.0.0.1:0
backends: [{ address: "${first.address}" }]
plugins:
  slow-start: { window: 3s, min_weight_percent: 10 }
  admin-api: { listen: 127.0.0.1:0 }
  dashboard: {}
`);
    cluster.start();
    const { admin } = await cluster.started();
    const get = getter(admin);
    const res = await fetch(`http://${admin}/backends`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ address: added.address, weight: 4 }),
    });
    expect(res.status).toBe(201);

    // The primary lists the backend at once; the workers' reports of its ramp follow.
    const ramps: number[] = [];
    let last: BackendRow | undefined;
    const follow = async (): Promise<BackendRow | undefined> => {
      last = row(await get<DashboardState>('/dashboard/state'), added.address);
      const c = last?.condition;
      if (c?.state === 'ramping' && c.ramp !== undefined) {
        expect(c.ramp).toBeGreaterThanOrEqual(10);
        expect(c.ramp).toBeLessThan(100);
        expect(last!.effectiveWeight).toBeLessThan(4);
        expect(last!.status).toEqual({ 'slow-start': 'slow-start' });
        ramps.push(c.ramp);
      }
      return last;
    };
    const explain = (err: unknown) => {
      throw new Error(`${(err as Error).message}; ramps ${ramps}; last ${JSON.stringify(last)}`);
    };
    await poll(
      async () => {
        await follow();
        return ramps.length > 0;
      },
      10_000,
      'a ramp',
    ).catch(explain);
    await poll(async () => (await follow())?.condition.state === 'up', 15_000, 'the full weight').catch(
      explain,
    );
    expect(ramps.length, `ramp percentages seen: ${ramps}`).toBeGreaterThan(2);
    // Each worker's factor only grows during a ramp, and so does their mean — but for the
    // moment the second worker's first report joins the first's (their ramps start a few ms
    // apart: at most one step, window / 20 = 4.5 % of the weight, lower).
    for (let i = 1; i < ramps.length; i++)
      expect(ramps[i]!, `ramps ${ramps}`).toBeGreaterThanOrEqual(ramps[i - 1]! - 5);
    expect(ramps.at(-1)!).toBeGreaterThan(ramps[0]!);
    expect(last!.effectiveWeight).toBe(4);
  }, 40_000);
});
