import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { workerStartBound } from '../../core/cluster/start-bound.js';
import { loadConfigText } from '../../core/config/load.js';
import { exchange } from '../../testing/index.js';
import { ClusterProcess, clusterFixture } from './cluster-harness.js';

/** A plugin whose start takes `start_ms` (-1: never) or whose apply never settles. */
const DELAY = fileURLToPath(new URL('../fixtures/plugins/start-delay.js', import.meta.url));

describe('how long the primary waits for workers follows plugin_timeout', () => {
  const load = (yaml: string) => loadConfigText(yaml, 'bound.yaml');

  it('gives each step a worker takes in turn a whole plugin_timeout, plus the own start of a worker', async () => {
    // One service, no plugin: the default balancer loaded and applied, the process and service
    // start hooks, and the worker's own start (10 s, or plugin_timeout if longer).
    const plain = workerStartBound(await load('listen: 127.0.0.1:0\nbackends: [{ address: 127.0.0.1:1 }]\n'));
    expect(plain).toEqual({
      ms: 4 * 30_000 + 30_000,
      pluginTimeout: 30_000,
      imports: 1,
      applies: 1,
      hooks: 2,
      steps: 4,
      ownStart: 30_000,
    });
    // Modules: admin-api, start-delay (named twice, loaded once), least-connections and the
    // default balancer; applies: admin-api, a's start-delay and least-connections,
    // b's start-delay and default balancer, c's default balancer; start hooks: the process's and
    // each service's (a pool's too), one after another.
    const several = workerStartBound(
      await load(`plugin_timeout: 60s
plugins: { admin-api: { listen: "127.0.0.1:0" } }
services:
  a: { listen: 127.0.0.1:0, backends: [{ address: 127.0.0.1:1 }], plugins: { ${DELAY}: {}, least-connections: {} } }
  b: { listen: 127.0.0.1:0, backends: [{ address: 127.0.0.1:1 }], plugins: { ${DELAY}: {} } }
  c: { backends: [{ address: 127.0.0.1:1 }] }
`),
    );
    expect(several).toEqual({
      ms: 14 * 60_000 + 60_000,
      pluginTimeout: 60_000,
      imports: 4,
      applies: 6,
      hooks: 4,
      steps: 14,
      ownStart: 60_000,
    });
    // The brief's case: a 45 s start under plugin_timeout 60s fits (a fixed 30 s did not).
    expect(several.ms).toBeGreaterThan(45_000 + 60_000);
    // A short plugin_timeout does not shorten the worker's own start below 10 s.
    const short = workerStartBound(
      await load('plugin_timeout: 1s\nlisten: 127.0.0.1:0\nbackends: [{ address: 127.0.0.1:1 }]\n'),
    );
    expect(short).toMatchObject({ ms: 4 * 1_000 + 10_000, steps: 4, ownStart: 10_000 });
  });
});

describe('cluster start and plugin_timeout (real CLI, workers: 2)', () => {
  const t = clusterFixture();

  it('a plugin whose start never finishes fails the start at plugin_timeout, naming the plugin', async () => {
    const proc = new ClusterProcess();
    t.cluster = proc;
    proc.writeConfig(
      `workers: 2\nplugin_timeout: 1s\nstop_grace: 1s\nlisten: 127.0.0.1:0\nbackends: [{ address: 127.0.0.1:9 }]\nplugins:\n  ${DELAY}: { start_ms: -1 }\n`,
    );
    const began = Date.now();
    proc.start();
    // Well short of the 30 s the primary used to wait whatever plugin_timeout said.
    expect(await proc.waitExit(15_000)).toBe(1);
    const fatal = proc.logs.filter((l) => l.level === 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.msg).toBe(
      'start failed: plugin "start-delay" did not finish starting within 1s (start hook of service "default"); raise plugin_timeout if it needs longer',
    );
    expect(fatal[0]!.code).toBe('SWITCHYARD_E_PLUGIN_TIMEOUT');
    expect(Date.now() - began).toBeLessThan(15_000);
  });

  it('plugin_timeout 3s and a plugin whose start takes 2 s: the cluster starts and serves', async () => {
    const backend = await t.kit.named('a');
    const proc = new ClusterProcess();
    t.cluster = proc;
    proc.writeConfig(
      `workers: 2\nplugin_timeout: 3s\nlisten: 127.0.0.1:0\nbackends: [{ address: "${backend.address}" }]\nplugins:\n  ${DELAY}: { start_ms: 2000 }\n`,
    );
    const began = Date.now();
    proc.start();
    const { proxy } = await proc.started();
    // The start did wait for the plugin.
    expect(Date.now() - began).toBeGreaterThanOrEqual(2_000);
    expect((await exchange(proxy, 'x')).toString()).toBe('a\nx');
    expect(proc.logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
  });

  it('a worker stuck where plugin_timeout does not reach: the start fails after the wait plugin_timeout sets, saying what to raise', async () => {
    const proc = new ClusterProcess();
    t.cluster = proc;
    proc.writeConfig(
      `workers: 2\nplugin_timeout: 1s\nstop_grace: 1s\nlisten: 127.0.0.1:0\nbackends: [{ address: 127.0.0.1:9 }]\nplugins:\n  ${DELAY}: { block_apply: true }\n`,
    );
    const began = Date.now();
    proc.start();
    expect(await proc.waitExit(28_000)).toBe(1);
    const elapsed = Date.now() - began;
    // 1s for each of 6 plugin steps (2 module loads, 2 applies, 2 start hooks) + 10s for the
    // worker's own start: not before, and not the 30 s the primary used to wait whatever
    // plugin_timeout said.
    expect(elapsed).toBeGreaterThanOrEqual(16_000);
    expect(elapsed).toBeLessThan(28_000);
    const fatal = proc.logs.filter((l) => l.level === 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.code).toBe('SWITCHYARD_E_WORKER_START_TIMEOUT');
    const msg = String(fatal[0]!.msg);
    expect(msg).toMatch(
      /^start failed: workers did not listen within 16s \(worker \d+, pid \d+: still loading its config and plugins; worker \d+, pid \d+: still loading its config and plugins\); /,
    );
    expect(msg).toContain(
      'the wait is plugin_timeout (1s) for each of the 6 plugin steps a worker takes in turn (2 module loads, 2 applies, 2 start hooks) plus 10s for its own start: raise plugin_timeout if a plugin needs longer to load, apply or start',
    );
  }, 45_000);
});
