import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../testing/index.js';

/** A real NGINX (Debian's nginx with libnginx-mod-stream) in the foreground, for interop tests. */
export interface Nginx {
  /** `127.0.0.1:port` of the stream server. */
  address: string;
  /** The stream access log written so far. */
  accessLog(): string;
  /** Kills it and removes its files (the kit calls it: `kit.track(...)`). */
  close(): Promise<void>;
}

export const NGINX = '/usr/sbin/nginx';
export const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

/**
 * Starts NGINX, one process, with `server(port, log)`: the body of a `stream { server {...} }`
 * listening on 127.0.0.1:port, with `log` the access log path to use.
 */
export async function startNginx(
  server: (port: number, log: string) => string,
  logFormat: string,
): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-nginx-'));
  const log = join(dir, 'access.log');
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const file = join(dir, 'nginx.conf');
    writeFileSync(
      file,
      `load_module ${STREAM_MODULE};
daemon off;
master_process off;
pid ${join(dir, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 64; }
stream {
  log_format probe '${logFormat}';
  server {
${server(port, log)}
  }
}
`,
    );
    const child = spawn(NGINX, ['-p', dir, '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stderr!.on('data', (c) => {
      output += c.toString();
    });
    if (await listening(child, port)) {
      return {
        address: `127.0.0.1:${port}`,
        accessLog: () => (existsSync(log) ? readFileSync(log, 'utf8') : ''),
        async close() {
          await kill(child);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await kill(child);
    if (!/Address already in use/i.test(output)) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`nginx did not start:\n${output}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error('nginx: no free port after 5 attempts');
}

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

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await once(child, 'exit');
}
