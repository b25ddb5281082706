// What the numbers were measured on, recorded with every run.
import os from 'node:os';
import { run } from './procs.js';

/**
 * @param {boolean} haproxyInstalled
 * @param {import('./node-binary.js').NodeBinary} node  the proxies' Node
 */
export async function describeMachine(haproxyInstalled, node) {
  /**
   * @param {string} cmd
   * @param {string[]} args
   * @param {RegExp} pattern
   */
  const version = async (cmd, args, pattern) => {
    try {
      const { stdout, stderr } = await run(cmd, args, 5000);
      return pattern.exec(stdout + stderr)?.[1] ?? null;
    } catch {
      return null;
    }
  };
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    /** The Node the proxies ran on (`--node`), and its path. */
    node: node.version,
    nodePath: node.path,
    /** The Node of the runner, clients and Node backends. */
    runnerNode: process.version,
    haproxy: haproxyInstalled ? await version('haproxy', ['-v'], /version (\S+)/) : null,
    redis: await version('redis-server', ['--version'], /v=(\S+)/),
    iperf3: await version('iperf3', ['--version'], /iperf (\S+)/),
    loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}
