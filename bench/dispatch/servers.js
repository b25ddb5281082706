// redis-server (the backend) and HAProxy (a reference proxy). Neither can be told to pick its
// own port and report it, so a random port below the ephemeral range is tried, and another on
// failure (someone else may hold it).
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { killTree, spawnTracked, waitForLine } from './children.js';

function randomPort() {
  return 20_000 + Math.floor(Math.random() * 12_000);
}

async function withRandomPort(what, start) {
  let lastError;
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      return await start(randomPort());
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`${what}: no free port after 10 attempts: ${lastError?.message}`);
}

/** Resolves once 127.0.0.1:port accepts a connection. */
async function untilListening(port, child, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`port ${port} not listening after ${timeoutMs} ms`);
}

/** Waits until `child` listens on `port`; kills it if it does not. */
async function listeningOrKilled(port, child) {
  try {
    await untilListening(port, child);
  } catch (err) {
    killTree(child);
    throw err;
  }
  return { port, pid: child.pid, stop: () => killTree(child) };
}

/** @returns {Promise<{ port: number, pid: number, stop(): void }>} */
export function startRedis() {
  return withRandomPort('redis-server', async (port) => {
    const child = spawnTracked('redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--maxclients',
      '10000',
      '--loglevel',
      'warning',
    ]);
    return listeningOrKilled(port, child);
  });
}

/** HAProxy with `nbthread` threads in TCP mode in front of 127.0.0.1:target. */
export function startHaproxy(dir, target, nbthread = 2) {
  return withRandomPort('haproxy', async (port) => {
    const config = join(dir, 'haproxy.cfg');
    writeFileSync(
      config,
      [
        'global',
        `  nbthread ${nbthread}`,
        '  maxconn 9000',
        'defaults',
        '  mode tcp',
        '  timeout connect 5s',
        '  timeout client 60s',
        '  timeout server 60s',
        'frontend fe',
        `  bind 127.0.0.1:${port}`,
        '  default_backend be',
        'backend be',
        `  server redis 127.0.0.1:${target}`,
        '',
      ].join('\n'),
    );
    const child = spawnTracked('haproxy', ['-db', '-f', config]);
    return listeningOrKilled(port, child);
  });
}

const PROXY = new URL('./proxy.js', import.meta.url).pathname;

/**
 * A variant of proxy.js. `stats()` asks it for its counters (custom dispatch).
 * @returns {Promise<{ port: number, pid: number, stop(): void, stats(): Promise<object> }>}
 */
export async function startProxy(mode, target, extraArgs = []) {
  const child = spawnTracked(process.execPath, [PROXY, mode, String(target), ...extraArgs]);
  const match = await waitForLine(child, /^ready (\d+)$/, 15_000).catch((err) => {
    killTree(child);
    throw err;
  });
  return {
    port: Number(match[1]),
    pid: child.pid,
    stop: () => killTree(child),
    async stats() {
      const line = waitForLine(child, /^stats (.*)$/, 3000);
      child.kill('SIGUSR2');
      return JSON.parse((await line)[1]);
    },
  };
}
