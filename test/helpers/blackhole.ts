// Legacy fixtures, kept only for the test files that were written against them before
// switchyard/testing existed (listed in biome.json and test/core/sdk-boundary.test.ts as
// pending migration). New tests use switchyard/testing.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/**
 * A loopback port whose SYNs go unanswered: a listener (python3, which unlike Node does not
 * accept by itself) with backlog 0 that never accepts, its accept queue filled by a few
 * connections we hold. Further connects hang until the caller's connect timeout.
 */
export interface Blackhole {
  address: string;
  port: number;
  close(): Promise<void>;
}

export async function startBlackhole(): Promise<Blackhole> {
  const child: ChildProcess = spawn(
    'python3',
    [
      '-c',
      'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(600)',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  const fillers: Socket[] = [];
  // Fill the accept queue; the kernel completes these handshakes until the queue is full.
  for (let i = 0; i < 4; i++) {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    fillers.push(s);
  }
  await new Promise((r) => setTimeout(r, 100));
  return {
    address: `127.0.0.1:${port}`,
    port,
    async close() {
      for (const s of fillers) s.destroy();
      child.kill('SIGKILL');
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}
