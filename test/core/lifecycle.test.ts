import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, exchange, type TestBackend, type TestProxy, waitFor } from '../../testing/index.js';

const kit = createTestKit();
afterEach(kit.close);
let backends: TestBackend[] = [];
let proxy: TestProxy;

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
    backends = [await kit.echo()];
    proxy = await kit.proxy(`listen: 127.0.0.1:0\nbackends: [{ address: ${backends[0]!.address} }]\n`);
    const client = await kit.connect(proxy);
    await client.send('a');
    await client.read(1);
    let stopped = false;
    const stopping = proxy.stop(10_000).then(() => {
      stopped = true;
    });
    await waitFor(() => proxy.service.state === 'stopping');
    expect(await refused(proxy.address)).toBe(true);
    // The open session still works both ways.
    await client.send('b');
    expect((await client.read(1)).toString()).toBe('b');
    expect(stopped).toBe(false);
    await client.end();
    await stopping;
    expect(stopped).toBe(true);
  });

  it('closes sessions still open when the drain timeout passes', async () => {
    backends = [await kit.echo()];
    proxy = await kit.proxy(`listen: 127.0.0.1:0\nbackends: [{ address: ${backends[0]!.address} }]\n`);
    let reason: string | null = null;
    proxy.service.hooks.closed.tap('test', (s) => {
      reason = s.closeReason;
    });
    const client = await kit.connect(proxy);
    const started = Date.now();
    await proxy.stop(150);
    await client.closed();
    expect(reason).toBe('shutdown');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });
});

describe('backend removal drains', () => {
  it('existing sessions continue; they are closed after the drain timeout', async () => {
    backends = [await kit.echo(), await kit.echo()];
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends: [{ address: ${backends[0]!.address} }, { address: ${backends[1]!.address} }]
`);
    const reasons: string[] = [];
    proxy.service.hooks.closed.tap('test', (s) => {
      reasons.push(`${s.backend?.address} ${s.closeReason}`);
    });
    const onFirst = await kit.connect(proxy); // round robin: first backend
    const onSecond = await kit.connect(proxy);
    await waitFor(() => proxy.service.backends.list().every((b) => b.active === 1));
    proxy.service.backends.remove(backends[0]!.address, { drainTimeout: 200 });
    await onFirst.send('x');
    expect((await onFirst.read(1)).toString()).toBe('x'); // still served while draining
    // New sessions go to the remaining backend only.
    expect((await exchange(proxy.address, 'y')).toString()).toBe('y');
    await onFirst.closed();
    await waitFor(() => reasons.some((r) => r.endsWith('drained')));
    expect(reasons).toContain(`${backends[0]!.address} drained`);
    expect(onSecond.socket.destroyed).toBe(false);
  });

  it('setDraining stops new sessions without removing the backend', async () => {
    backends = [await kit.echo(), await kit.echo()];
    proxy = await kit.proxy(`
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
    backends = [await kit.echo()];
    proxy = await kit.proxy(`
listen: [127.0.0.1:0, "[::1]:0"]
backends: [{ address: ${backends[0]!.address} }]
`);
    const [v4, v6] = proxy.service.addresses();
    expect(v6).toMatch(/^\[::1\]:\d+$/);
    expect((await exchange(v4!, 'four')).toString()).toBe('four');
    expect((await exchange(v6!, 'six')).toString()).toBe('six');
  });

  it('fails to start with a clear message when the port is taken', async () => {
    backends = [await kit.echo()];
    await expect(kit.proxy(`listen: ${backends[0]!.address}\n`)).rejects.toThrow(
      `cannot listen on ${backends[0]!.address}: EADDRINUSE`,
    );
  });

  it('closes connections over max_connections at accept', async () => {
    backends = [await kit.echo()];
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
max_connections: 2
backends: [{ address: ${backends[0]!.address} }]
`);
    await kit.connect(proxy);
    await kit.connect(proxy);
    await waitFor(() => proxy.service.sessions.size === 2);
    const c = await kit.connect(proxy);
    await c.closed();
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
    backends = [await kit.echo()];
    proxy = await kit.proxy(`listen: 127.0.0.1:0\nbackends: [{ address: ${backends[0]!.address} }]\n`, {
      sessionLimit: 2,
    });
    const a = await kit.connect(proxy);
    await kit.connect(proxy);
    await waitFor(() => proxy.service.sessions.size === 2);
    const c = await kit.connect(proxy);
    expect((await c.closed()).error).toBe('ECONNRESET');
    expect(proxy.service.counters.overloaded).toBe(1);
    expect(proxy.runtime.capacity.refused).toBe(1);
    a.destroy();
    await waitFor(() => proxy.service.sessions.size === 1);
    expect((await exchange(proxy.address, 'room again')).toString()).toBe('room again');
    expect(proxy.runtime.capacity.active).toBe(1);
  });
});
