import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, exchange, type TestProxy, waitFor } from '../../testing/index.js';
import type { ConnectionPoolApi, PoolStats } from './index.js';

const WAIT = 5000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * What counts toward the back-off besides a failed connect: warm sockets the backend closes
 * before they lived the healthy idle life (min(idle_ttl, backoff_max)), and pool connects that
 * never finish when no connect timeout is set. Counts, not timings: every bound is generous.
 */
describe('connection-pool back-off: idle losses and unbounded connects', () => {
  const kit = createTestKit();
  afterEach(kit.close);
  let proxy: TestProxy;

  async function start(backend: string, pool: string, connectTimeout = '2s'): Promise<TestProxy> {
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
connect_timeout: ${connectTimeout}
retries: 0
backends:
  - address: ${backend}
plugins:
  connection-pool:
${pool
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
`);
    return proxy;
  }
  const stats = (): PoolStats => proxy.service.use<ConnectionPoolApi>('connection-pool')!.stats()[0]!;

  /** A backend that closes every accepted socket `ms` after accepting it (its idle timeout). */
  const closingAfter = (ms: number) =>
    kit.backend((s: Socket) => {
      const t = setTimeout(() => s.end(), ms);
      s.on('close', () => clearTimeout(t));
    });

  it('dials a backend that closes every socket after a few ms at the back-off pace', async () => {
    const backend = await closingAfter(5);
    await start(backend.address, 'min_idle: 4\nbackoff_base: 100ms\nbackoff_max: 1s');
    await sleep(2000);
    const s = stats();
    // Unpaced: one refill per close, every few ms (hundreds). Paced: 4, then one probe per
    // delay (50-100 ms, doubling to 0.5-1 s): about 10.
    expect(s.closedByBackend).toBeGreaterThanOrEqual(4);
    expect(s.dials).toBeLessThan(25);
    expect(s.failures).toBeGreaterThan(0);
  });

  it('counts an idle timeout shorter than the healthy idle life as a failure (redis `timeout 1`)', async () => {
    // Healthy idle life = min(idle_ttl 30s, backoff_max 3s) = 3 s; the backend closes at 1.2 s.
    const backend = await closingAfter(1200);
    await start(backend.address, 'min_idle: 4\nbackoff_base: 100ms\nbackoff_max: 3s');
    await sleep(5000);
    const s = stats();
    // Unpaced: 4 dials per 1.2 s, about 20 in 5 s. Paced: 4, then one probe per (delay + 1.2 s).
    expect(s.closedByBackend).toBeGreaterThanOrEqual(4);
    expect(s.dials).toBeLessThanOrEqual(9);
    expect(s.failures).toBeGreaterThan(0);
  });

  it('does not back off for a backend that closes sockets after the healthy idle life', async () => {
    // Healthy idle life = min(idle_ttl 30s, backoff_max 200ms) = 200 ms; closed at 500 ms: a
    // normal server idle timeout, refilled at once, the back-off never starts.
    const backend = await closingAfter(500);
    await start(backend.address, 'min_idle: 2\nbackoff_base: 100ms\nbackoff_max: 200ms');
    let maxFailures = 0;
    const until = Date.now() + 2000;
    while (Date.now() < until) {
      maxFailures = Math.max(maxFailures, stats().failures);
      await sleep(20);
    }
    const s = stats();
    expect(s.closedByBackend).toBeGreaterThanOrEqual(4);
    expect(maxFailures).toBe(0);
    // Each close was refilled at once: dials keep up with the closes.
    expect(s.dials).toBeGreaterThanOrEqual(s.closedByBackend);
  });

  it('gives up a pool connect that never finishes with connect_timeout 0, and dials again', async () => {
    const hole = await kit.blackhole();
    // No connect timeout anywhere: pool connects give up after max(backoff_max, 1 s) = 1 s.
    await start(hole.address, 'min_idle: 1\nbackoff_base: 100ms\nbackoff_max: 1s', '0');
    await waitFor(() => stats().dials === 1 && stats().connecting === 1, WAIT, 'the first connect hangs');
    await waitFor(() => stats().dialFailures >= 1, WAIT, 'the hanging connect given up');
    await waitFor(() => stats().dials >= 2, WAIT, 'the backend dialled again');
    expect(stats().failures).toBeGreaterThan(0);
    // The backend recovers on that port: the next probe connects and the pool fills.
    const port = hole.port;
    await hole.close();
    const backend = await kit.echo({ port });
    await waitFor(() => stats().idle === 1, 8000, 'recovery');
    expect((await exchange(proxy.address, 'up')).toString()).toBe('up');
    expect(backend.accepted).toBeGreaterThanOrEqual(1);
  });
});
