import { execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { reusePortSupport } from '../../core/cluster/scheduling.js';
import { admin, ClusterProcess, clusterFixture, poll } from './cluster-harness.js';
import { portOf } from './sockets-of.js';

const hasPrlimit = (() => {
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * `n` connections opened at once, each sending a line and waiting for its echo: served (the
 * echo came back), refused (closed or reset before it), or hung (nothing within 20 s). Served
 * sessions stay open until every connection has its outcome, so none frees a slot for another.
 */
async function flood(address: string, n: number): Promise<{ served: number; refused: number; hung: number }> {
  const outcome = { served: 0, refused: 0, hung: 0 };
  const sockets: Socket[] = [];
  await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((resolve) => {
          const socket = connect({ host: '127.0.0.1', port: portOf(address) });
          sockets.push(socket);
          let text = '';
          let settled = false;
          const settle = (how: keyof typeof outcome) => {
            if (settled) return;
            settled = true;
            outcome[how]++;
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(() => settle('hung'), 20_000);
          socket.on('connect', () => socket.write('x\n'));
          socket.on('data', (c: Buffer) => {
            text += c.toString();
            if (text === 'x\n') settle('served');
          });
          socket.on('error', () => {});
          socket.on('close', () => settle('refused'));
        }),
    ),
  );
  for (const socket of sockets) socket.destroy();
  return outcome;
}

/** The counters the proxy keeps of what it accepted and what it refused, summed over workers. */
async function counters(api: string): Promise<{ accepted: number; refused: number }> {
  const text = (await admin(api, 'GET', '/metrics')).body as string;
  const read = (name: string) =>
    Number(
      new RegExp(`^switchyard_service_${name}_total\\{service="default"\\} (\\d+)$`, 'm').exec(text)?.[1] ??
        NaN,
    );
  return { accepted: read('accepted'), refused: read('overloaded') + read('dropped') + read('rejected') };
}

const modes = [...(reusePortSupport().supported ? ['reuseport'] : []), 'rr', 'none'];

/**
 * At every limit, no connection is dropped uncounted: what clients saw (served, refused) is
 * what the proxy's counters say, in every scheduling mode. Open files 400 per process: a
 * session budget of (400 - 200) / 2 = 100 per worker; 700 connections arrive at once.
 */
describe('a flood past every limit: every refusal counted', { timeout: 90_000 }, () => {
  const t = clusterFixture();

  const start = async (scheduling: string, fdLimit?: number) => {
    const echo = await t.kit.echo();
    t.cluster = new ClusterProcess();
    t.cluster.writeConfig(`
workers: 2
scheduling: ${scheduling}
listen: 127.0.0.1:0
backends: [{ address: "${echo.address}" }]
plugins:
  admin-api: { listen: 127.0.0.1:0 }
  metrics: {}
`);
    t.cluster.start(fdLimit === undefined ? {} : { fdLimit });
    const started = await t.cluster.started();
    await t.cluster.waitForLog('worker listening', 15_000, 2);
    return started;
  };

  /** Waits for the workers' reports to cover every connection, then compares. */
  const settle = async (api: string, seen: { served: number; refused: number; hung: number }, n: number) => {
    expect(seen.hung).toBe(0);
    expect(seen.served + seen.refused).toBe(n);
    let last = { accepted: 0, refused: 0 };
    await poll(
      async () => {
        last = await counters(api);
        return last.accepted + last.refused >= n;
      },
      15_000,
      `counters to cover ${n} connections`,
    ).catch(() => {});
    expect({ served: seen.served, refused: seen.refused }).toEqual({
      served: last.accepted,
      refused: last.refused,
    });
  };

  for (const scheduling of modes) {
    it(`scheduling: ${scheduling}, open files 400 in every process: 700 at once`, async () => {
      const { proxy, admin: api } = await start(scheduling, 400);
      expect(t.cluster!.logs.filter((l) => l.msg === 'worker listening').map((l) => l.sessionLimit)).toEqual([
        100, 100,
      ]);
      const seen = await flood(proxy, 700);
      // Never more than the budgets; rr and reuseport fill both workers (none: whichever
      // worker wins the shared socket's wake-ups may take most of them).
      expect(seen.served).toBeLessThanOrEqual(200);
      if (scheduling !== 'none') expect(seen.served).toBe(200);
      await settle(api, seen, 700);
    });
  }

  it.skipIf(!hasPrlimit)(
    'scheduling: rr, the primary alone at 64 open files: it refuses, and counts',
    async () => {
      const { proxy, admin: api } = await start('rr');
      execFileSync('prlimit', ['--pid', String(t.cluster!.pid), '--nofile=64:64']);
      // The primary's guard re-reads its limit every 250 ms (a limit set at start is read at
      // start): let it see the new one before the burst.
      await new Promise((r) => setTimeout(r, 1000));
      const seen = await flood(proxy, 700);
      // Refused by the primary's guard as its descriptors run short; served by the workers otherwise.
      expect(seen.refused).toBeGreaterThan(0);
      await settle(api, seen, 700);
      // The primary still serves once the burst is over.
      const after = await flood(proxy, 1);
      expect(after.served).toBe(1);
    },
  );
});
