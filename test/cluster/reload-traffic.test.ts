import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { exchange } from '../../testing/index.js';
import { ClusterProcess, clusterFixture, poll } from './cluster-harness.js';

/** A session that streams `total` random bytes through the proxy and hashes what comes back. */
function stream(address: string, total: number) {
  const colon = address.lastIndexOf(':');
  const socket: Socket = connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) });
  const sent = createHash('sha256');
  const got = createHash('sha256');
  let received = 0;
  let written = 0;
  let failed: Error | null = null;
  socket.on('data', (c: Buffer) => {
    got.update(c);
    received += c.length;
  });
  socket.on('error', (err) => {
    failed = err;
  });
  /** Writes one chunk (respecting backpressure); false once everything is written. */
  const writeSome = async (): Promise<boolean> => {
    if (written >= total || failed) return false;
    const chunk = randomBytes(Math.min(16_384, total - written));
    sent.update(chunk);
    written += chunk.length;
    if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
    return true;
  };
  return {
    writeSome,
    get failed() {
      return failed;
    },
    /** Ends the upload and resolves when the echo is complete: whether it matches byte for byte. */
    async finish(): Promise<boolean> {
      while (await writeSome());
      socket.end();
      await poll(() => received >= written || failed !== null || socket.destroyed, 20_000, 'the echo');
      socket.destroy();
      return failed === null && received === written && sent.digest('hex') === got.digest('hex');
    },
  };
}

/** Zero-downtime reload under traffic: nothing refused, nothing cut, no byte lost. */
// A reload forks a new generation: 7-11 s on a loaded 2-core machine; every wait inside is bounded.
describe('cluster reload under traffic (workers: 2)', { timeout: 60_000 }, () => {
  const t = clusterFixture();

  it('new connections keep succeeding through a SIGHUP, and streams across it arrive intact', async () => {
    const echo = await t.kit.echo();
    t.cluster = new ClusterProcess();
    const config = (weight: number) => `
workers: 2
listen: 127.0.0.1:0
drain_timeout: 30s
backends: [{ address: "${echo.address}", weight: ${weight} }]
`;
    t.cluster.writeConfig(config(1));
    t.cluster.start();
    const { proxy, pids } = await t.cluster.started();

    // Streams opened before the reload, written to on and off until after it.
    const streams = Array.from({ length: 4 }, () => stream(proxy, 2 * 1024 * 1024));
    // Short connections in a loop, bounded in count and time.
    let reloaded = false;
    let done = false;
    const results = { before: 0, after: 0, failures: [] as string[] };
    const loop = async () => {
      const end = Date.now() + 20_000;
      for (let i = 0; i < 2000 && !done && Date.now() < end; i++) {
        const payload = randomBytes(1 + (i % 4096));
        try {
          const echoed = await exchange(proxy, payload, 10_000);
          if (!echoed.equals(payload))
            results.failures.push(`echo mismatch (${echoed.length}/${payload.length})`);
          else if (reloaded) results.after++;
          else results.before++;
        } catch (err) {
          results.failures.push((err as Error).message);
        }
        if (i % 8 === 0) for (const s of streams) await s.writeSome();
      }
    };
    const loops = Promise.all(Array.from({ length: 4 }, loop));

    await poll(() => results.before >= 40, 15_000, '40 exchanges before the reload');
    t.cluster.writeConfig(config(2));
    t.cluster.signal('SIGHUP');
    await t.cluster.waitForLog(/^reloaded/, 20_000);
    reloaded = true;
    await poll(() => results.after >= 40, 15_000, '40 exchanges after the reload');
    done = true;
    await loops;

    expect(results.failures).toEqual([]);
    // The streams outlived their generation's replacement and every byte came back in order.
    expect(await Promise.all(streams.map((s) => s.finish()))).toEqual([true, true, true, true]);
    // Their sessions ended, so the old workers leave without waiting for drain_timeout.
    await poll(
      async () => (await t.cluster!.workerPids()).every((p) => !pids.includes(p)),
      15_000,
      'old workers to exit',
    );
  });
});
