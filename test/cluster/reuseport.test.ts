import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { reusePortSupport } from '../../core/cluster/scheduling.js';
import { exchange, type TestKit } from '../../testing/index.js';
import { ClusterProcess, clusterFixture, poll, stampedSessionsOnEvery } from './cluster-harness.js';
import { portOf, socketsOn } from './sockets-of.js';

const supported = reusePortSupport().supported;

/**
 * A client that connects and waits for the pid line pid-stamp writes once the session is
 * established: `pid` stays 0 while the connection waits in an accept queue.
 */
function pending(kit: TestKit, address: string) {
  const socket: Socket = kit.adopt(connect({ host: '127.0.0.1', port: portOf(address) })).socket;
  const state = { socket, pid: 0, failed: null as string | null };
  let text = '';
  socket.on('data', (c: Buffer) => {
    text += c.toString();
    if (state.pid === 0 && text.includes('\n')) state.pid = Number(text.slice(0, text.indexOf('\n')));
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    state.failed = err.code ?? err.message;
  });
  socket.on('close', () => {
    if (state.pid === 0) state.failed ??= 'closed';
  });
  return state;
}

/** `scheduling: reuseport` (Node >= 22.12 on Linux): each worker accepts on sockets of its own. */
// Reloads and replacements take seconds on a loaded machine; every wait inside is bounded.
describe.skipIf(!supported)('scheduling: reuseport', { timeout: 60_000 }, () => {
  const t = clusterFixture();

  const start = async (extra = '') => {
    const echo = await t.kit.echo();
    t.cluster = new ClusterProcess();
    const write = (workers: number) =>
      t.cluster!.writeConfig(`
workers: ${workers}
scheduling: reuseport
listen: 127.0.0.1:0
drain_timeout: 30s
backends: [{ address: "${echo.address}" }]
plugins:
  ${t.cluster!.pidStamp}: {}
${extra}`);
    write(2);
    t.cluster.start();
    const started = await t.cluster.started();
    return { ...started, port: portOf(started.proxy), write };
  };

  it('binds one SO_REUSEPORT socket per worker on one port; the kernel spreads connections; the primary accepts none', async () => {
    const { proxy, pids, port } = await start();
    expect(t.cluster!.find('switchyard started (cluster primary)')?.scheduling).toBe('reuseport');
    // Two listening sockets on the same port, each held by one worker and by the primary
    // (which keeps a copy of the descriptor and never accepts on it).
    const listening = socketsOn(port, 'listening');
    expect(listening).toHaveLength(2);
    const primary = t.cluster!.pid;
    expect(listening.map((s) => s.pids.filter((p) => p !== primary)).sort()).toEqual(
      [...pids].sort((a, b) => a - b).map((p) => [p]),
    );
    for (const s of listening) expect(s.pids).toContain(primary);

    // Both workers take connections, and only workers hold them.
    const sessions = await stampedSessionsOnEvery(t.kit, proxy, pids, { min: 8 });
    expect(new Set(sessions.map((s) => s.pid))).toEqual(new Set(pids));
    const established = socketsOn(port, 'established');
    expect(established.length).toBe(sessions.length);
    for (const s of established) expect(pids).toContain(s.pids[0]);
  });

  it('a killed worker loses no connection waiting in its accept queue: another worker takes its socket, then its replacement', async () => {
    const { proxy, pids, port } = await start();
    const [victim, other] = pids as [number, number];
    // The victim stops accepting: connections the kernel puts on its socket wait in its queue.
    process.kill(victim, 'SIGSTOP');
    const clients = Array.from({ length: 24 }, () => pending(t.kit, proxy));
    await poll(() => clients.some((c) => c.pid === other), 10_000, 'the other worker to serve some');
    await new Promise((r) => setTimeout(r, 300));
    const waiting = clients.filter((c) => c.pid === 0).length;
    // 24 connections hashed over two sockets: some are queued on the stopped worker's.
    expect(waiting).toBeGreaterThan(0);

    process.kill(victim, 'SIGKILL');
    // Closing its descriptor does not close the socket (the primary holds one): the other
    // worker is handed the socket and serves the queue.
    await poll(() => clients.every((c) => c.pid !== 0 || c.failed !== null), 15_000, 'every client answered');
    expect(clients.filter((c) => c.failed !== null)).toEqual([]);
    expect(clients.every((c) => c.pid === other)).toBe(true);

    // The replacement takes the socket back: still two sockets, one worker each.
    await t.cluster!.waitForLog('replacement worker listening', 20_000);
    await poll(
      () => socketsOn(port, 'listening').every((s) => s.pids.length === 2),
      10_000,
      'the other worker to let go',
    );
    const workers = await t.cluster!.workerPids();
    expect(workers).toHaveLength(2);
    expect(workers).not.toContain(victim);
    const after = await stampedSessionsOnEvery(t.kit, proxy, workers, { min: 2 });
    expect(new Set(after.map((s) => s.pid))).toEqual(new Set(workers));
  });

  it('a worker killed under a connection loop: only its own sessions fail, the others keep serving, the replacement binds', async () => {
    const { proxy, pids, port } = await start();
    const results = { ok: 0, failed: 0, afterReplacement: 0 };
    let replaced = false;
    let done = false;
    const loop = async () => {
      const end = Date.now() + 25_000;
      for (let i = 0; i < 3000 && !done && Date.now() < end; i++) {
        try {
          const echoed = await exchange(proxy, 'ping\n', 10_000);
          if (echoed.toString().endsWith('ping\n')) {
            results.ok++;
            if (replaced) results.afterReplacement++;
          } else results.failed++;
        } catch {
          results.failed++;
        }
      }
    };
    const loops = Promise.all(Array.from({ length: 4 }, loop));
    await poll(() => results.ok >= 40, 15_000, '40 exchanges');
    process.kill(pids[0]!, 'SIGKILL');
    await t.cluster!.waitForLog('replacement worker listening', 20_000);
    replaced = true;
    await poll(() => results.afterReplacement >= 40, 15_000, '40 exchanges after the replacement');
    done = true;
    await loops;
    // At most the sessions the dead worker held at that instant (4 loops: at most 4).
    expect(results.failed).toBeLessThanOrEqual(4);
    expect(socketsOn(port, 'listening')).toHaveLength(2);
  });

  it('a reload hands every socket to the new generation: same sockets, nothing queued is lost', async () => {
    const { proxy, pids, port, write } = await start();
    const before = socketsOn(port, 'listening')
      .map((s) => s.inode)
      .sort();
    // One old worker stops accepting: its queue fills while the reload runs.
    const [stopped] = pids as [number, number];
    process.kill(stopped, 'SIGSTOP');
    const clients = Array.from({ length: 24 }, () => pending(t.kit, proxy));
    await poll(() => clients.some((c) => c.pid !== 0), 10_000, 'the running worker to serve some');
    write(2);
    t.cluster!.signal('SIGHUP');
    await t.cluster!.waitForLog(/^reloaded/, 30_000);
    // The new workers took both sockets, the stopped worker's too: its queue is served.
    await poll(() => clients.every((c) => c.pid !== 0 || c.failed !== null), 15_000, 'every client answered');
    expect(clients.filter((c) => c.failed !== null)).toEqual([]);
    for (const c of clients) c.socket.destroy(); // the old generation has nothing left to drain
    process.kill(stopped, 'SIGCONT'); // now it can take its stop order and exit
    await poll(
      async () => (await t.cluster!.workerPids()).every((p) => !pids.includes(p)),
      20_000,
      'old workers to exit',
    );
    // The same two sockets, now held by the new workers (and the primary).
    expect(
      socketsOn(port, 'listening')
        .map((s) => s.inode)
        .sort(),
    ).toEqual(before);
  });

  it('a reload to fewer workers closes the sockets nobody took', async () => {
    const { port, pids, write } = await start();
    write(1);
    t.cluster!.signal('SIGHUP');
    await t.cluster!.waitForLog(/^reloaded/, 30_000);
    await t.cluster!.waitForLog(/^listening sockets no new worker took are closed/);
    await poll(
      async () => (await t.cluster!.workerPids()).every((p) => !pids.includes(p)),
      20_000,
      'old workers to exit',
    );
    expect(socketsOn(port, 'listening')).toHaveLength(1);
  });

  it('refuses to start beside another program listening on the port (SO_REUSEPORT would share it)', async () => {
    const taken = await t.kit.echo();
    t.cluster = new ClusterProcess();
    t.cluster.writeConfig(`
workers: 2
scheduling: reuseport
listen: ${taken.address}
backends: [{ address: "127.0.0.1:1" }]
`);
    t.cluster.start();
    expect(await t.cluster.waitExit(20_000)).toBe(1);
    expect(t.cluster.find(/cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/)).toBeDefined();
  });
});

