import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { TestBackend, TestKit } from '../../testing/index.js';
import { admin, ClusterProcess, clusterFixture, poll, stampedSession } from './cluster-harness.js';

/**
 * A backend that answers the health check's `PING` with `+PONG` while `healthy`, `-ERR`
 * otherwise, and answers anything else with its name, so a test sees where a session went.
 */
async function startCheckable(
  kit: TestKit,
  name: string,
): Promise<TestBackend & { healthy: boolean; pings: number }> {
  const state = { healthy: true, pings: 0 };
  const server = await kit.backend((socket: Socket) => {
    socket.on('data', (d) => {
      if (d.toString() === 'PING\r\n') {
        state.pings++;
        socket.end(state.healthy ? '+PONG\r\n' : '-ERR\r\n');
      } else socket.write(`${name}\n`);
    });
  });
  // Accessors, not copies: tests flip `healthy` and read `pings` as they change.
  return Object.defineProperties(server, {
    healthy: { get: () => state.healthy, set: (v: boolean) => (state.healthy = v) },
    pings: { get: () => state.pings },
  }) as TestBackend & { healthy: boolean; pings: number };
}

/** Health checks in a cluster: the primary probes, once; workers follow its verdicts. */
describe('cluster health checks (workers: 2)', () => {
  const t = clusterFixture();

  it('probes once per interval from the primary; both workers stop and resume sending to a backend it marks down and up', async () => {
    const a = await startCheckable(t.kit, 'a');
    const b = await startCheckable(t.kit, 'b');
    t.cluster = new ClusterProcess();
    const interval = 200;
    t.cluster.writeConfig(`
workers: 2
listen: 127.0.0.1:0
backends: [{ address: "${a.address}" }, { address: "${b.address}" }]
plugins:
  ${t.cluster.pidStamp}: {}
  health-check: { interval: ${interval}ms, jitter: 0, rise: 1, fall: 1, send: "PING\\r\\n", expect: "+PONG" }
  admin-api: { listen: 127.0.0.1:0 }
`);
    t.cluster.start();
    const { proxy, admin: api } = await t.cluster.started();

    // Probe rate: one prober. Three processes probing would triple it; late timers only lower it.
    const p0 = a.pings;
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 6 * interval));
    const expected = (Date.now() - t0) / interval;
    expect(a.pings - p0).toBeGreaterThan(0);
    expect(a.pings - p0).toBeLessThanOrEqual(Math.ceil(expected * 1.5) + 1);

    b.healthy = false;
    await t.cluster.waitForLog('backend is DOWN (health check failed)');
    expect(t.cluster.find('backend is DOWN (health check failed)')?.pid).toBe(t.cluster.pid);
    // Every session lands on `a`, in both workers (round-robin alternates between them; with
    // reuseport the kernel spreads them by address hash, so go on until both served some).
    const pids = new Set<number>();
    for (let i = 0; i < 12 || (pids.size < 2 && i < 48); i++) {
      const { pid, name } = await sessionOn(t.kit, proxy);
      pids.add(pid);
      expect(name).toBe('a');
    }
    expect(pids.size).toBe(2);
    // The primary shows its own verdict, not a merge of workers' reports.
    const list = (await admin(api, 'GET', '/backends')).body.backends as Array<{
      address: string;
      status: object;
    }>;
    expect(list.find((x) => x.address === b.address)?.status).toMatchObject({ 'health-check': 'down' });

    // A replaced worker starts with the verdict (from its first snapshot), not with `initial`.
    const [victim] = [...pids];
    process.kill(victim!, 'SIGKILL');
    await t.cluster.waitForLog('replacement worker listening', 15_000);
    const after = new Set<number>();
    for (let i = 0; i < 12 || (after.size < 2 && i < 48); i++) {
      const { pid, name } = await sessionOn(t.kit, proxy);
      after.add(pid);
      expect(name).toBe('a');
    }
    expect(after.size).toBe(2);
    expect(after.has(victim!)).toBe(false);

    b.healthy = true;
    await t.cluster.waitForLog('backend is UP (health check passed)');
    await poll(
      async () => {
        const seen = new Set<string>();
        for (let i = 0; i < 6; i++) seen.add((await sessionOn(t.kit, proxy)).name);
        return seen.has('b');
      },
      10_000,
      'sessions on b again',
    );
    // One DOWN and one UP line in all: workers follow quietly.
    expect(t.cluster.logs.filter((l) => l.msg === 'backend is DOWN (health check failed)')).toHaveLength(1);
    expect(t.cluster.logs.filter((l) => l.msg === 'backend is UP (health check passed)')).toHaveLength(1);
  });

  it('SIGHUP with new health-check options applies them in the primary; adding the plugin needs a restart', async () => {
    const a = await startCheckable(t.kit, 'a');
    t.cluster = new ClusterProcess();
    const config = (check: string) => `
workers: 2
listen: 127.0.0.1:0
backends: [{ address: "${a.address}" }]
plugins:
  ${check}
  admin-api: { listen: 127.0.0.1:0 }
`;
    t.cluster.writeConfig(config('health-check: { interval: 1h, send: "PING\\r\\n", expect: "+PONG" }'));
    t.cluster.start();
    await t.cluster.started();
    await new Promise((r) => setTimeout(r, 300));
    const before = a.pings;
    expect(before).toBeLessThanOrEqual(1);

    t.cluster.writeConfig(
      config('health-check: { interval: 100ms, jitter: 0, send: "PING\\r\\n", expect: "+PONG" }'),
    );
    t.cluster.signal('SIGHUP');
    await t.cluster.waitForLog('health-check options reloaded');
    await t.cluster.waitForLog('reloaded: new workers listening, old workers draining');
    await poll(() => a.pings >= before + 5, 10_000, 'checks at the new interval');

    // Removing it would leave workers following statuses nobody updates: rejected.
    t.cluster.writeConfig(config('round-robin: {}'));
    t.cluster.signal('SIGHUP');
    const rejected = await t.cluster.waitForLog(/^reload rejected: these changes need a restart/);
    expect(rejected.changes).toEqual(['plugin "health-check" removed from service "default"']);
  });
});

/** Opens a session; returns the worker that took it and the name of the backend that answered. */
async function sessionOn(kit: TestKit, proxy: string): Promise<{ pid: number; name: string }> {
  const s = await stampedSession(kit, proxy);
  let text = s.rest;
  s.socket.on('data', (c: Buffer) => {
    text += c.toString();
  });
  s.socket.resume();
  s.socket.write('who\n');
  await poll(() => text.includes('\n'), 10_000, 'the backend name');
  s.socket.destroy();
  return { pid: s.pid, name: text.trim() };
}
