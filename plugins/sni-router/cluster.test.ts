import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  admin,
  ClusterProcess,
  clusterFixture,
  poll,
  readUntil,
} from '../../test/cluster/cluster-harness.js';
import type { TestBackend, TestKit } from '../../testing/index.js';
import { clientHello } from './hello.test-support.js';

/**
 * A pool backend: answers the health check's `PING` with `+PONG` while `healthy`, and a
 * session's first bytes (the ClientHello, forwarded untouched) with its name.
 */
async function startPoolBackend(kit: TestKit, name: string): Promise<TestBackend & { healthy: boolean }> {
  const state = { healthy: true };
  const server = await kit.backend((socket: Socket) => {
    socket.on('data', (d) => {
      if (d.toString() === 'PING\r\n') socket.end(state.healthy ? '+PONG\r\n' : '-ERR\r\n');
      else if (d[0] === 22) socket.write(`${name}\n`);
    });
    socket.on('end', () => socket.end());
  });
  return Object.defineProperty(server, 'healthy', {
    get: () => state.healthy,
    set: (v: boolean) => (state.healthy = v),
  }) as TestBackend & { healthy: boolean };
}

/**
 * One routed session: sends a ClientHello at once (nothing comes back before the pool has
 * connected), then reads the worker's pid (pid-stamp, in the pool) and the backend's name.
 */
async function routed(
  proxy: string,
  sockets: Socket[],
): Promise<{ pid: number; name: string; socket: Socket }> {
  const colon = proxy.lastIndexOf(':');
  const socket = connect({ host: proxy.slice(0, colon), port: Number(proxy.slice(colon + 1)) });
  socket.on('error', () => {});
  sockets.push(socket);
  await once(socket, 'connect');
  socket.write(clientHello({ sni: 'api.example.com' }));
  let text = await readUntil(socket, '\n');
  if (text.split('\n').length < 3) text += await readUntil(socket, '\n');
  const [pid, name] = text.split('\n');
  return { pid: Number(pid), name: name!, socket };
}

describe('sni-router in a cluster (workers: 2)', () => {
  const t = clusterFixture();

  it('both workers route to the pool; the primary’s health checks of the pool apply; counts are summed in the primary', async () => {
    const a = await startPoolBackend(t.kit, 'a');
    const b = await startPoolBackend(t.kit, 'b');
    const sockets: Socket[] = [];
    t.kit.defer(() => {
      for (const s of sockets) s.destroy();
    });
    t.cluster = new ClusterProcess();
    t.cluster.writeConfig(`
workers: 2
services:
  edge:
    listen: 127.0.0.1:0
    plugins:
      sni-router: { routes: { api.example.com: api } }
  api:
    backends: [{ address: "${a.address}" }, { address: "${b.address}" }]
    plugins:
      ${t.cluster.pidStamp}: {}
      health-check: { interval: 200ms, jitter: 0, rise: 1, fall: 1, send: "PING\\r\\n", expect: "+PONG" }
plugins:
  admin-api: { listen: 127.0.0.1:0 }
  metrics: { process_metrics: false }
`);
    t.cluster.start();
    const { proxy, admin: api } = await t.cluster.started();

    const pids = new Set<number>();
    const names = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const s = await routed(proxy, sockets);
      pids.add(s.pid);
      names.add(s.name);
      s.socket.destroy();
    }
    expect(pids.size).toBe(2);
    expect([...names].sort()).toEqual(['a', 'b']);

    b.healthy = false;
    await t.cluster.waitForLog('backend is DOWN (health check failed)');
    for (let i = 0; i < 8; i++) {
      const s = await routed(proxy, sockets);
      expect(s.name).toBe('a');
      s.socket.destroy();
    }

    // A held session is listed in both services by the primary, from the worker that has it.
    const held = await routed(proxy, sockets);
    const listed = async (service: string) => (await admin(api, 'GET', `/sessions?service=${service}`)).body;
    const pool = await listed('api');
    expect(pool.count).toBe(1);
    expect(pool.sessions[0]).toMatchObject({
      service: 'edge',
      pool: 'api',
      sni: 'api.example.com',
      pid: held.pid,
    });
    expect((await listed('edge')).count).toBe(1);
    held.socket.destroy();

    await poll(
      async () => {
        const text = (await admin(api, 'GET', '/metrics')).body as string;
        return (
          /^switchyard_service_routed_total\{service="edge"\} 17$/m.test(text) &&
          /^switchyard_service_routed_in_total\{service="api"\} 17$/m.test(text) &&
          /^switchyard_service_accepted_total\{service="edge"\} 17$/m.test(text)
        );
      },
      10_000,
      'summed routed counters in the primary',
    );
  });
});
