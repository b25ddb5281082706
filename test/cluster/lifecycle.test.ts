import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { exchange } from '../../testing/index.js';
import { admin, ClusterProcess, clusterFixture, poll, readUntil, stampedSession } from './cluster-harness.js';

/** Supervision, reload and stop of a real `workers: 2` cluster. */
describe('cluster lifecycle', () => {
  const t = clusterFixture();

  const configFor = (c: ClusterProcess, backend: string, extra = '') => `
workers: 2
listen: 127.0.0.1:0
drain_timeout: 20s
backends: [{ address: "${backend}" }]
plugins:
  ${c.pidStamp}: {}
${extra}`;

  const start = async (backend: string) => {
    t.cluster = new ClusterProcess();
    t.cluster.writeConfig(configFor(t.cluster, backend));
    t.cluster.start();
    return t.cluster.started();
  };

  const isAlive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it('replaces a worker killed with SIGKILL; traffic continues', async () => {
    const echo = await t.kit.echo();
    const { proxy, pids } = await start(echo.address);
    const victim = pids[0]!;
    process.kill(victim, 'SIGKILL');
    await t.cluster!.waitForLog('worker died');
    await t.cluster!.waitForLog('replacement worker listening');
    const now = await t.cluster!.workerPids();
    expect(now).toHaveLength(2);
    expect(now).not.toContain(victim);
    const seen = new Set<number>();
    for (let i = 0; i < 6; i++) {
      const s = await stampedSession(t.kit, proxy);
      seen.add(s.pid);
      s.socket.destroy();
    }
    expect(seen.size).toBe(2);
    expect(seen.has(victim)).toBe(false);
  });

  it('SIGHUP with an invalid config logs every problem and keeps the running workers', async () => {
    const echo = await t.kit.echo();
    const { proxy, pids } = await start(echo.address);
    t.cluster!.writeConfig(`${configFor(t.cluster!, echo.address)}bogus_key: 1\nretries: -4\n`);
    t.cluster!.signal('SIGHUP');
    const rejected = await t.cluster!.waitForLog(/^reload rejected/);
    expect(rejected.problems).toBe(2);
    const issues = t.cluster!.logs.filter((l) => l.msg === 'invalid config').map((l) => String(l.issue));
    expect(issues.some((i) => i.includes('bogus_key'))).toBe(true);
    expect(issues.some((i) => i.includes('retries'))).toBe(true);
    expect((await t.cluster!.workerPids()).sort()).toEqual([...pids].sort());
    expect((await exchange(proxy, 'still')).toString()).toMatch(/still$/);
  });

  it('SIGHUP with a valid config: new sessions use the new backend, an open session survives', async () => {
    const a = await t.kit.named('a');
    const b = await t.kit.named('b');
    const { proxy, pids } = await start(a.address);
    const held = await stampedSession(t.kit, proxy);
    await poll(() => a.accepted === 1, 5000, 'a to take the held session');

    t.cluster!.writeConfig(configFor(t.cluster!, b.address));
    t.cluster!.signal('SIGHUP');
    await t.cluster!.waitForLog(/^reloaded/, 20_000);
    const fresh = await t.cluster!.workerPids();
    expect(fresh.filter((p) => !pids.includes(p))).toHaveLength(2);

    for (let i = 0; i < 4; i++) {
      const s = await stampedSession(t.kit, proxy);
      expect(pids).not.toContain(s.pid);
      s.socket.destroy();
    }
    await poll(() => b.accepted === 4, 5000, 'b to take every new session');
    expect(a.accepted).toBe(1);

    // The session opened before the reload still works through its old worker.
    held.socket.write('ping');
    expect(held.rest + (await readUntil(held.socket, 'ping'))).toBe('a\nping');
    expect(isAlive(held.pid)).toBe(true);
    held.socket.destroy();
    // Once its last session ends, the old generation exits.
    await poll(async () => (await t.cluster!.workerPids()).length === 2, 15_000, 'old workers to exit');
    expect(isAlive(held.pid)).toBe(false);
  });

  it('after a reload, sessions still draining in the old generation are listed and force-disconnected', async () => {
    const a = await t.kit.named('a');
    const extra = '  admin-api: { listen: 127.0.0.1:0 }\n  force-disconnect: {}\n';
    t.cluster = new ClusterProcess();
    t.cluster.writeConfig(configFor(t.cluster, a.address, extra));
    t.cluster.start();
    const { proxy, admin: api, pids } = await t.cluster.started();
    const held = await stampedSession(t.kit, proxy);
    held.socket.resume();
    t.cluster.signal('SIGHUP');
    await t.cluster.waitForLog(/^reloaded/, 20_000);
    expect(isAlive(held.pid)).toBe(true);

    const listed = (await admin(api, 'GET', '/sessions')).body;
    expect(listed.count).toBe(1);
    expect(listed.sessions[0].pid).toBe(held.pid);
    const closed = once(held.socket, 'close');
    const off = await admin(api, 'POST', '/force_disconnect', { enabled: true });
    expect(off.body.closed).toBe(1);
    await closed;
    // With its last session gone, the old generation exits at once, not at drain_timeout (20 s).
    await poll(() => pids.every((p) => !isAlive(p)), 10_000, 'old workers to exit');
  });

  it('worker_semi_space reaches the workers as --max-semi-space-size (default 2; 0: none), not the primary', async () => {
    const echo = await t.kit.echo();
    const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const semiFlags = (pid: number) => cmdline(pid).filter((a) => a.startsWith('--max-semi-space-size'));
    for (const [setting, expected] of [
      ['', ['--max-semi-space-size=2']],
      ['worker_semi_space: 8\n', ['--max-semi-space-size=8']],
      ['worker_semi_space: 0\n', []],
    ] as const) {
      t.cluster = new ClusterProcess();
      t.cluster.writeConfig(`${setting}${configFor(t.cluster, echo.address)}`);
      t.cluster.start();
      const { pids } = await t.cluster.started();
      for (const pid of pids) expect(semiFlags(pid)).toEqual(expected);
      expect(semiFlags(t.cluster.pid)).toEqual([]);
      await t.cluster.kill();
    }
  });

  it('SIGHUP rotates the admin token in the primary; a listen change waits for a restart', async () => {
    const echo = await t.kit.echo();
    const old = 'old-token-0123456789abcdef';
    const fresh = 'new-token-fedcba9876543210';
    const adminWith = (token: string, listen = '127.0.0.1:0') =>
      `  admin-api: { listen: "${listen}", token: "${token}", read_only_open: false }\n`;
    t.cluster = new ClusterProcess();
    t.cluster.writeConfig(configFor(t.cluster, echo.address, adminWith(old)));
    t.cluster.start();
    const { admin: api } = await t.cluster.started();
    const get = async (token: string) =>
      (await fetch(`http://${api}/backends`, { headers: { authorization: `Bearer ${token}` } })).status;
    expect(await get(old)).toBe(200);
    expect(await get(fresh)).toBe(401);

    t.cluster.writeConfig(configFor(t.cluster, echo.address, adminWith(fresh, '127.0.0.1:1')));
    t.cluster.signal('SIGHUP');
    await t.cluster.waitForLog('admin-api: options reloaded', 20_000);
    expect(await get(fresh)).toBe(200);
    expect(await get(old)).toBe(401);
    // Same server, same address: the new listen address is logged as needing a restart.
    expect(t.cluster.find('admin-api: these options change at restart only')?.options).toEqual(['listen']);
  });

  it('SIGTERM: workers drain, the primary exits 0, no process is left', async () => {
    const echo = await t.kit.echo();
    const { pids } = await start(echo.address);
    t.cluster!.signal('SIGTERM');
    expect(await t.cluster!.waitExit(20_000)).toBe(0);
    await poll(() => pids.every((p) => !isAlive(p)), 5000, 'workers to exit');
    expect(() => process.kill(-t.cluster!.pid, 0)).toThrow();
  });

  it('exits 1 when the workers cannot bind', async () => {
    const echo = await t.kit.echo();
    const taken = echo.address;
    t.cluster = new ClusterProcess();
    t.cluster.writeConfig(configFor(t.cluster, taken).replace('127.0.0.1:0', taken));
    t.cluster.start();
    expect(await t.cluster.waitExit(20_000)).toBe(1);
    expect(t.cluster.logs.some((l) => /cannot listen|EADDRINUSE/.test(String(l.msg)))).toBe(true);
  });
});
