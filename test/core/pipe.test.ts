import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { open, readBytes, startEcho, startServer, type TestServer, waitFor } from '../helpers/servers.js';

let backends: TestServer[] = [];
let proxy: TestProxy | undefined;
const clients: Socket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await proxy?.stop();
  proxy = undefined;
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

async function proxyTo(extra = ''): Promise<TestProxy> {
  proxy = await startProxy(`
listen: 127.0.0.1:0
backends:
${backends.map((b) => `  - address: ${b.address}`).join('\n')}
${extra}
`);
  return proxy;
}

/** Writes `data` in random-sized chunks, respecting backpressure, then ends. */
async function writeChunked(socket: Socket, data: Buffer): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const n = Math.min(data.length - off, 1 + Math.floor(Math.random() * 70_000));
    if (!socket.write(data.subarray(off, off + n))) await once(socket, 'drain');
    off += n;
  }
  socket.end();
}

function collect(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c) => chunks.push(c));
  return new Promise((resolve, reject) => {
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('byte-exact piping', () => {
  it('carries a few MB both ways, randomly chunked, across many sessions at once', async () => {
    backends = [await startEcho(), await startEcho()];
    await proxyTo();
    const sessions = 24;
    const runs = Array.from({ length: sessions }, async (_, i) => {
      const payload = randomBytes(i % 4 === 0 ? 4 * 1024 * 1024 : 256 * 1024 + i * 977);
      const client = await open(proxy!.address);
      clients.push(client);
      const received = collect(client);
      await writeChunked(client, payload);
      const back = await received;
      expect(back.length).toBe(payload.length);
      expect(sha(back)).toBe(sha(payload));
    });
    await Promise.all(runs);
    await waitFor(() => proxy!.service.sessions.size === 0, 5000, 'sessions to close');
    expect(proxy!.service.counters.closed).toBe(sessions);
  });

  it('accounts bytes in and out per session and per backend', async () => {
    let seen: { in: number; out: number } | undefined;
    backends = [await startServer((s) => s.on('data', () => {}).on('end', () => s.end(Buffer.alloc(300))))];
    await proxyTo();
    proxy!.service.hooks.closed.tap('test', (s) => {
      seen = { in: s.bytesIn, out: s.bytesOut };
    });
    const client = await open(proxy!.address);
    clients.push(client);
    const got = collect(client);
    client.end(Buffer.alloc(1000));
    expect((await got).length).toBe(300);
    await waitFor(() => seen !== undefined);
    expect(seen).toEqual({ in: 1000, out: 300 });
    const b = proxy!.service.backends.list()[0]!;
    expect([b.bytesIn, b.bytesOut, b.total, b.active]).toEqual([1000, 300, 1, 0]);
  });
});

describe('half-close', () => {
  it('client FIN reaches the backend, which can still answer', async () => {
    // The backend answers only after it has seen EOF: it counts the bytes it got.
    backends = [
      await startServer((s) => {
        let n = 0;
        s.on('data', (c: Buffer) => {
          n += c.length;
        });
        s.on('end', () => s.end(`got ${n}`));
      }),
    ];
    await proxyTo();
    const client = await open(proxy!.address);
    clients.push(client);
    const got = collect(client);
    client.end(Buffer.alloc(12345));
    expect((await got).toString()).toBe('got 12345');
  });

  it('backend FIN reaches the client, which can still send', async () => {
    let backendGot = '';
    const backendDone = new Promise<void>((resolve) => {
      backends = [];
      startServer((s) => {
        s.end('bye early'); // backend half-closes first
        s.on('data', (c: Buffer) => {
          backendGot += c.toString();
        });
        s.on('end', () => resolve());
      }).then((b) => backends.push(b));
    });
    await waitFor(() => backends.length === 1);
    await proxyTo();
    const client = await open(proxy!.address, true);
    clients.push(client);
    client.setEncoding('utf8');
    let fromBackend = '';
    client.on('data', (c: string) => {
      fromBackend += c;
    });
    await once(client, 'end');
    expect(fromBackend).toBe('bye early');
    client.end('still talking');
    await backendDone;
    expect(backendGot).toBe('still talking');
  });
});

describe('backpressure', () => {
  it('a slow reader does not make the proxy buffer without bound', async () => {
    const total = 64 * 1024 * 1024;
    let producer: Socket | undefined;
    backends = [
      await startServer((s) => {
        producer = s;
        const chunk = Buffer.alloc(64 * 1024, 7);
        let sent = 0;
        const pump = () => {
          while (sent < total) {
            sent += chunk.length;
            if (!s.write(chunk)) return void s.once('drain', pump);
          }
          s.end();
        };
        pump();
      }),
    ];
    await proxyTo();
    const client = await open(proxy!.address);
    clients.push(client);
    client.pause(); // the slow reader: reads nothing for a while
    await waitFor(() => producer !== undefined);
    const session = [...proxy!.service.sessions.values()][0]!;
    // Let buffers fill up, then check that the proxy stopped reading from the backend.
    let last = -1;
    await waitFor(
      () => {
        const now = session.upstream?.bytesRead ?? 0;
        const stable = now === last && now > 0;
        last = now;
        return stable;
      },
      10_000,
      'upstream reads to stall',
    );
    await new Promise((r) => setTimeout(r, 200));
    const readByProxy = session.upstream!.bytesRead;
    expect(readByProxy).toBeLessThan(16 * 1024 * 1024); // socket buffers only, nowhere near 64 MB
    expect(session.client.writableLength).toBeLessThan(2 * 1024 * 1024);
    // Now read everything: every byte arrives.
    let received = 0;
    client.on('data', (c: Buffer) => {
      received += c.length;
    });
    client.resume();
    await once(client, 'end');
    expect(received).toBe(total);
  });
});

describe('resets', () => {
  it('a backend reset reaches the client as a reset, and other sessions carry on', async () => {
    const held: Socket[] = [];
    backends = [await startServer((s) => held.push(s))];
    await proxyTo();
    const a = await open(proxy!.address);
    const b = await open(proxy!.address);
    clients.push(a, b);
    await waitFor(() => held.length === 2);
    const aError = new Promise<NodeJS.ErrnoException>((resolve) => a.on('error', resolve));
    held[0]!.resetAndDestroy();
    expect((await aError).code).toBe('ECONNRESET');
    // b still works both ways
    held[1]!.write('ping');
    expect((await readBytes(b, 4)).toString()).toBe('ping');
  });

  it('a client reset reaches the backend as a reset', async () => {
    let backendErr: Promise<NodeJS.ErrnoException | undefined> | undefined;
    backends = [
      await startServer((s) => {
        backendErr = new Promise((resolve) => {
          s.removeAllListeners('error');
          s.on('error', resolve);
          s.on('close', () => resolve(undefined));
        });
      }),
    ];
    await proxyTo();
    const a = await open(proxy!.address);
    await waitFor(() => backendErr !== undefined);
    a.resetAndDestroy();
    expect((await backendErr!)?.code).toBe('ECONNRESET');
    await waitFor(() => proxy!.service.sessions.size === 0);
  });
});
