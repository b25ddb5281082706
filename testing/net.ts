import { once } from 'node:events';
import { type AddressInfo, connect, createServer } from 'node:net';

/** Splits `host:port` or `[v6]:port` into what `net.connect` takes. */
export function hostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  if (colon < 0) throw new Error(`"${address}" is not "host:port"`);
  return { host: address.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(address.slice(colon + 1)) };
}

/** `host:port`, with IPv6 hosts in brackets. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * A loopback port nothing listens on: bound by the OS, then closed. Connects to it are refused
 * until someone binds it again (another process could, so use it at once).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = createServer();
  s.listen(0, host);
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/**
 * One whole exchange: connects to `address`, sends `payload` followed by FIN (or nothing, and
 * no FIN, when `payload` is undefined), and resolves with every byte received until the
 * connection closes. Rejects on a reset or other socket error, and after `timeoutMs` with
 * what arrived so far.
 */
export function exchange(address: string, payload?: string | Buffer, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ ...hostPort(address), allowHalfOpen: false });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(`exchange with ${address} timed out; got ${JSON.stringify(String(Buffer.concat(chunks)))}`),
      );
    }, timeoutMs);
    socket.on('connect', () => {
      if (payload !== undefined) socket.end(payload);
    });
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}
