import { describe, expect, it } from 'vitest';
import type { HistoryView } from '../../plugins/dashboard/history.js';
import type { DashboardState } from '../../plugins/dashboard/state.js';
import { exchange } from '../../testing/index.js';
import { ClusterProcess, clusterFixture, poll } from './cluster-harness.js';

/**
 * The dashboard with workers: 2 from the real CLI. It runs in the primary, which holds no
 * session: its history must show what the workers report (sessions started, bytes, connect
 * times through the metrics plugin), and health transitions the primary's checks decide.
 */
describe('dashboard history across workers (workers: 2)', () => {
  const t = clusterFixture();
  const { kit } = t;

  it('charts the workers sessions, bytes and connect times, and the primary health transitions', async () => {
    const [up, doomed] = await Promise.all([kit.echo(), kit.echo()]);
    const cluster = new ClusterProcess();
    t.cluster = cluster;
    cluster.writeConfig(`
workers: 2
listen: 127.0.0.1:0
backends: [{ address: "${up.address}" }, { address: "${doomed.address}" }]
plugins:
  health-check: { interval: 100ms, timeout: 100ms, rise: 1, fall: 1, jitter: 0 }
  admin-api: { listen: 127.0.0.1:0 }
  dashboard: { history: { interval: 200ms, window: 1m } }
  metrics: { process_metrics: false, worker_timeout: 500ms }
`);
    cluster.start();
    const { proxy, admin } = await cluster.started();
    const get = async <T>(path: string): Promise<T> => {
      const res = await fetch(`http://${admin}${path}`);
      expect(res.status, path).toBe(200);
      return (await res.json()) as T;
    };

    for (let i = 0; i < 8; i++) expect((await exchange(proxy, 'x'.repeat(1000))).length).toBe(1000);

    let view!: HistoryView;
    await poll(
      async () => {
        view = await get<HistoryView>('/dashboard/history');
        const s = view.services[0]!.series;
        // Rates × the time between samples add up to what the workers reported: 8 sessions,
        // 8,000 bytes each way (the timer's interval stretches under load: use the real one).
        const total = (values: Array<number | null>) =>
          values.reduce<number>(
            (n, v, i) => n + (i > 0 && v !== null ? (v * (view.t[i]! - view.t[i - 1]!)) / 1000 : 0),
            0,
          );
        return (
          Math.abs(total(s.newSessions) - 8) < 0.01 &&
          Math.abs(total(s.bytesIn) - 8000) < 1 &&
          Math.abs(total(s.bytesOut) - 8000) < 1 &&
          s.connectMs.some((v) => v !== null)
        );
      },
      15_000,
      'the history to show the 8 sessions of the workers, their bytes and connect times',
    ).catch((err) => {
      throw new Error(`${(err as Error).message}; last history: ${JSON.stringify(view.services[0]?.series)}`);
    });
    expect(view.connectTimes).toBe(true);
    const state = await get<DashboardState>('/dashboard/state');
    expect(state.workers).toBe(2);
    expect(state.services[0]!.backends.map((b) => b.condition.state)).toEqual(['up', 'up']);

    await doomed.close();
    await poll(
      async () => {
        const s = await get<DashboardState>('/dashboard/state');
        const b = s.services[0]!.backends.find((x) => x.address === doomed.address)!;
        return (
          b.condition.state === 'down' &&
          s.timeline.some(
            (e) => e.backend === doomed.address && e.source === 'health-check' && e.status === 'down',
          )
        );
      },
      15_000,
      'the primary to mark the backend down, and the timeline to say so',
    );
  }, 40_000);
});
