import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { exchange, open, readBytes, startEcho, type TestServer, waitFor } from '../helpers/servers.js';

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

function refused(address: string): Promise<boolean> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const s = connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) });
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

describe('graceful stop', () => {
  it('stops accepting, lets open sessions finish, then resolves', async () => {
    backends = [await startEcho()];
    proxy = await startProxy(`listen: 127.0.0.1:0\nbackends: [{ address: ${backends[0]!.address} }]\n`);
    const client = await open(proxy.address);
    clients.push(client);
    client.write('a');
    await readBytes(client, 1);
    let stopped = false;
    const stopping = proxy.runtime.stop(10_000).then(() => {
      stopped = true;
    });
    await waitFor(() => proxy!.service.state === 'stopping');
    expect(await refused(proxy.address)).toBe(true);
    // The open session still works both ways.
    client.write('b');
    expect((await readBytes(client, 1)).toString()).toBe('b');
    expect(stopped).toBe(false);
    client.end();
    await stopping;
    expect(stopped).toBe(true);
    proxy = undefined;
  });

  it('closes sessions still open when the drain timeout passes', async () => {
    backends = [await startEcho()];
    proxy = await startProxy(`listen: 127.0.0.1:0\nbackends: [{ address: ${backends[0]!.address} }]\n`);
    let reason: string | null = null;
    proxy.service.hooks.closed.tap('test', (s) => {
      reason = s.closeReason;
    });
    const client = await open(proxy.address);
    clients.push(client);
    const closed = once(client, 'close');
    const started = Date.now();
    await proxy.runtime.stop(150);
    proxy = undefined;
    await closed;
    expect(reason).toBe('shutdown');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });
});

describe('backend removal drains', () => {
  it('existing sessions continue; they are closed after the drain timeout', async () => {
    backends = [await startEcho(), await startEcho()];
    proxy = await startProxy(`
listen: 127.0.0.1:0
backends: [{ address: ${backends[0]!.address} }, { address: ${backends[1]!.address} }]
`);
    const reasons: string[] = [];
    proxy.service.hooks.closed.tap('test', (s) => {
      reasons.push(`${s.backend?.address} ${s.closeReason}`);
    });
    const onFirst = await open(proxy.address); // round robin: first backend
    const onSecond = await open(proxy.address);
    clients.push(onFirst, onSecond);
    await waitFor(() => proxy!.service.backends.list().every((b) => b.active === 1));
    proxy.service.backends.remove(backends[0]!.address, { drainTimeout: 200 });
    onFirst.write('x');
    expect((await readBytes(onFirst, 1)).toString()).toBe('x'); // still served while draining
    // New sessions go to the remaining backend only.
    expect((await exchange(proxy.address, 'y')).toString()).toBe('y');
    await once(onFirst, 'close');
    await waitFor(() => reasons.some((r) => r.endsWith('drained')));
    expect(reasons).toContain(`${backends[0]!.address} drained`);
    expect(onSecond.destroyed).toBe(false);
  });

  it('setDraining stops new sessions without removing the backend', async () => {
    backends = [await startEcho(), await startEcho()];
    proxy = await startProxy(`
listen: 127.0.0.1:0
backends: [{ address: ${backends[0]!.address} }, { address: ${backends[1]!.address} }]
`);
    proxy.service.backends.setDraining(backends[0]!.address, true);
    for (let i = 0; i < 4; i++) await exchange(proxy.address, 'z');
    expect(backends[0]!.accepted).toBe(0);
    expect(backends[1]!.accepted).toBe(4);
    proxy.service.backends.setDraining(backends[0]!.address, false);
    for (let i = 0; i < 2; i++) await exchange(proxy.address, 'z');
    expect(backends[0]!.accepted).toBe(1);
  });
});

describe('listeners', () => {
  it('listens on several addresses, IPv4 and IPv6', async () => {
    backends = [await startEcho()];
    proxy = await startProxy(`
listen: [127.0.0.1:0, "[::1]:0"]
backends: [{ address: ${backends[0]!.address} }]
`);
    const [v4, v6] = proxy.service.addresses();
    expect(v6).toMatch(/^\[::1\]:\d+$/);
    expect((await exchange(v4!, 'four')).toString()).toBe('four');
    expect((await exchange(v6!, 'six')).toString()).toBe('six');
  });

  it('fails to start with a clear message when the port is taken', async () => {
    backends = [await startEcho()];
    await expect(startProxy(`listen: ${backends[0]!.address}\n`)).rejects.toThrow(
      `cannot listen on ${backends[0]!.address}: EADDRINUSE`,
    );
  });

  it('closes connections over max_connections at accept', async () => {
    backends = [await startEcho()];
    proxy = await startProxy(`
listen: 127.0.0.1:0
max_connections: 2
backends: [{ address: ${backends[0]!.address} }]
`);
    const a = await open(proxy.address);
    const b = await open(proxy.address);
    clients.push(a, b);
    await waitFor(() => proxy!.service.sessions.size === 2);
    const c = await open(proxy.address);
    clients.push(c);
    await once(c, 'close');
    expect(proxy.service.counters.dropped).toBe(1);
  });
});

describe('process session budget (open files limit)', () => {
  it('derives the budget from the fd limit: two descriptors per session, a reserve kept free', async () => {
    const { Capacity, FD_RESERVE } = await import('../../core/capacity.js');
    const { pino } = await import('pino');
    expect(Capacity.fromFdLimit(pino({ level: 'silent' }), 20_000).limit).toBe((20_000 - FD_RESERVE) / 2);
  });

  it('refuses sessions over the budget at once, counts them, and serves again when below', async () => {
    backends = [await startEcho()];
    proxy = await startProxy(
      `listen: 127.0.0.1:0\nbackends: [{ address: ${backends[0]!.address} }]\n`,
      undefined,
      {
        sessionLimit: 2,
      },
    );
    const a = await open(proxy.address);
    const b = await open(proxy.address);
    clients.push(a, b);
    await waitFor(() => proxy!.service.sessions.size === 2);
    const [host, port] = proxy.address.split(':');
    const c = connect({ host, port: Number(port) });
    clients.push(c);
    const refusedWith = new Promise<string | undefined>((resolve) => {
      let code: string | undefined;
      c.on('error', (err: NodeJS.ErrnoException) => {
        code = err.code;
      });
      c.on('close', () => resolve(code));
    });
    expect(await refusedWith).toBe('ECONNRESET');
    expect(proxy.service.counters.overloaded).toBe(1);
    expect(proxy.runtime.capacity.refused).toBe(1);
    a.destroy();
    await waitFor(() => proxy!.service.sessions.size === 1);
    expect((await exchange(proxy.address, 'room again')).toString()).toBe('room again');
    expect(proxy.runtime.capacity.active).toBe(1);
  });
});
