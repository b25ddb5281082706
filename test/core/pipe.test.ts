import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, type TestBackend, type TestProxy, waitFor } from '../../testing/index.js';

const kit = createTestKit();
afterEach(kit.close);
let backends: TestBackend[] = [];
let proxy: TestProxy;

async function proxyTo(extra = ''): Promise<TestProxy> {
  proxy = await kit.proxy(`
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

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('byte-exact piping', () => {
  it('carries a few MB both ways, randomly chunked, across many sessions at once', async () => {
    backends = [await kit.echo(), await kit.echo()];
    await proxyTo();
    const sessions = 24;
    const runs = Array.from({ length: sessions }, async (_, i) => {
      const payload = randomBytes(i % 4 === 0 ? 4 * 1024 * 1024 : 256 * 1024 + i * 977);
      const client = await kit.connect(proxy);
      const received = client.collect(20_000);
      await writeChunked(client.socket, payload);
      const back = await received;
      expect(back.length).toBe(payload.length);
      expect(sha(back)).toBe(sha(payload));
    });
    await Promise.all(runs);
    await waitFor(() => proxy.service.sessions.size === 0, 5000, 'sessions to close');
    expect(proxy.service.counters.closed).toBe(sessions);
  });

  it('accounts bytes in and out per session and per backend', async () => {
    let seen: { in: number; out: number } | undefined;
    backends = [await kit.backend((s) => s.on('data', () => {}).on('end', () => s.end(Buffer.alloc(300))))];
    await proxyTo();
    proxy.service.hooks.closed.tap('test', (s) => {
      seen = { in: s.bytesIn, out: s.bytesOut };
    });
    const client = await kit.connect(proxy);
    await client.end(Buffer.alloc(1000));
    expect((await client.collect()).length).toBe(300);
    await waitFor(() => seen !== undefined);
    expect(seen).toEqual({ in: 1000, out: 300 });
    const b = proxy.service.backends.list()[0]!;
    expect([b.bytesIn, b.bytesOut, b.total, b.active]).toEqual([1000, 300, 1, 0]);
  });
});

describe('half-close', () => {
  it('client FIN reaches the backend, which can still answer', async () => {
    // The backend answers only after it has seen EOF: it counts the bytes it got.
    backends = [
      await kit.backend((s) => {
        let n = 0;
        s.on('data', (c: Buffer) => {
          n += c.length;
        });
        s.on('end', () => s.end(`got ${n}`));
      }),
    ];
    await proxyTo();
    const client = await kit.connect(proxy);
    await client.end(Buffer.alloc(12345));
    expect((await client.collect()).toString()).toBe('got 12345');
  });

  it('backend FIN reaches the client, which can still send', async () => {
    let backendGot = '';
    let backendDone!: () => void;
    const backendEnded = new Promise<void>((resolve) => {
      backendDone = resolve;
    });
    backends = [
      await kit.backend((s) => {
        s.end('bye early'); // backend half-closes first
        s.on('data', (c: Buffer) => {
          backendGot += c.toString();
        });
        s.on('end', () => backendDone());
      }),
    ];
    await proxyTo();
    const client = await kit.connect(proxy, { allowHalfOpen: true });
    expect((await client.collect()).toString()).toBe('bye early');
    await client.end('still talking');
    await backendEnded;
    expect(backendGot).toBe('still talking');
  });
});

describe('backpressure', () => {
  it('a slow reader does not make the proxy buffer without bound', async () => {
    const total = 64 * 1024 * 1024;
    let producer: Socket | undefined;
    backends = [
      await kit.backend((s) => {
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
    const client = await kit.connect(proxy);
    client.pause(); // the slow reader: reads nothing for a while
    await waitFor(() => producer !== undefined);
    const session = [...proxy.service.sessions.values()][0]!;
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
    client.resume();
    expect(await client.discard(20_000)).toBe(total);
  });

  it('a backend that stops reading makes the proxy stop reading from the client', async () => {
    const slow = await kit.slowReading();
    backends = [slow];
    await proxyTo();
    const client = await kit.connect(proxy);
    const total = 64 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 3);
    let sent = 0;
    const pump = (async () => {
      while (sent < total) {
        sent += chunk.length;
        if (!client.socket.write(chunk)) await once(client.socket, 'drain');
      }
      await client.end();
    })();
    await waitFor(() => proxy.service.sessions.size === 1);
    const session = [...proxy.service.sessions.values()][0]!;
    let last = -1;
    await waitFor(
      () => {
        const now = session.client.bytesRead;
        const stable = now === last && now > 0;
        last = now;
        return stable;
      },
      10_000,
      'client reads to stall',
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(slow.received).toBe(0);
    expect(session.client.bytesRead).toBeLessThan(16 * 1024 * 1024); // socket buffers only
    expect(session.upstream!.writableLength).toBeLessThan(2 * 1024 * 1024);
    expect(sent).toBeLessThan(total); // the client is held back too
    // The backend reads again: everything arrives, and the session ends normally.
    slow.resume();
    await pump;
    await waitFor(() => slow.received === total, 20_000, 'every byte at the backend');
    expect(await client.closed()).toMatchObject({ reset: false });
  });
});

describe('resets', () => {
  it('a backend reset reaches the client as a reset, and other sessions carry on', async () => {
    const held: Socket[] = [];
    backends = [await kit.backend((s) => held.push(s))];
    await proxyTo();
    const a = await kit.connect(proxy);
    const b = await kit.connect(proxy);
    await waitFor(() => held.length === 2);
    held[0]!.resetAndDestroy();
    expect((await a.closed()).error).toBe('ECONNRESET');
    // b still works both ways
    held[1]!.write('ping');
    expect((await b.read(4)).toString()).toBe('ping');
  });

  it('a client reset reaches the backend as a reset', async () => {
    let backendErr: Promise<NodeJS.ErrnoException | undefined> | undefined;
    backends = [
      await kit.backend((s) => {
        backendErr = new Promise((resolve) => {
          s.removeAllListeners('error');
          s.on('error', resolve);
          s.on('close', () => resolve(undefined));
        });
      }),
    ];
    await proxyTo();
    const a = await kit.connect(proxy);
    await waitFor(() => backendErr !== undefined);
    a.reset();
    expect((await backendErr!)?.code).toBe('ECONNRESET');
    await waitFor(() => proxy.service.sessions.size === 0);
  });
});
