import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, freePort, type TestProxy, waitFor } from '../../testing/index.js';
import type { AdminApi } from './index.js';
import { rawHttp } from './raw-http.test-support.js';

/** Waits for the server to close `socket`; resolves with what it sent first and how long it took. */
function closed(socket: Socket, timeoutMs = 10_000): Promise<{ data: string; ms: number }> {
  const t0 = Date.now();
  let data = '';
  socket.on('data', (c: Buffer) => {
    data += c.toString();
  });
  socket.on('error', () => {});
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${timeoutMs} ms`)), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ data, ms: Date.now() - t0 });
    });
  });
}

describe('admin-api connection cap and timeouts', () => {
  const kit = createTestKit();
  let proxy: TestProxy | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    sockets.length = 0;
    proxy = undefined;
    await kit.close();
  });
  /** A raw connection (destroyed by the kit after the test). */
  const open = async (address: string) => (await kit.connect(address)).socket;

  async function start(adminOptions: string) {
    proxy = await kit.proxy(
      `
listen: 127.0.0.1:0
backends: [{ address: "127.0.0.1:10001" }]
plugins:
  admin-api: { listen: "127.0.0.1:0", ${adminOptions} }
`,
      { logs: 'warn' },
    );
    return proxy.runtime.use<AdminApi>('admin-api')!;
  }

  it('holds at most max_connections: more are closed at accept, counted and logged once', async () => {
    const api = await start('max_connections: 4');
    const address = api.address()!;
    for (let i = 0; i < 4; i++) sockets.push(await open(address));
    await waitFor(
      () => proxy!.runtime.capacity.listeners.shares.find((s) => s.name === 'admin-api')!.active === 4,
    );
    const extra = await Promise.all(Array.from({ length: 6 }, () => open(address)));
    sockets.push(...extra);
    for (const socket of extra) expect((await closed(socket, 3000)).data).toBe('');
    expect(api.refused().connections).toBe(6);
    const warnings = proxy!.logs.filter(
      (l) => l.msg === 'listener at its max_connections: refusing new connections',
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ listener: 'admin-api', maxConnections: 4 });

    // A slot freed is a slot served.
    sockets.shift()!.destroy();
    await waitFor(
      () => proxy!.runtime.capacity.listeners.shares.find((s) => s.name === 'admin-api')!.active === 3,
    );
    const res = await rawHttp(
      address,
      'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
    );
    expect(res.status).toBe(200);
  });

  it('closes silent connections after idle_timeout and slow headers or bodies with 408', async () => {
    // idle_timeout well past request_timeout plus Node's 1 s deadline check: a slow body must
    // meet its 408, not the idle close (under load the two raced at 3 s and 2 + 1 s).
    const api = await start('idle_timeout: 6s, header_timeout: 1s, request_timeout: 2s');
    const address = api.address()!;
    const silent = await open(address);
    const slowHead = await open(address);
    slowHead.write('GET /get HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const slowBody = await open(address);
    slowBody.write(
      'POST /backends HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"address"',
    );
    sockets.push(silent, slowHead, slowBody);
    const [s, h, b] = await Promise.all([closed(silent), closed(slowHead), closed(slowBody)]);
    // Node may answer a connection that never sent a byte with 408 at header_timeout, or
    // leave it to idle_timeout (6 s): either way it is gone by then.
    expect(s.data === '' || s.data.startsWith('HTTP/1.1 408 ')).toBe(true);
    expect(s.ms).toBeLessThan(9000);
    // Both before idle_timeout: the 408s come from the header and request deadlines.
    expect(h.data).toMatch(/^HTTP\/1\.1 408 /);
    expect(h.ms).toBeLessThan(5000);
    expect(b.data).toMatch(/^HTTP\/1\.1 408 /);
    expect(b.ms).toBeGreaterThanOrEqual(1500);
    expect(b.ms).toBeLessThan(5500);
    expect(proxy!.service.backends.list().map((x) => x.address)).toEqual(['127.0.0.1:10001']);
  });

  it('refuses timeouts under 1s as config errors at their keys', async () => {
    await expect(start('idle_timeout: 10ms, header_timeout: 20s, request_timeout: 999')).rejects.toThrow(
      /test\.yaml:\d+:\d+ {2}plugins\.admin-api\.idle_timeout {2}must be at least 1s\n.*plugins\.admin-api\.request_timeout {2}must be at least 1s/,
    );
  });

  it('refuses to start when plugin listeners together could take more than their reserve', async () => {
    const [a, b] = [await freePort(), await freePort()];
    await expect(
      kit.proxy(`
listen: 127.0.0.1:0
backends: [{ address: "127.0.0.1:${a}" }]
plugins:
  admin-api: { listen: "127.0.0.1:0", max_connections: 100 }
  demo-backends: { listen: ["127.0.0.1:${a}", "127.0.0.1:${b}"] }
`),
    ).rejects.toThrow(
      `plugin listeners may hold 132 connections at once (demo-backends 127.0.0.1:${a} 16, demo-backends 127.0.0.1:${b} 16, admin-api 100), more than the 128 descriptors the process keeps for them; lower their max_connections`,
    );
  });
});
