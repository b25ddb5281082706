import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TestClient } from '../../testing/index.js';
import { ClusterProcess, clusterFixture, poll } from '../cluster/cluster-harness.js';

/**
 * A stop is bounded whatever happens (HAProxy's hard-stop-after): after drain_timeout plus
 * stop_grace the process exits, with its parent gone (stdout and stderr closed) and with
 * sessions held open. Twice a proxy stayed alive minutes after SIGTERM with its main thread
 * waiting on a lock, outside the event loop; a stop hook that blocks the main thread forever
 * is that state made on purpose.
 */
const HELD = 200;

/** A stop hook that never finishes (a plugin waiting on something that never comes). */
const NEVER_STOPS = `export default {
  name: 'never-stops',
  apply(service) {
    service.hooks.stop.tapPromise('never-stops', () => new Promise(() => {}));
  },
};
`;

/** A stop hook that blocks the main thread for good: no timer or I/O callback runs after it. */
const BLOCKS_STOP = `export default {
  name: 'blocks-stop',
  apply(service) {
    service.hooks.stop.tap('blocks-stop', () => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    });
  },
};
`;

describe('bounded stop (real CLI, stdout and stderr closed, sessions held open)', () => {
  const t = clusterFixture();

  /** Starts the CLI with `plugin` (file text) enabled, holds HELD sessions, closes its output. */
  async function startHolding(extra: string, plugin?: string): Promise<TestClient[]> {
    const backend = await t.kit.echo();
    const proc = new ClusterProcess();
    t.cluster = proc;
    if (plugin !== undefined) writeFileSync(join(proc.dir, 'plugin.js'), plugin);
    proc.writeConfig(`${extra}
listen: 127.0.0.1:0
drain_timeout: 1s
stop_grace: 1s
backends: [{ address: "${backend.address}" }]
plugins:
  admin-api: { listen: 127.0.0.1:0 }
${plugin === undefined ? '' : `  ${join(proc.dir, 'plugin.js')}: {}\n`}`);
    proc.start();
    const started = await proc.waitForLog(/^switchyard started/, 20_000);
    const proxy = (started.services as Array<{ listen: string[] }>)[0]!.listen[0]!;
    const clients: TestClient[] = [];
    for (let i = 0; i < HELD; i++) {
      const client = await t.kit.connect(proxy);
      await client.send('x');
      clients.push(client);
    }
    for (const client of clients) await client.expect('x', 10_000);
    proc.closeOutput();
    return clients;
  }

  /** SIGTERM; resolves with how the process ended and after how long. */
  async function stop(): Promise<{ code: number | null; signal: string | null; ms: number }> {
    const proc = t.cluster!;
    const t0 = Date.now();
    proc.signal('SIGTERM');
    const code = await proc.waitExit(20_000);
    return { code, signal: proc.exitSignal, ms: Date.now() - t0 };
  }

  it('a stop that finishes in time exits 0 once the drain is over', async () => {
    const clients = await startHolding('');
    const end = await stop();
    expect(end).toMatchObject({ code: 0, signal: null });
    expect(end.ms).toBeGreaterThanOrEqual(900); // the drain waited for the held sessions
    for (const c of clients) await c.closed(5000);
  });

  it("a plugin's stop that never finishes: exit 1 at drain_timeout + stop_grace", async () => {
    const clients = await startHolding('', NEVER_STOPS);
    const end = await stop();
    expect(end).toMatchObject({ code: 1, signal: null });
    expect(end.ms).toBeGreaterThanOrEqual(1900);
    for (const c of clients) await c.closed(5000);
  });

  it('a main thread blocked for good: the watchdog thread kills the process', async () => {
    const clients = await startHolding('', BLOCKS_STOP);
    const end = await stop();
    expect(end).toMatchObject({ code: null, signal: 'SIGKILL' });
    expect(end.ms).toBeGreaterThanOrEqual(2900); // deadline (2 s) + the watchdog's grace (1 s)
    for (const c of clients) await c.closed(5000);
  });

  it('at its open-file limit (accepts failing with EMFILE under a flood): the stop is still bounded', async () => {
    const clients = await startHolding('');
    const pid = t.cluster!.pid;
    // A limit just above what it holds: a few more sessions fit, then every accept fails.
    const limit = readdirSync(`/proc/${pid}/fd`).length + 6;
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${limit}:${limit}`]);
    const proxy = clients[0]!.socket.remoteAddress!;
    const port = clients[0]!.socket.remotePort!;
    const flood = Array.from({ length: 100 }, () => {
      const s = connect({ host: proxy, port });
      s.on('error', () => {});
      s.write('y');
      return s;
    });
    t.kit.defer(() => {
      for (const s of flood) s.destroy();
    });
    await poll(() => readdirSync(`/proc/${pid}/fd`).length >= limit, 5000, 'the proxy at its limit');
    const end = await stop();
    // Exits by itself: 0 when the drain ends the sessions in time, 1 at drain_timeout + stop_grace.
    expect(end.signal).toBeNull();
    expect([0, 1]).toContain(end.code);
    for (const c of clients) await c.closed(5000);
  });

  it('a cluster whose workers block on stop: every process is gone soon after the deadline', async () => {
    const clients = await startHolding('workers: 2', BLOCKS_STOP);
    const workers = await t.cluster!.workerPids();
    expect(workers).toHaveLength(2);
    const end = await stop();
    expect(end.signal === 'SIGKILL' || end.code !== null).toBe(true);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await poll(() => !workers.some(alive), 10_000, 'the workers to be gone');
    for (const c of clients) await c.closed(5000);
  });
});
