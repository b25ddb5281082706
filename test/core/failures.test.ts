import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type Blackhole, startBlackhole } from '../helpers/blackhole.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import {
  exchange,
  freePort,
  open,
  readBytes,
  startEcho,
  startNamed,
  startServer,
  type TestServer,
  waitFor,
} from '../helpers/servers.js';

let backends: TestServer[] = [];
let proxy: TestProxy | undefined;
let hole: Blackhole | undefined;
const clients: Socket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await proxy?.stop();
  proxy = undefined;
  await hole?.close();
  hole = undefined;
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

function yaml(addresses: string[], extra = ''): string {
  return `
listen: 127.0.0.1:0
backends:
${addresses.map((a) => `  - address: ${a}`).join('\n')}
${extra}
`;
}

describe('connect failures', () => {
  it('a refusing backend is retried on another; clients see no failure', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    backends = [await startNamed('a'), await startNamed('b')];
    proxy = await startProxy(yaml([dead, backends[0]!.address, backends[1]!.address]));
    const failed: string[] = [];
    proxy.service.hooks.connectFailed.tap('test', (_s, b, err) => {
      failed.push(`${b.address} ${(err as NodeJS.ErrnoException).code}`);
    });
    const answers = await Promise.all(Array.from({ length: 60 }, () => exchange(proxy!.address, 'x')));
    for (const a of answers) expect(a.toString()).toMatch(/^[ab]\nx$/);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((f) => f === `${dead} ECONNREFUSED`)).toBe(true);
    expect(proxy.service.counters.retries).toBe(failed.length);
    const deadBackend = proxy.service.backends.get(dead)!;
    expect(deadBackend.active).toBe(0);
    expect(deadBackend.connectFailures).toBe(failed.length);
  });

  it('gives up after `retries` and closes the client when every backend refuses', async () => {
    const ports = [await freePort(), await freePort()];
    proxy = await startProxy(
      yaml(
        ports.map((p) => `127.0.0.1:${p}`),
        'retries: 2',
      ),
    );
    let reason: string | null = null;
    let attempts = 0;
    proxy.service.hooks.closed.tap('test', (s) => {
      reason = s.closeReason;
      attempts = s.attempts;
    });
    // The client's unread bytes make the kernel close with a RST; either way it gets nothing.
    const got = await exchange(proxy.address, 'hello').catch((err: NodeJS.ErrnoException) => err.code);
    expect(got === 'ECONNRESET' || (Buffer.isBuffer(got) && got.length === 0)).toBe(true);
    await waitFor(() => reason !== null);
    expect(reason).toBe('connect-failed');
    expect(attempts).toBe(3);
  });

  it('times out a connect that gets no answer, then retries elsewhere', async () => {
    hole = await startBlackhole();
    backends = [await startNamed('ok')];
    proxy = await startProxy(yaml([hole.address, backends[0]!.address], 'connect_timeout: 150ms'));
    const errors: string[] = [];
    proxy.service.hooks.connectFailed.tap('test', (_s, _b, err) => {
      errors.push((err as NodeJS.ErrnoException).code ?? err.message);
    });
    // Round robin sends the first session to the black hole first.
    const start = Date.now();
    expect((await exchange(proxy.address, 'x')).toString()).toBe('ok\nx');
    expect(errors).toEqual(['ETIMEDOUT']);
    expect(Date.now() - start).toBeGreaterThanOrEqual(140);
  });

  it('with no backend at all, refuses the client cleanly', async () => {
    proxy = await startProxy('listen: 127.0.0.1:0\n');
    let reason: string | null = null;
    proxy.service.hooks.closed.tap('test', (s) => {
      reason = s.closeReason;
    });
    expect((await exchange(proxy.address).catch(() => Buffer.alloc(0))).length).toBe(0);
    await waitFor(() => reason !== null);
    expect(reason).toBe('no-backend');
    expect(proxy.service.counters.noBackend).toBe(1);
  });
});

describe('backend dies mid-stream', () => {
  it('the client sees the close, and the proxy keeps serving', async () => {
    const held: Socket[] = [];
    const victim = await startServer((s) => {
      held.push(s);
      s.pipe(s);
    });
    backends = [victim];
    proxy = await startProxy(yaml([victim.address]));
    const client = await open(proxy.address);
    clients.push(client);
    client.write('ping');
    expect((await readBytes(client, 4)).toString()).toBe('ping');
    const closed = new Promise((resolve) => client.on('close', resolve));
    await victim.close(); // the backend goes away mid-session
    await closed;

    // A new backend takes over; the proxy is still fine.
    const next = await startEcho();
    backends.push(next);
    proxy.service.backends.remove(victim.address);
    proxy.service.backends.add({ address: next.address });
    expect((await exchange(proxy.address, 'still here')).toString()).toBe('still here');
  });
});

describe('idle timeout', () => {
  it('closes a session with no traffic either way', async () => {
    backends = [await startServer(() => {})];
    proxy = await startProxy(yaml([backends[0]!.address], 'idle_timeout: 150ms'));
    let reason: string | null = null;
    proxy.service.hooks.closed.tap('test', (s) => {
      reason = s.closeReason;
    });
    const client = await open(proxy.address);
    clients.push(client);
    await new Promise((resolve) => client.on('close', resolve));
    await waitFor(() => reason !== null);
    expect(reason).toBe('idle-timeout');
  });

  it('keeps a session whose traffic flows', async () => {
    backends = [await startEcho()];
    proxy = await startProxy(yaml([backends[0]!.address], 'idle_timeout: 200ms'));
    const client = await open(proxy.address);
    clients.push(client);
    for (let i = 0; i < 6; i++) {
      client.write('.');
      await readBytes(client, 1);
      await new Promise((r) => setTimeout(r, 80));
    }
    expect(client.destroyed).toBe(false);
  });
});
