import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { joinHostPort } from './net.js';

/**
 * A loopback port whose SYNs go unanswered, so connects hang until the caller's connect
 * timeout (ETIMEDOUT): a listener with backlog 0 that never accepts, its accept queue filled
 * by a few connections held here. Node accepts by itself, so the listener is a `python3`
 * child process (Debian package `python3`).
 */
export class Blackhole {
  /** @internal */
  constructor(
    readonly host: string,
    readonly port: number,
    private readonly child: ChildProcess,
    private readonly fillers: Socket[],
  ) {}

  get address(): string {
    return joinHostPort(this.host, this.port);
  }

  /** Kills the listener and drops the held connections. Safe to call twice. */
  async close(): Promise<void> {
    for (const s of this.fillers) s.destroy();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await once(this.child, 'exit');
  }
}

/** @internal Starts a blackhole; see `Blackhole`. */
export async function startBlackhole(): Promise<Blackhole> {
  const child = spawn(
    'python3',
    [
      '-c',
      'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(600)',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`blackhole needs python3: ${err.message}`)));
    child.stdout!.once('data', (line: Buffer) => resolve(Number(line.toString().trim())));
    child.once('exit', (code) => reject(new Error(`blackhole listener exited with ${code}`)));
  });
  const fillers: Socket[] = [];
  // Fill the accept queue: the kernel completes these handshakes until it is full.
  for (let i = 0; i < 4; i++) {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    fillers.push(s);
  }
  await new Promise((r) => setTimeout(r, 100));
  return new Blackhole('127.0.0.1', port, child, fillers);
}
