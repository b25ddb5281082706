import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readState } from '../../plugins/admin-api/state-file.js';
import type { TestBackend } from '../../testing/index.js';
import { admin, ClusterProcess, clusterFixture, poll, stampedSession } from './cluster-harness.js';

interface SavedBackend {
  address: string;
  weight: number;
  draining?: boolean;
}

/**
 * admin-api `state_file` with `workers: 2`: API changes are saved by the primary, survive a
 * reload (SIGHUP: a new generation of workers), and win over the config's list at a restart;
 * a reload that edits the config's backends is saved too.
 */
describe('admin-api state_file with workers: 2', () => {
  const t = clusterFixture();
  const { kit } = t;
  let servers: TestBackend[] = [];
  let dir: string | undefined;
  let stateFile = '';
  afterEach(async () => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** Echo backends and a cluster whose config lists `configured` (not started). */
  const setup = async (n: number) => {
    servers = await Promise.all(Array.from({ length: n }, () => kit.echo()));
    dir = mkdtempSync(join(tmpdir(), 'switchyard-state-reload-'));
    stateFile = join(dir, 'state.json');
    const cluster = new ClusterProcess();
    t.cluster = cluster;
    return { proc: cluster, addresses: servers.map((s) => s.address) };
  };
  const config = (proc: ClusterProcess, backends: string[]) => `
workers: 2
listen: 127.0.0.1:0
drain_timeout: 5s
backends: [${backends.map((a) => `{ address: "${a}" }`).join(', ')}]
plugins:
  ${proc.pidStamp}: {}
  admin-api: { listen: 127.0.0.1:0, state_file: ${JSON.stringify(stateFile)} }
`;
  /** The state as a restart reads it: the file with its journal applied. */
  const saved = async (): Promise<SavedBackend[]> =>
    ((await readState(stateFile)).doc?.services.default?.backends ?? []) as SavedBackend[];
  const listed = async (api: string) =>
    ((await admin(api, 'GET', '/backends')).body.backends as Array<{ address: string; state: string }>).map(
      (x) => `${x.address} ${x.state}`,
    );
  /** Opens `n` sessions one by one; resolves once backends took them, with the serving workers' pids. */
  const sessions = async (proxy: string, n: number) => {
    const before = servers.reduce((sum, s) => sum + s.accepted, 0);
    const pids: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = await stampedSession(kit, proxy);
      pids.push(s.pid);
      s.socket.destroy();
    }
    await poll(() => servers.reduce((sum, s) => sum + s.accepted, 0) === before + n, 10_000, `${n} sessions`);
    return pids;
  };
  /** Stops with SIGTERM and starts the same CLI again, from the same config file. */
  const restart = async (proc: ClusterProcess) => {
    proc.signal('SIGTERM');
    expect(await proc.waitExit(20_000)).toBe(0);
    proc.logs.length = 0;
    proc.exitCode = undefined;
    proc.start();
    return proc.started();
  };
  const startBackends = (proc: ClusterProcess) =>
    (proc.find('switchyard started (cluster primary)')!.services as Array<{ backends: string[] }>)[0]!
      .backends;

  it('keeps API changes across a reload, a restart, and a reload after the restart', async () => {
    const { proc, addresses } = await setup(3);
    const [a, b, c] = addresses as [string, string, string];
    const [, sb, sc] = servers as [TestBackend, TestBackend, TestBackend];
    proc.writeConfig(config(proc, [a, b]));
    /** Every new session goes to c: a is drained, b removed. */
    const onlyC = async (proxy: string, n: number) => {
      const before = servers.map((s) => s.accepted);
      const pids = await sessions(proxy, n);
      expect(servers.map((s) => s.accepted)).toEqual([before[0], before[1], before[2]! + n]);
      return pids;
    };
    const expected = [`${a} draining`, `${c} up`];
    const expectedFile = [
      expect.objectContaining({ address: a, draining: true }),
      expect.objectContaining({ address: c, weight: 1 }),
    ];

    proc.start();
    let { proxy, admin: api, pids } = await proc.started();
    expect(pids).toHaveLength(2);

    // Changes through the primary's admin API: on disk before each call answers.
    expect((await admin(api, 'POST', '/backends', { address: c })).status).toBe(201);
    expect((await saved()).map((x) => x.address)).toEqual([a, b, c]);
    expect((await admin(api, 'DELETE', `/backends/${b}?drain_timeout=0`)).status).toBe(200);
    expect((await admin(api, 'PATCH', `/backends/${a}`, { drain: true })).status).toBe(200);
    expect(await saved()).toEqual(expectedFile);
    await onlyC(proxy, 4);

    // Reload with the config unchanged: the new generation gets the primary's registry.
    proc.signal('SIGHUP');
    await proc.waitForLog(/^reloaded/, 20_000);
    const served = await onlyC(proxy, 6);
    expect(served.filter((p) => pids.includes(p))).toEqual([]);
    expect(new Set(served).size).toBe(2);
    expect(await listed(api)).toEqual(expected);
    expect(await saved()).toEqual(expectedFile);
    expect(proc.find(/changed outside the API \(config reload\)/)).toBeUndefined();

    // Stop, then start again from the same config file: the state file's list wins.
    ({ proxy, admin: api, pids } = await restart(proc));
    expect(proc.find('backends restored from the state file')).toMatchObject({
      service: 'default',
      backends: 2,
      draining: 1,
    });
    expect(startBackends(proc)).toEqual([a, c]);
    expect(await listed(api)).toEqual(expected);
    await onlyC(proxy, 4);

    // A reload after that restart compares the config file with its previous text, not with
    // the state file's list: c stays, b stays removed, a stays drained.
    proc.signal('SIGHUP');
    await proc.waitForLog(/^reloaded/, 20_000);
    expect(await listed(api)).toEqual(expected);
    const again = await onlyC(proxy, 4);
    expect(again.filter((p) => pids.includes(p))).toEqual([]);
    expect(await saved()).toEqual(expectedFile);
    expect(sb.accepted).toBe(0);
    expect(sc.accepted).toBe(18);
  }, 90_000);

  it("saves a reload's edits to the config's backends, so a restart does not undo them", async () => {
    const { proc, addresses } = await setup(4);
    const [a, b, c, d] = addresses as [string, string, string, string];
    const [sa, sb, sc, sd] = servers as [TestBackend, TestBackend, TestBackend, TestBackend];
    proc.writeConfig(config(proc, [a, b]));
    proc.start();
    let { proxy, admin: api } = await proc.started();
    expect((await admin(api, 'POST', '/add', { address: c })).status).toBe(200);
    expect((await saved()).map((x) => x.address)).toEqual([a, b, c]);

    // The config drops b and adds d; c, added through the API, stays.
    proc.writeConfig(config(proc, [a, d]));
    proc.signal('SIGHUP');
    await proc.waitForLog(/^reloaded/, 20_000);
    expect(await listed(api)).toEqual([`${a} up`, `${c} up`, `${d} up`]);
    await poll(
      async () => {
        const list = await saved();
        return list.length === 3 && list[2]!.address === d;
      },
      10_000,
      'the file to follow the reload',
    );
    expect((await saved()).map((x) => x.address)).toEqual([a, c, d]);
    expect(proc.find(/changed outside the API \(config reload\)/)).toMatchObject({ service: 'default' });

    ({ proxy, admin: api } = await restart(proc));
    expect(startBackends(proc)).toEqual([a, c, d]);
    const bBefore = sb.accepted;
    await sessions(proxy, 6);
    // Round robin over a, c and d in each worker: b is gone for good, d serves.
    expect(sb.accepted).toBe(bBefore);
    expect(sd.accepted).toBeGreaterThan(0);
    expect(sa.accepted + sc.accepted + sd.accepted).toBe(6);
  }, 90_000);
});
