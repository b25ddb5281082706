// Child processes of the balancer bench: all tracked, all ended on exit, error or Ctrl-C.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** @type {Set<import('node:child_process').ChildProcess>} */
const live = new Set();

/**
 * Spawns a tracked child; resolves once it printed its first stdout line (parsed as JSON: the
 * child's "ready" message).
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ cwd?: string, timeoutMs?: number }} [options]
 */
export async function startChild(cmd, args, { cwd, timeoutMs = 15000 } = {}) {
  const child = spawn(cmd, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  child.on('exit', () => live.delete(child));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c) => {
    stderr = (stderr + c).slice(-8192);
  });
  child.stdout.setEncoding('utf8');
  let buffered = '';
  const lines = [];
  const waiters = [];
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      if (waiters.length > 0) waiters.shift()(line);
      else lines.push(line);
    }
  });
  /** Next stdout line as JSON. */
  const next = (ms = timeoutMs) =>
    new Promise((resolve, reject) => {
      if (lines.length > 0) return resolve(JSON.parse(lines.shift()));
      const timer = setTimeout(
        () => reject(new Error(`${cmd} ${args.join(' ')}: no answer in ${ms} ms\n${stderr}`)),
        ms,
      );
      child.once('exit', (code) => reject(new Error(`${cmd} ${args.join(' ')} exited (${code})\n${stderr}`)));
      waiters.push((line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      });
    });
  return {
    child,
    next,
    /** Sends one command line; resolves with the answer line. */
    ask: (command, ms) => {
      child.stdin.write(`${command}\n`);
      return next(ms);
    },
    stderr: () => stderr,
    stop: () => stop(child),
  };
}

/** Spawns a child that prints nothing useful (the proxy); resolves once `port` accepts. */
export async function startServer(cmd, args, port, { cwd, timeoutMs = 15000 } = {}) {
  const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  child.on('exit', () => live.delete(child));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c) => {
    stderr = (stderr + c).slice(-8192);
  });
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited (${child.exitCode})\n${stderr}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return { child, stop: () => stop(child) };
    if (Date.now() > end) throw new Error(`${args.join(' ')} did not listen on ${port}\n${stderr}`);
    await sleep(50);
  }
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await once(child, 'exit');
  clearTimeout(timer);
}

/** A port nothing listens on right now (bound, then released). */
export async function freePort() {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = /** @type {net.AddressInfo} */ (s.address());
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** Ends every child still running (normal end, error, Ctrl-C). */
export function stopAll() {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}
for (const signal of ['SIGINT', 'SIGTERM'])
  process.once(signal, () => {
    stopAll();
    process.exit(130);
  });
process.once('exit', stopAll);
