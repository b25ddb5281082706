import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './servers.js';

export interface DnsRecords {
  /** Lines of a hosts file: `127.0.0.11 web.sy.test`. Re-read on SIGHUP. */
  hosts?: string[];
  /** `--srv-host` values: `_x._tcp.sy.test,target,port,priority,weight`. Need a restart to change. */
  srv?: string[];
}

/**
 * A real dnsmasq on 127.0.0.1 and a free port, answering only from its own records for the
 * `sy.test` domain (NXDOMAIN for unknown names there, REFUSED elsewhere: no upstream). Records'
 * TTL is `ttl` seconds. `stop()` ends it and removes its files.
 */
export class Dnsmasq {
  readonly dir = mkdtempSync(join(tmpdir(), 'switchyard-dnsmasq-'));
  readonly hostsFile = join(this.dir, 'hosts');
  readonly confFile = join(this.dir, 'dnsmasq.conf');
  port = 0;
  #child: ChildProcess | undefined;
  #log = '';

  private constructor(
    private readonly ttl: number,
    private readonly logQueries: boolean,
  ) {}

  /** `logQueries`: log every query, for `queries()` to count. */
  static async start(records: DnsRecords, ttl = 1, logQueries = false): Promise<Dnsmasq> {
    const d = new Dnsmasq(ttl, logQueries);
    d.port = await freeUdpAndTcpPort();
    d.#write(records);
    await d.#spawn();
    return d;
  }

  /** Queries received so far for `name` of record type `type` (needs `logQueries`). */
  queries(type: string, name: string): number {
    return this.#log.split('\n').filter((l) => l.includes(`query[${type}] ${name} from`)).length;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Replaces the hosts file and makes dnsmasq re-read it (SIGHUP). */
  async setHosts(lines: string[]): Promise<void> {
    writeFileSync(this.hostsFile, `${lines.join('\n')}\n`);
    const before = this.#log.length;
    this.#child?.kill('SIGHUP');
    await waitUntil(
      () => this.#log.slice(before).includes(`read ${this.hostsFile}`),
      5000,
      'dnsmasq to re-read hosts',
    );
  }

  /** SRV records live in the config file, which dnsmasq reads only at start: restart on the same port. */
  async restartWith(records: DnsRecords): Promise<void> {
    await this.kill();
    this.#write(records);
    await this.#spawn();
  }

  /** Stops the server (the port stays unanswered). */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGTERM');
    await once(child, 'exit');
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  #write(records: DnsRecords): void {
    writeFileSync(this.hostsFile, `${(records.hosts ?? []).join('\n')}\n`);
    writeFileSync(this.confFile, (records.srv ?? []).map((s) => `srv-host=${s}\n`).join(''));
  }

  async #spawn(): Promise<void> {
    const args = [
      '--keep-in-foreground',
      '--log-facility=-',
      `--port=${this.port}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      `--addn-hosts=${this.hostsFile}`,
      `--conf-file=${this.confFile}`,
      '--local=/sy.test/',
      `--local-ttl=${this.ttl}`,
      '--pid-file=',
      ...(this.logQueries ? ['--log-queries'] : []),
    ];
    // As root, dnsmasq would switch to its own user, who cannot read this test's private folder.
    if (process.getuid?.() === 0) args.push('--user=root');
    const child = spawn('/usr/sbin/dnsmasq', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    const onData = (c: Buffer) => {
      this.#log += c.toString();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    await waitUntil(
      () => this.#log.includes(`read ${this.hostsFile}`) || child.exitCode !== null,
      5000,
      'dnsmasq to start',
    );
    if (child.exitCode !== null) throw new Error(`dnsmasq exited at start: ${this.#log}`);
  }
}

/** A port free for both UDP and TCP on 127.0.0.1 (dnsmasq binds both). */
async function freeUdpAndTcpPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    const udp = createSocket('udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(port, '127.0.0.1', () => resolve());
      });
      return port;
    } catch {
      // taken for UDP: try another
    } finally {
      try {
        udp.close();
      } catch {
        // never bound
      }
    }
  }
  throw new Error('no free port for dnsmasq');
}

async function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
