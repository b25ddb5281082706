import { describe, expect, it } from 'vitest';
import { freePort, type TestClient } from '../../testing/index.js';
import { ClusterProcess, clusterFixture, poll } from './cluster-harness.js';

/**
 * Session budget per worker from a low `ulimit -n` (230 → (230 - 200) / 2 = 15): with rr, the
 * primary hands connections to the workers in turn and skips a full one; when both are full it
 * refuses at once (a reset, counted) instead of queueing. (With reuseport or none there is no
 * hand-off: a full worker refuses itself; see flood.test.ts.)
 */
describe('cluster overload (scheduling: rr)', () => {
  const t = clusterFixture();

  it('fills both workers to their budget, refuses the rest, and accepts again when room frees', async () => {
    const echo = await t.kit.echo();
    t.cluster = new ClusterProcess();
    t.cluster.writeConfig(`
workers: 2
scheduling: rr
listen: 127.0.0.1:0
backends: [{ address: "${echo.address}" }]
plugins:
  ${t.cluster.pidStamp}: {}
`);
    t.cluster.start({ fdLimit: 230 });
    const { proxy } = await t.cluster.started();
    // Each worker logs from its own process: the lines may arrive after the primary's start line.
    const listening = () => t.cluster!.logs.filter((l) => l.msg === 'worker listening');
    await poll(() => listening().length === 2, 10_000, 'both workers to log "worker listening"');
    expect(t.cluster.logs.filter((l) => l.msg === 'worker listening').map((l) => l.sessionLimit)).toEqual([
      15, 15,
    ]);

    const pids = new Map<number, number>();
    let closed = 0;
    const clients: TestClient[] = [];
    for (let i = 0; i < 40; i++) {
      const s = await t.kit.connect(proxy);
      s.readUntil('\n', 15_000).then(
        (line) => {
          const pid = Number(line.toString().trim());
          pids.set(pid, (pids.get(pid) ?? 0) + 1);
        },
        () => {}, // refused: closed without a pid line
      );
      s.closed(30_000).then(
        () => closed++,
        () => {},
      );
      clients.push(s);
    }
    await poll(() => closed === 10, 15_000, `10 refusals (closed ${closed})`);
    await poll(() => [...pids.values()].reduce((a, b) => a + b, 0) === 30, 10_000, '30 sessions');
    expect([...pids.values()].sort()).toEqual([15, 15]);
    expect(echo.sockets.size).toBe(30);
    await t.cluster.waitForLog('every worker is at its session limit: refusing new connections');

    // Free five sessions: new connections are served again.
    for (const s of clients.filter((c) => !c.socket.destroyed).slice(0, 5)) s.destroy();
    await t.cluster.waitForLog('workers have room again', 10_000);
    const again = await t.kit.connect(proxy);
    const line = (await again.readUntil('\n', 10_000)).toString();
    expect(pids.has(Number(line.split('\n')[0]))).toBe(true);
  });

  it('a connection that arrives before any worker listens waits for one instead of being reset', async () => {
    const echo = await t.kit.echo();
    const address = `127.0.0.1:${await freePort()}`;
    t.cluster = new ClusterProcess();
    t.cluster.writeConfig(`
workers: 2
scheduling: rr
listen: ${address}
backends: [{ address: "${echo.address}" }]
plugins:
  ${t.cluster.pidStamp}: {}
`);
    t.cluster.start();
    // The primary listens before it forks the workers: connect as soon as it accepts.
    const end = Date.now() + 15_000;
    let client: TestClient | undefined;
    while (client === undefined) {
      client = await t.kit.connect(address).catch(() => undefined);
      if (client === undefined && Date.now() > end) throw new Error(`${address} never accepted`);
      if (client === undefined) await new Promise((r) => setTimeout(r, 10));
    }
    // A worker takes ~1 s to start; the connection got in well before.
    const early = !t.cluster.logs.some((l) => l.msg === 'worker listening');
    const { pids } = await t.cluster.started();
    const line = (await client.readUntil('\n', 15_000)).toString();
    expect(pids).toContain(Number(line.trim()));
    expect(early).toBe(true);
  });
});
