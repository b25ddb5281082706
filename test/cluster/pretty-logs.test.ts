import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ClusterProcess, clusterFixture, poll } from './cluster-harness.js';

/** Thread names of a process (Linux /proc): pino-pretty runs in a thread of its own. */
const threads = (pid: number) =>
  readdirSync(`/proc/${pid}/task`).map((task) =>
    readFileSync(`/proc/${pid}/task/${task}/comm`, 'utf8').trim(),
  );

/**
 * Pretty logs with workers: the primary prints every process's lines through one pino-pretty;
 * workers write JSON to it and run no printer thread of their own.
 */
describe('pretty logs with workers', () => {
  const t = clusterFixture();

  it("prints the workers' lines through the primary's printer; workers run none", async () => {
    t.cluster = new ClusterProcess();
    t.cluster.writeConfig(`
workers: 2
listen: 127.0.0.1:0
backends: [{ address: "127.0.0.1:1" }]
`);
    t.cluster.start({ pretty: true });
    const lines = () => t.cluster!.logs.map((l) => String(l.msg));
    await poll(
      () => lines().filter((l) => /INFO.*: worker listening/.test(l)).length === 2,
      20_000,
      'both workers',
    );
    // Every line is pretty, the workers' included: no JSON reached the terminal.
    expect(t.cluster.logs.filter((l) => l.level !== undefined)).toEqual([]);
    const workers = await t.cluster.workerPids();
    expect(workers).toHaveLength(2);
    // The printer thread lives in the primary only: each worker has one thread fewer (Node 24
    // names it WorkerThread; Node 20 names every thread "node").
    const primary = threads(t.cluster.pid);
    for (const pid of workers) {
      expect(threads(pid)).toHaveLength(primary.length - 1);
      expect(threads(pid)).not.toContain('WorkerThread');
    }
  });
});
