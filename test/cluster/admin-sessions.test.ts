import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { TestBackend } from '../../testing/index.js';
import {
  admin,
  ClusterProcess,
  clusterFixture,
  poll,
  readUntil,
  stampedSession,
  stampedSessionsOnEvery,
} from './cluster-harness.js';

interface ListedSession {
  id: number;
  worker: number;
  pid: number;
  client: string;
  backend: string | null;
  startedAt: string;
  connected: boolean;
}

/** GET /sessions in a cluster primary: the workers' sessions, merged oldest first, paged. */
describe('admin-api GET /sessions with workers: 2', () => {
  const t = clusterFixture();
  const { kit } = t;
  let echo: TestBackend;

  const start = async () => {
    echo = await kit.echo();
    const cluster = new ClusterProcess();
    t.cluster = cluster;
    cluster.writeConfig(`
workers: 2
listen: 127.0.0.1:0
backends: [{ address: "${echo.address}" }]
plugins:
  ${cluster.pidStamp}: {}
  admin-api: { listen: 127.0.0.1:0 }
`);
    cluster.start();
    return cluster.started();
  };

  /** Opens `n` long-lived sessions; each reports the pid of the worker serving it. */
  const openSessions = async (proxy: string, n: number) => {
    const out: Array<{ pid: number; socket: Socket }> = [];
    for (let i = 0; i < n; i++) {
      out.push(await stampedSession(kit, proxy));
    }
    return out;
  };

  const key = (s: ListedSession) => `${s.worker}:${s.id}`;

  it('lists every worker session once, with its worker, oldest first, and pages across workers', async () => {
    const { proxy, admin: api, pids } = await start();
    // At least 6, and more if it takes more for both workers to serve some.
    const opened = await stampedSessionsOnEvery(kit, proxy, pids, { min: 6 });
    const n = opened.length;
    expect(new Set(opened.map((s) => s.pid))).toEqual(new Set(pids));
    // The sessions pipe through to the echo backend.
    opened[0]!.socket.write('ping\n');
    expect(await readUntil(opened[0]!.socket, 'ping\n')).toBe('ping\n');

    const all = await admin(api, 'GET', '/sessions');
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ service: 'default', count: n, offset: 0, limit: 100, workers: 2 });
    const listed = all.body.sessions as ListedSession[];
    expect(listed).toHaveLength(n);
    // Ids are per worker (both start at 1), so only (worker, id) tells sessions apart.
    expect(new Set(listed.map(key)).size).toBe(n);
    expect(new Set(listed.map((s) => s.id)).size).toBeLessThan(n);
    expect(new Set(listed.map((s) => s.worker)).size).toBe(2);
    // Each listed session is one of ours, on the worker that stamped it.
    const pidByClient = new Map(opened.map((s) => [`127.0.0.1:${s.socket.localPort}`, s.pid]));
    for (const s of listed) {
      expect(pidByClient.get(s.client), s.client).toBe(s.pid);
      expect(s).toMatchObject({ backend: echo.address, connected: true });
    }
    // One worker id per pid.
    const workerOfPid = new Map<number, number>();
    for (const s of listed) {
      expect(workerOfPid.get(s.pid) ?? s.worker).toBe(s.worker);
      workerOfPid.set(s.pid, s.worker);
    }
    // Oldest first across workers: by start time, then worker.
    for (let i = 1; i < listed.length; i++) {
      const a = listed[i - 1]!;
      const b = listed[i]!;
      const ta = Date.parse(a.startedAt);
      const tb = Date.parse(b.startedAt);
      expect(ta < tb || (ta === tb && a.worker <= b.worker), `${key(a)} before ${key(b)}`).toBe(true);
    }

    // Pages of 2 put together give the whole list; a page may mix workers.
    const pages: ListedSession[] = [];
    for (let offset = 0; offset < n; offset += 2) {
      const page = await admin(api, 'GET', `/sessions?limit=2&offset=${offset}`);
      expect(page.body).toMatchObject({ count: n, offset, limit: 2 });
      expect(page.body.sessions).toHaveLength(Math.min(2, n - offset));
      pages.push(...page.body.sessions);
    }
    expect(pages.map(key)).toEqual(listed.map(key));
    const tail = await admin(api, 'GET', '/sessions?limit=4&offset=3');
    expect((tail.body.sessions as ListedSession[]).map(key)).toEqual(listed.slice(3).map(key));
    const past = await admin(api, 'GET', `/sessions?offset=${n}`);
    expect(past.body).toMatchObject({ count: n, sessions: [] });

    // The count is asked from the workers, not taken from the 500 ms aggregate.
    const gone = listed.slice(0, 2).map(key);
    for (const s of listed.slice(0, 2)) {
      const client = opened.find((o) => `127.0.0.1:${o.socket.localPort}` === s.client)!;
      client.socket.destroy();
    }
    await poll(
      async () => (await admin(api, 'GET', '/sessions')).body.count === n - 2,
      10_000,
      `count ${n - 2}`,
    );
    const after = (await admin(api, 'GET', '/sessions')).body.sessions as ListedSession[];
    expect(after.map(key)).toEqual(listed.slice(2).map(key));
    expect(after.map(key)).not.toContain(gone[0]);
  });

  it('an unknown ?service= is a 404; a window past the cluster bound is a 400', async () => {
    const { proxy, admin: api } = await start();
    await openSessions(proxy, 2);

    const unknown = await admin(api, 'GET', '/sessions?service=nope');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatch(/unknown service "nope" \(services: default\)/);

    const far = await admin(api, 'GET', '/sessions?offset=9999&limit=2');
    expect(far.status).toBe(400);
    expect(far.body.error).toMatch(/offset \+ limit must be at most 10000/);
    // At the bound it answers: an empty page past the live sessions.
    const edge = await admin(api, 'GET', '/sessions?offset=9000&limit=1000');
    expect(edge.status).toBe(200);
    expect(edge.body).toMatchObject({ count: 2, sessions: [] });
    const named = await admin(api, 'GET', '/sessions?service=default');
    expect(named.body).toMatchObject({ service: 'default', count: 2 });
    expect(named.body.sessions).toHaveLength(2);
  });
});
