import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { exchange } from '../../testing/index.js';
import { ClusterProcess, clusterFixture } from './cluster-harness.js';

/** A plugin whose start takes `start_ms` (-1: never) or whose apply blocks, while `when_exists` exists. */
const DELAY = fileURLToPath(new URL('../fixtures/plugins/start-delay.js', import.meta.url));

/**
 * A replacement for a crashed worker is held to the same wait as a generation: it fails with
 * its reason logged, or is killed past the bound plugin_timeout sets, and the next replacement
 * (with the respawn back-off) takes its place once the cause is gone.
 */
describe('replacement workers that do not start', () => {
  const t = clusterFixture();

  const startWith = async (plugin: string) => {
    const backend = await t.kit.named('a');
    const proc = new ClusterProcess();
    t.cluster = proc;
    const flag = join(proc.dir, 'slow');
    proc.writeConfig(
      `workers: 2\nplugin_timeout: 1s\nlisten: 127.0.0.1:0\nbackends: [{ address: "${backend.address}" }]\nplugins:\n  ${DELAY}: { when_exists: ${flag}, ${plugin} }\n`,
    );
    proc.start();
    const started = await proc.started();
    writeFileSync(flag, '');
    return { proc, flag, ...started };
  };

  it('one whose plugin start times out: its reason is logged at error, and a later replacement serves', async () => {
    const { proc, flag, proxy, pids } = await startWith('start_ms: -1');
    process.kill(pids[0]!, 'SIGKILL');
    const failed = await proc.waitForLog('replacement worker did not start', 15_000);
    expect(failed.level).toBe(50);
    expect(failed.code).toBe('SWITCHYARD_E_PLUGIN_TIMEOUT');
    expect(failed.err).toBe(
      'plugin "start-delay" did not finish starting within 1s (start hook of service "default"); raise plugin_timeout if it needs longer',
    );
    rmSync(flag);
    await proc.waitForLog('replacement worker listening', 15_000);
    expect(await proc.workerPids()).toHaveLength(2);
    expect((await exchange(proxy, 'x')).toString()).toBe('a\nx');
  });

  it('one stuck where plugin_timeout does not reach: killed after the bound, saying what to raise; a later replacement serves', async () => {
    const { proc, flag, proxy, pids } = await startWith('block_apply: true');
    process.kill(pids[0]!, 'SIGKILL');
    await proc.waitForLog('worker died', 5_000);
    const diedAt = Date.now();
    const stuck = await proc.waitForLog('replacement worker did not start', 30_000);
    // 1s for each of 6 plugin steps + 10s, counted from the fork (at once: a first crash has no back-off).
    expect(Date.now() - diedAt).toBeGreaterThanOrEqual(15_500);
    expect(stuck.code).toBe('SWITCHYARD_E_WORKER_START_TIMEOUT');
    expect(String(stuck.err)).toMatch(
      /^workers did not listen within 16s \(worker \d+, pid \d+: still loading its config and plugins\); .*raise plugin_timeout if a plugin needs longer to load, apply or start$/,
    );
    // It is past its apply: the next replacement may start.
    rmSync(flag);
    // Killed by the primary, then replaced again.
    await proc.waitForLog('worker died', 5_000, 2);
    await proc.waitForLog('replacement worker listening', 15_000);
    expect(await proc.workerPids()).toHaveLength(2);
    expect((await exchange(proxy, 'y')).toString()).toBe('a\ny');
  }, 55_000);
});
