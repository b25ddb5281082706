import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { createTestKit, type TestKit } from '../../testing/index.js';
import { duplicateKeys } from './strict-json.js';

const BIN = fileURLToPath(new URL('../../bin/switchyard.js', import.meta.url));

/** A service-scope plugin, loaded by path, that writes the worker's pid to each client first. */
const PID_STAMP = `export default {
  name: 'pid-stamp',
  apply(service) {
    service.hooks.established.tap('pid-stamp', (s) => s.client.write(process.pid + '\\n'));
  },
};
`;

export type LogLine = Record<string, unknown> & { msg?: string; level?: number; pid?: number };

/**
 * The real CLI (`node bin/switchyard.js`, built by `npm run build`) in its own process group,
 * with JSON logs parsed line by line. `kill()` ends the whole group (primary and workers).
 */
export class ClusterProcess {
  readonly logs: LogLine[] = [];
  /**
   * Log lines that carry a key twice (JSON.parse keeps one silently). `kill()` fails the test
   * when there are any, so every test through the CLI parses its log strictly.
   */
  readonly duplicateKeyLines: string[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), 'switchyard-cluster-'));
  readonly configFile = join(this.dir, 'switchyard.yaml');
  readonly pidStamp = join(this.dir, 'pid-stamp.js');
  child: ChildProcess | undefined;
  exitCode: number | null | undefined;
  /** The signal that ended the primary (exitCode is null then). */
  exitSignal: NodeJS.Signals | null = null;
  #partial = '';

  constructor() {
    writeFileSync(this.pidStamp, PID_STAMP);
  }

  writeConfig(yaml: string): void {
    writeFileSync(this.configFile, yaml);
  }

  /**
   * `fdLimit` sets the open-files limit of the primary and its workers (`ulimit -n`: soft and
   * hard, since Node raises its soft limit to the hard one at start). `pretty`: human-readable
   * logs (each line is then kept as `{ msg: line }`).
   */
  start(options: { fdLimit?: number; pretty?: boolean } = {}): void {
    const args = [BIN, '--config', this.configFile, options.pretty === true ? '--pretty' : '--no-pretty'];
    const child =
      options.fdLimit === undefined
        ? spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn(
            '/bin/sh',
            ['-c', `ulimit -n ${options.fdLimit} && exec "$0" "$@"`, process.execPath, ...args],
            {
              detached: true,
              stdio: ['ignore', 'pipe', 'pipe'],
            },
          );
    this.child = child;
    const onData = (chunk: Buffer) => {
      const text = this.#partial + chunk.toString();
      const lines = text.split('\n');
      this.#partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line.trim() === '') continue;
        try {
          this.logs.push(JSON.parse(line) as LogLine);
          const twice = duplicateKeys(line);
          if (twice.length > 0) this.duplicateKeyLines.push(`${twice.join(', ')} twice in ${line}`);
        } catch {
          this.logs.push({ msg: line });
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code, signal) => {
      this.exitCode = code;
      this.exitSignal = signal;
    });
  }

  /**
   * Closes our ends of the process's stdout and stderr, as when the parent that started it is
   * gone: its next writes meet a closed peer (EPIPE). No log line arrives after this.
   */
  closeOutput(): void {
    this.child?.stdout?.destroy();
    this.child?.stderr?.destroy();
  }

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  find(msg: string | RegExp): LogLine | undefined {
    return this.logs.find((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg))));
  }

  async waitForLog(msg: string | RegExp, timeoutMs = 15_000, count = 1): Promise<LogLine> {
    await poll(
      () =>
        this.logs.filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg)))).length >=
        count,
      timeoutMs,
      `log "${msg}" x${count}; got:\n${this.logs.map((l) => JSON.stringify(l)).join('\n')}`,
    );
    return this.logs.filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg))))[
      count - 1
    ]!;
  }

  /** Starts and waits for the primary's start line; returns the proxy and admin addresses. */
  async started(): Promise<{ proxy: string; admin: string; pids: number[] }> {
    const line = await this.waitForLog('switchyard started (cluster primary)', 20_000);
    const services = line.services as Array<{ listen: string[] }>;
    const admin = this.find('admin API listening')?.address as string;
    return { proxy: services[0]!.listen[0]!, admin, pids: line.pids as number[] };
  }

  /** Live worker pids, from the kernel's view of the primary's children. */
  async workerPids(): Promise<number[]> {
    const { execFileSync } = await import('node:child_process');
    try {
      return execFileSync('pgrep', ['-P', String(this.pid)], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map(Number);
    } catch {
      return [];
    }
  }

  signal(sig: NodeJS.Signals): void {
    process.kill(this.pid, sig);
  }

  async waitExit(timeoutMs = 15_000): Promise<number | null> {
    if (this.exitCode !== undefined) return this.exitCode;
    await poll(() => this.exitCode !== undefined, timeoutMs, 'the primary to exit');
    return this.exitCode ?? null;
  }

  /** Kills the process group (primary and workers) and removes the temp folder. */
  async kill(): Promise<void> {
    if (this.child && this.exitCode === undefined) {
      try {
        process.kill(-this.pid, 'SIGKILL');
      } catch {
        // gone already
      }
      if (this.exitCode === undefined) await once(this.child, 'exit').catch(() => {});
    }
    // Workers are in the same group; make sure none outlives the primary.
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // none left
    }
    rmSync(this.dir, { recursive: true, force: true });
    const twice = this.duplicateKeyLines.splice(0);
    if (twice.length > 0) throw new Error(`log lines with a duplicate key:\n${twice.join('\n')}`);
  }
}

