import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClusterProcess, clusterFixture, poll } from './cluster-harness.js';

/**
 * A service plugin that logs, once started, the npm packages its process has loaded (CommonJS
 * cache) and how many worker threads it runs.
 */
const PACKAGES_PROBE = `import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
// Node's worker_threads run as OS threads named WorkerThread.
const workerThreads = () =>
  readdirSync('/proc/self/task').filter(
    (t) => readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim() === 'WorkerThread',
  ).length;
export default {
  name: 'packages-probe',
  apply(service) {
    service.hooks.start.tap('packages-probe', () => {
      const packages = new Set();
      for (const file of Object.keys(require.cache)) {
        const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(file);
        if (m) packages.add(m[1]);
      }
      service.log.info({ packages: [...packages].sort(), workerThreads: workerThreads() }, 'packages loaded');
    });
  },
};
`;

/**
 * Workers load what the data plane needs: the admin API's web framework, the metrics registry,
 * the dashboard and pino-pretty stay in the primary, even with those plugins configured; the
 * YAML parser and ajv too (a worker gets its config from the primary), and no config thread
 * runs in a worker (an idle one held 10 MB of RSS per worker).
 */
describe('what a worker loads', () => {
  const t = clusterFixture();

  it('no fastify, prom-client, pino-pretty, yaml, ajv or thread in workers with admin-api, metrics and dashboard on', async () => {
    t.cluster = new ClusterProcess();
    const probe = join(t.cluster.dir, 'packages-probe.mjs');
    writeFileSync(probe, PACKAGES_PROBE);
    t.cluster.writeConfig(`
workers: 2
listen: 127.0.0.1:0
backends: [{ address: "127.0.0.1:1" }]
plugins:
  ${probe}: {}
  admin-api: { listen: 127.0.0.1:0 }
  metrics: {}
  dashboard: {}
`);
    t.cluster.start();
    await t.cluster.started();
    const reports = () => t.cluster!.logs.filter((l) => l.msg === 'packages loaded');
    await poll(() => reports().length === 2, 15_000, 'both workers to report');
    for (const report of reports()) {
      const packages = report.packages as string[];
      expect(packages).toContain('pino'); // the probe sees what is loaded
      for (const heavy of ['fastify', 'prom-client', 'pino-pretty', 'yaml', 'ajv'])
        expect(packages).not.toContain(heavy);
      expect(report.workerThreads).toBe(0);
    }
    // The primary serves the admin API (fastify) and the metrics (prom-client) all the same.
    expect(t.cluster.find('admin API listening')).toBeDefined();
  });
});
