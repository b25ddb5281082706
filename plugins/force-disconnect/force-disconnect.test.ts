import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, exchange, type TestClient, waitFor } from '../../testing/index.js';
import { adminClient } from '../admin-api/test-client.js';
import type { ForceDisconnect } from './index.js';

const TOKEN = 'force-test-token-0123456789';

describe('force-disconnect', () => {
  const kit = createTestKit();
  afterEach(kit.close);

  /** Opens `n` sessions to `address` and waits until each one echoes. */
  const openSessions = async (address: string, n: number) => {
    const batch: TestClient[] = [];
    for (let i = 0; i < n; i += 50) {
      const part = await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => kit.connect(address)));
      batch.push(...part);
    }
    await Promise.all(
      batch.map(async (s) => {
        await s.send('hi');
        await s.read(2, 10_000);
      }),
    );
    return batch;
  };

  it('closes 300 sessions of every service at once, refuses new ones until disabled', async () => {
    const servers = [await kit.echo(), await kit.echo()];
    const proxy = await kit.proxy(`
services:
  one:
    listen: 127.0.0.1:0
    backends: [{ address: ${servers[0]!.address} }]
  two:
    listen: 127.0.0.1:0
    backends: [{ address: ${servers[1]!.address} }]
plugins:
  admin-api: { listen: 127.0.0.1:0, token: ${TOKEN} }
  force-disconnect: {}
`);
    const api = adminClient(proxy.runtime, TOKEN);
    const one = proxy.runtime.services.get('one')!;
    const two = proxy.runtime.services.get('two')!;
    const [addrOne, addrTwo] = [one.addresses()[0]!, two.addresses()[0]!];
    const clients = [...(await openSessions(addrOne, 200)), ...(await openSessions(addrTwo, 100))];
    expect(one.sessions.size + two.sessions.size).toBe(300);
    expect(servers[0]!.sockets.size + servers[1]!.sockets.size).toBe(300);

    const initial = await api('GET', '/force_disconnect', { token: null });
    expect(initial.body).toMatchObject({ enabled: false, closed: 0 });

    const allClosed = Promise.all(clients.map((c) => c.closed()));
    const on = await api('POST', '/force_disconnect', { json: { enabled: true } });
    expect(on.status).toBe(200);
    expect(on.body).toEqual({ enabled: true, closed: 300, since: expect.any(String) });
    expect(Date.parse(on.body.since)).toBeGreaterThanOrEqual(Date.parse(initial.body.since));
    await allClosed;
    // Upstreams too: the backends see every connection closed.
    await waitFor(() => servers.every((s) => s.sockets.size === 0), 5000, 'upstreams to close');
    await waitFor(() => one.sessions.size + two.sessions.size === 0, 5000, 'sessions to be released');
    for (const b of [...one.backends.list(), ...two.backends.list()]) expect(b.active).toBe(0);

    // Refused while on: accepted by the kernel, closed at once, never reaching a backend.
    const acceptedBefore = servers[0]!.accepted + servers[1]!.accepted;
    const rejectedBefore = one.counters.rejected + two.counters.rejected;
    for (const address of [addrOne, addrTwo, addrOne]) expect((await exchange(address)).length).toBe(0);
    expect(servers[0]!.accepted + servers[1]!.accepted).toBe(acceptedBefore);
    expect(one.counters.rejected + two.counters.rejected).toBe(rejectedBefore + 3);

    const state = await api('GET', '/force_disconnect', { token: null });
    expect(state.body).toEqual({ enabled: true, closed: 300, since: on.body.since });

    const off = await api('POST', '/force_disconnect', { json: { enabled: false } });
    expect(off.body).toMatchObject({ enabled: false, closed: 300 });
    expect((await exchange(addrOne, 'back')).toString()).toBe('back');
    expect((await exchange(addrTwo, 'again')).toString()).toBe('again');
  });

  it('needs the token to switch, not to read', async () => {
    const proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends: [{ address: ${(await kit.echo()).address} }]
plugins:
  admin-api: { listen: 127.0.0.1:0, token: ${TOKEN} }
  force-disconnect: {}
`);
    const api = adminClient(proxy.runtime);
    const denied = await api('POST', '/force_disconnect', { json: { enabled: true } });
    expect(denied.status).toBe(401);
    expect((await api('GET', '/force_disconnect')).body.enabled).toBe(false);
    expect((await exchange(proxy.address, 'ok')).toString()).toBe('ok');
  });

  it('enabling again closes what is open again (nothing) and keeps "since"', async () => {
    const proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends: [{ address: ${(await kit.echo()).address} }]
plugins:
  admin-api: { listen: 127.0.0.1:0 }
  force-disconnect: {}
`);
    const api = adminClient(proxy.runtime);
    await openSessions(proxy.address, 3);
    const first = await api('POST', '/force_disconnect', { json: { enabled: true } });
    expect(first.body.closed).toBe(3);
    const second = await api('POST', '/force_disconnect', { json: { enabled: true } });
    expect(second.body).toEqual({ enabled: true, closed: 0, since: first.body.since });
  });

  it('works without admin-api through runtime.use("force-disconnect")', async () => {
    const proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends: [{ address: ${(await kit.echo()).address} }]
plugins:
  force-disconnect: {}
`);
    const fd = proxy.runtime.use<ForceDisconnect>('force-disconnect')!;
    const clients = await openSessions(proxy.address, 5);
    const closed = Promise.all(clients.map((c) => c.closed()));
    expect(fd.set(true)).toMatchObject({ enabled: true, closed: 5 });
    await closed;
    expect((await exchange(proxy.address)).length).toBe(0);
    expect(fd.set(false).enabled).toBe(false);
    expect((await exchange(proxy.address, 'x')).toString()).toBe('x');
  });
});