/** Polls an (async) check every 25 ms. */
export async function poll(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Opens a session (a client of `kit`, closed with it) through a proxy that runs pid-stamp;
 * resolves with the worker's pid and the socket.
 */
export async function stampedSession(
  kit: TestKit,
  address: string,
): Promise<{ pid: number; socket: Socket; rest: string }> {
  const { socket } = await kit.connect(address);
  let text = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no pid line; got "${text}"`)), 10_000);
    const onData = (c: Buffer) => {
      text += c.toString();
      if (text.includes('\n')) {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        // Keep what follows buffered for the next reader instead of dropping it.
        socket.pause();
        resolve();
      }
    };
    const onClose = () => {
      clearTimeout(timer);
      reject(new Error(`closed before the pid line; got "${text}"`));
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
  const nl = text.indexOf('\n');
  return { pid: Number(text.slice(0, nl)), socket, rest: text.slice(nl + 1) };
}

/**
 * Opens stamped sessions until at least `min` are open and every worker in `pids` serves one
 * (at most `max`). Round-robin alternates, but with reuseport the kernel spreads connections
 * by a hash of their addresses, so a few connections can all land on one worker.
 */
export async function stampedSessionsOnEvery(
  kit: TestKit,
  address: string,
  pids: readonly number[],
  options: { min: number; max?: number },
): Promise<Array<{ pid: number; socket: Socket; rest: string }>> {
  const max = options.max ?? 64;
  const out: Array<{ pid: number; socket: Socket; rest: string }> = [];
  while (out.length < options.min || !pids.every((p) => out.some((s) => s.pid === p))) {
    if (out.length >= max)
      throw new Error(
        `${max} sessions did not reach every worker (${pids.join(', ')}): ${out.map((s) => s.pid)}`,
      );
    out.push(await stampedSession(kit, address));
  }
  return out;
}

/** A JSON call to the admin API. */
export async function admin(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // metrics text
  }
  return { status: res.status, body: parsed };
}

/** Reads from `socket` until the text received ends with `suffix`. */
export function readUntil(socket: Socket, suffix: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(
      () => done(new Error(`no "${suffix}" within ${timeoutMs} ms; got "${text}"`)),
      timeoutMs,
    );
    const onData = (c: Buffer) => {
      text += c.toString();
      if (text.endsWith(suffix)) done();
    };
    const onClose = () => done(new Error(`closed before "${suffix}"; got "${text}"`));
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(text);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.resume();
  });
}

/**
 * The state a cluster test holds — the CLI (primary and workers), and a test kit for backend
 * servers and client sockets — cleaned up after every test of the `describe` it is called in:
 * the kit closed (clients, then servers), the process group killed.
 */
export function clusterFixture(): { cluster: ClusterProcess | undefined; kit: TestKit } {
  const t = { cluster: undefined as ClusterProcess | undefined, kit: createTestKit() };
  afterEach(async () => {
    try {
      await t.kit.close();
    } finally {
      await t.cluster?.kill();
      t.cluster = undefined;
    }
  });
  return t;
}
