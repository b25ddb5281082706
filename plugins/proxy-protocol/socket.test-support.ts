import { connect, type Socket } from 'node:net';
import { parseProxyHeader } from './parse.js';

/**
 * Raw client sockets for the PROXY protocol tests: bound to a chosen 127.x source address,
 * written to byte by byte, reset before the connect completes (an untrusted peer) — cases
 * the test kit's clients do not cover. Resets are recorded in `lastError`, never thrown.
 */
export type RawClient = Socket & { lastError?: string };

/** Connects to `address` (optionally from `from`); resolves once connected or closed. */
export async function rawClient(address: string, from?: string): Promise<RawClient> {
  const colon = address.lastIndexOf(':');
  const socket: RawClient = connect({
    host: address.slice(0, colon).replace(/^\[|\]$/g, ''),
    port: Number(address.slice(colon + 1)),
    ...(from === undefined ? {} : { localAddress: from }),
  });
  socket.on('error', (e: NodeJS.ErrnoException) => {
    socket.lastError = e.code ?? e.message;
  });
  await new Promise((resolve) => {
    socket.once('connect', resolve);
    socket.once('close', resolve);
  });
  return socket;
}

/** Resolves with the socket's error code (`ECONNRESET`) or null once it is closed. */
export async function closed(socket: RawClient): Promise<string | null> {
  if (!socket.closed) await new Promise((resolve) => socket.once('close', resolve));
  return socket.lastError ?? null;
}

/** Reads until `done(buffered)` gives a length; leaves what follows in the socket. */
function readWhile(
  socket: Socket,
  done: (b: Buffer) => number,
  what: string,
  timeoutMs = 5000,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const finish = (err: Error | null, n = 0) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (err !== null) {
        reject(err);
        return;
      }
      if (n < got.length) socket.unshift(got.subarray(n));
      resolve(got.subarray(0, n));
    };
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const n = done(got);
      if (n >= 0) finish(null, n);
    };
    const onClose = () => finish(new Error(`closed before ${what}; got ${JSON.stringify(got.toString())}`));
    const timer = setTimeout(
      () => finish(new Error(`no ${what}; got ${JSON.stringify(got.toString())}`)),
      timeoutMs,
    );
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.resume();
  });
}

/** Exactly `n` bytes. */
export function readBytes(socket: Socket, n: number, timeoutMs?: number): Promise<Buffer> {
  return readWhile(socket, (b) => (b.length >= n ? n : -1), `${n} bytes`, timeoutMs);
}

/** One `\n`-terminated line, without the `\n`. */
export async function line(socket: Socket): Promise<string> {
  const read = await readWhile(socket, (b) => b.indexOf(10) + (b.includes(10) ? 1 : -1), 'a line');
  return read.subarray(0, read.length - 1).toString();
}

/**
 * A backend's connection handler that says what header it got: reads a PROXY header (or
 * finds none before the first line), then answers `<name> v1|v2 <source>` or `<name> none`
 * and closes. For tests of backends that other plugins hand out (discovery sources).
 */
export function reportHeader(name: string): (socket: Socket) => void {
  return (socket) => {
    let buffered = Buffer.alloc(0);
    socket.on('data', function onData(chunk: Buffer) {
      buffered = Buffer.concat([buffered, chunk]);
      const result = parseProxyHeader(buffered, 4096);
      if (result === 'more') return;
      socket.off('data', onData);
      if ('invalid' in result) {
        socket.end(`${name} none\n`);
        return;
      }
      const s = result.source;
      socket.end(`${name} v${result.version} ${s ? `${s.address}:${s.port}` : '-'}\n`);
    });
  };
}
