import { execFileSync } from 'node:child_process';

/** One TCP socket as `ss` reports it: its inode and the processes holding a descriptor of it. */
export interface SocketInfo {
  inode: number;
  pids: number[];
  peer: string;
}

/**
 * The TCP sockets on local port `port` in state `state` (`listening` or `established`), with the
 * pids that hold them (`ss -p`, iproute2): which process may accept on a listening socket, which
 * holds a connection.
 */
export function socketsOn(port: number, state: 'listening' | 'established'): SocketInfo[] {
  const out = execFileSync('ss', ['-Htnpe', 'state', state, `( sport = :${port} )`], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => ({
      inode: Number(/\bino:(\d+)/.exec(line)?.[1] ?? 0),
      pids: [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])).sort((a, b) => a - b),
      peer: line.trim().split(/\s+/)[3] ?? '',
    }));
}

/** The port of `host:port`. */
export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}
