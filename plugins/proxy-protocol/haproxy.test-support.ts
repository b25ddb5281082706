import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../testing/index.js';

/** A real HAProxy (Debian's /usr/sbin/haproxy) in the foreground, for interop tests. */
export interface Haproxy {
  /** `127.0.0.1:port` of the frontend. */
  address: string;
  /** What HAProxy logged so far (`log stdout`). */
  readonly output: string;
  /** Kills it and removes its files (the kit calls it: `kit.track(...)`). */
  close(): Promise<void>;
}

export const HAPROXY = '/usr/sbin/haproxy';

/**
 * Starts HAProxy with `config(port)` (the frontend binds 127.0.0.1:port, a free port picked
 * here; retried on a bind race). Logs go to stdout, which the test reads.
 */
export async function startHaproxy(config: (port: number) => string): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-haproxy-'));
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, config(port));
    const child = spawn(HAPROXY, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (c) => {
      output += c.toString();
    });
    child.stderr!.on('data', (c) => {
      output += c.toString();
    });
    // The probe can reach another program that took the port between freePort() and
    // HAProxy's bind (HAProxy then exits with "cannot bind"): only a HAProxy still running a
    // moment later, without a bind error, owns its frontends.
    if ((await listening(child, port)) && (await stillUp(child, () => output))) {
      return {
        address: `127.0.0.1:${port}`,
        get output() {
          return output;
        },
        async close() {
          await kill(child);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await kill(child);
    if (!/cannot bind|Address already in use/i.test(output))
      throw new Error(`haproxy did not start:\n${output}`);
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error('haproxy: no free port after 5 attempts');
}

/** Polls the frontend port until it accepts (or the process exits): at most 5 s. */
async function listening(child: ChildProcess, port: number): Promise<boolean> {
  const end = Date.now() + 5000;
  while (Date.now() < end && child.exitCode === null) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** HAProxy binds every frontend before serving, or exits: 200 ms without an exit or a bind error. */
async function stillUp(child: ChildProcess, output: () => string): Promise<boolean> {
  await new Promise((r) => setTimeout(r, 200));
  return (
    child.exitCode === null &&
    child.signalCode === null &&
    !/cannot bind|Address already in use/i.test(output())
  );
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await once(child, 'exit');
}

/** The shared part of every test config: TCP mode, short timeouts, logs to stdout. */
export const HAPROXY_DEFAULTS = `
global
  log stdout format raw local0 info
defaults
  mode tcp
  log global
  timeout connect 2s
  timeout client 10s
  timeout server 10s
`;
