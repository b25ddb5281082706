import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { admin, ClusterProcess, clusterFixture, poll } from '../../test/cluster/cluster-harness.js';
import { exchange } from '../../testing/index.js';

const FD_LIMIT = 400;
const FLOOD = 600;

/** Opens `n` connections to `address` at once and keeps those the server does not close. */
async function flood(address: string, n: number): Promise<Socket[]> {
  const colon = address.lastIndexOf(':');
  const [host, port] = [address.slice(0, colon), Number(address.slice(colon + 1))];
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve) => {
          const socket = connect({ host, port });
          socket.on('error', () => {});
          socket.once('connect', () => resolve(socket));
          socket.once('close', () => resolve(socket));
          socket.setTimeout(5000, () => resolve(socket));
        }),
    ),
  );
}

/**
 * The process's descriptors are shared by proxied sessions and its own listeners. A flood of
 * idle connections to the admin API used to take all of them: proxied connections were then
 * accepted and closed with no data, counted nowhere. The admin API now holds at most its
 * max_connections (64 by default) whatever comes, inside the reserve the session budget leaves.
 */
describe('a connection flood on the admin API (real CLI, open files limit 400)', () => {
  const t = clusterFixture();

  it('leaves proxied sessions working, and counts what it refused', async () => {
    const backend = await t.kit.echo();
    const cli = new ClusterProcess();
    t.cluster = cli;
    cli.writeConfig(`
listen: 127.0.0.1:0
backends: [{ address: "${backend.address}" }]
plugins:
  admin-api: { listen: "127.0.0.1:0" }
  metrics: { process_metrics: false }
`);
    cli.start({ fdLimit: FD_LIMIT });
    const started = await cli.waitForLog('switchyard started', 20_000);
    expect(started.sessionLimit).toBe((FD_LIMIT - 200) / 2);
    const proxy = (started.services as Array<{ listen: string[] }>)[0]!.listen[0]!;
    const api = cli.find('admin API listening')!.address as string;

    const held = await flood(api, FLOOD);
    t.kit.defer(() => {
      for (const s of held) s.destroy();
    });
    // The kernel completes every handshake; give the process time to accept what it will
    // (asserted below, after the sessions: the point of the test is that they work).
    const stillOpen = () => held.filter((s) => !s.destroyed).length;
    await poll(() => stillOpen() <= 64, 5000).catch(() => {});
    // Two sockets per proxied session: the session budget (100) and the admin cap fit in 400.
    const sessions = await Promise.all(
      Array.from({ length: 40 }, (_, i) => exchange(proxy, `session ${i}`, 10_000).then(String)),
    );
    expect(sessions).toEqual(Array.from({ length: 40 }, (_, i) => `session ${i}`));
    expect(stillOpen()).toBe(64);

    for (const s of held) s.destroy();
    await cli.waitForLog('listener at its max_connections: refusing new connections');
    // Once the flood is gone the admin API serves again, and says what it refused.
    let metrics = '';
    for (let i = 0; i < 50 && !metrics.includes('switchyard_listener_refused_total'); i++) {
      metrics = String((await admin(api, 'GET', '/metrics').catch(() => ({ body: '' }))).body);
      if (!metrics.includes('switchyard_listener_refused_total'))
        await new Promise((r) => setTimeout(r, 100));
    }
    const refused = Number(
      /switchyard_listener_refused_total\{listener="admin-api"\} (\d+)/.exec(metrics)?.[1],
    );
    expect(refused).toBeGreaterThanOrEqual(FLOOD - 64);
    expect(metrics).toContain('switchyard_listener_max_connections{listener="admin-api"} 64');
    expect(cli.find(/EMFILE|uncaught/i)).toBeUndefined();
  }, 60_000);
});