/** Where reuseport is missing (Node 20): `auto` falls back to rr, and says so once. */
describe('scheduling: auto and where reuseport is missing', () => {
  const t = clusterFixture();
  const config = (scheduling: string) => `
workers: 2
scheduling: ${scheduling}
listen: 127.0.0.1:0
backends: [{ address: "127.0.0.1:1" }]
`;

  it('auto picks reuseport where supported, else rr with one line saying why', async () => {
    t.cluster = new ClusterProcess();
    t.cluster.writeConfig(config('auto'));
    t.cluster.start();
    const { proxy } = await t.cluster.started();
    const line = t.cluster.find('switchyard started (cluster primary)')!;
    expect(line.scheduling).toBe(supported ? 'reuseport' : 'rr');
    const notes = t.cluster.logs.filter((l) => /^scheduling auto: using rr/.test(String(l.msg)));
    if (supported) expect(notes).toEqual([]);
    else
      expect(notes.map((l) => l.msg)).toEqual([
        `scheduling auto: using rr (reuseport needs Node >= 22.12 (or >= 23.1) on Linux; this is Node ${process.version} on ${process.platform})`,
      ]);
    expect(socketsOn(portOf(proxy), 'listening')).toHaveLength(supported ? 2 : 1);
  });

  it.skipIf(supported)(
    'scheduling: reuseport where it is missing: exits 1 saying what it needs',
    async () => {
      t.cluster = new ClusterProcess();
      t.cluster.writeConfig(config('reuseport'));
      t.cluster.start();
      expect(await t.cluster.waitExit(20_000)).toBe(1);
      expect(
        t.cluster.find(
          /^start failed: scheduling: reuseport is not available: reuseport needs Node >= 22\.12/,
        ),
      ).toBeDefined();
    },
  );
});
