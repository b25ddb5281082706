import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './servers.js';

const run = promisify(execFile);

/**
 * A real one-member etcd (Debian etcd-server) on 127.0.0.1, free client and peer ports, a
 * temporary data directory. `kill()` stops it hard (SIGKILL); `start()` again brings it back
 * on the same ports with its data; `stop()` ends it and removes the directory.
 */
export class EtcdServer {
  readonly dir = mkdtempSync(join(tmpdir(), 'switchyard-etcd-'));
  clientPort = 0;
  peerPort = 0;
  #child: ChildProcess | undefined;
  #log = '';

  static async start(): Promise<EtcdServer> {
    const etcd = new EtcdServer();
    etcd.clientPort = await freePort();
    etcd.peerPort = await freePort();
    await etcd.start();
    return etcd;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  async start(): Promise<void> {
    const client = this.endpoint;
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const child = spawn(
      '/usr/bin/etcd',
      [
        '--name=test',
        `--data-dir=${join(this.dir, 'data')}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=test=${peer}`,
        '--log-level=warn',
        '--logger=zap',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#child = child;
    const onData = (c: Buffer) => {
      this.#log = (this.#log + c.toString()).slice(-20_000);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const end = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`etcd exited at start: ${this.#log}`);
      try {
        await this.ctl('endpoint', 'health');
        return;
      } catch {
        if (Date.now() > end) throw new Error(`etcd did not become healthy: ${this.#log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Runs etcdctl (API v3) against this server; resolves with its output. */
  async ctl(...args: string[]): Promise<string> {
    const { stdout } = await run(
      '/usr/bin/etcdctl',
      [`--endpoints=${this.endpoint}`, '--command-timeout=3s', ...args],
      {
        env: { ...process.env, ETCDCTL_API: '3' },
      },
    );
    return stdout;
  }

  /** Stops etcd at once, as a crash would. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
