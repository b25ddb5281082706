import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, exchange, waitFor } from '../../testing/index.js';

const kit = createTestKit();
afterEach(kit.close);

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
    const dead = (await kit.refusing()).address;
    const backends = [await kit.named('a'), await kit.named('b')];
    const proxy = await kit.proxy(yaml([dead, backends[0]!.address, backends[1]!.address]));
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
    const dead = [await kit.refusing(), await kit.refusing()];
    const proxy = await kit.proxy(
      yaml(
        dead.map((d) => d.address),
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
    const hole = await kit.blackhole();
    const ok = await kit.named('ok');
    const proxy = await kit.proxy(yaml([hole.address, ok.address], 'connect_timeout: 150ms'));
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
    const proxy = await kit.proxy('listen: 127.0.0.1:0\n');
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
    const victim = await kit.backend((s) => {
      held.push(s);
      s.pipe(s);
    });
    const proxy = await kit.proxy(yaml([victim.address]));
    const client = await kit.connect(proxy);
    await client.send('ping');
    expect((await client.read(4)).toString()).toBe('ping');
    await victim.close(); // the backend goes away mid-session
    await client.closed();

    // A new backend takes over; the proxy is still fine.
    const next = await kit.echo();
    proxy.service.backends.remove(victim.address);
    proxy.service.backends.add({ address: next.address });
    expect((await exchange(proxy.address, 'still here')).toString()).toBe('still here');
  });
});

describe('idle timeout', () => {
  it('closes a session with no traffic either way', async () => {
    const silent = await kit.backend(() => {});
    const proxy = await kit.proxy(yaml([silent.address], 'idle_timeout: 150ms'));
    let reason: string | null = null;
    proxy.service.hooks.closed.tap('test', (s) => {
      reason = s.closeReason;
    });
    const client = await kit.connect(proxy);
    await client.closed();
    await waitFor(() => reason !== null);
    expect(reason).toBe('idle-timeout');
  });

  it('keeps a session whose traffic flows', async () => {
    const echo = await kit.echo();
    const proxy = await kit.proxy(yaml([echo.address], 'idle_timeout: 200ms'));
    const client = await kit.connect(proxy);
    for (let i = 0; i < 6; i++) {
      await client.send('.');
      await client.read(1);
      await new Promise((r) => setTimeout(r, 80));
    }
    expect(client.socket.destroyed).toBe(false);
  });
});
