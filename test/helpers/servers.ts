// Legacy fixtures, kept only for the test files that were written against them before
// switchyard/testing existed (listed in biome.json and test/core/sdk-boundary.test.ts as
// pending migration). New tests use switchyard/testing.
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';

/** A TCP server on 127.0.0.1 with a random port, tracking its sockets so `close()` ends everything. */
export interface TestServer {
  server: Server;
  port: number;
  address: string;
  sockets: Set<Socket>;
  /** Connections accepted so far. */
  accepted: number;
  close(): Promise<void>;
}

export async function startServer(
  onConnection: (socket: Socket) => void,
  host = '127.0.0.1',
): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    result.accepted++;
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const result: TestServer = {
    server,
    port,
    address: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    sockets,
    accepted: 0,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return result;
}

/** Echo server (half-close aware: ends its side after the client's FIN). */
export function startEcho(host?: string): Promise<TestServer> {
  return startServer((socket) => socket.pipe(socket), host);
}

/** Server that writes `name\n` on connect, then echoes. Handy to see which backend answered. */
export function startNamed(name: string): Promise<TestServer> {
  return startServer((socket) => {
    socket.write(`${name}\n`);
    socket.pipe(socket);
  });
}

/** A port on which nothing listens (bound then closed). */
export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Connects, optionally sends `payload` then FIN, and resolves with everything received until close. */
export function exchange(address: string, payload?: string | Buffer, timeoutMs = 5000): Promise<Buffer> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(colon + 1));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host, port, allowHalfOpen: false });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`exchange with ${address} timed out; got ${Buffer.concat(chunks).toString()}`));
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

/** Opens a connection and resolves once connected. */
export async function open(address: string, allowHalfOpen = false): Promise<Socket> {
  const colon = address.lastIndexOf(':');
  const socket = connect({
    host: address.slice(0, colon).replace(/^\[|\]$/g, ''),
    port: Number(address.slice(colon + 1)),
    allowHalfOpen,
  });
  await once(socket, 'connect');
  return socket;
}

/** Reads from `socket` until `n` bytes arrived. */
export function readBytes(socket: Socket, n: number, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`read ${got}/${n} bytes before timeout`));
    }, timeoutMs);
    const onData = (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= n) {
        cleanup();
        const all = Buffer.concat(chunks);
        if (all.length > n) socket.unshift(all.subarray(n));
        resolve(all.subarray(0, n));
      }
    };
    const onClose = () => {
      cleanup();
      reject(new Error(`closed after ${got}/${n} bytes`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/** Polls `check` until it returns true (or throws after `timeoutMs`). */
export async function waitFor(check: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
