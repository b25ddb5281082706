import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, exchange, loadConfig, waitFor } from './index.js';

const kit = createTestKit();
afterEach(kit.close);

const tcpHandles = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

/** Resolves with the error code a plain connect to `address` ends with (null: it connected). */
function connectError(address: string): Promise<string | null> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const s = connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) });
    s.once('connect', () => {
      s.destroy();
      resolve(null);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('backends', () => {
  it('echo answers byte for byte and ends its side after the client FIN', async () => {
    const echo = await kit.echo();
    const client = await kit.connect(echo);
    await client.send('one ');
    await client.expect('one ');
    await client.end('two');
    expect(String(await client.collect())).toBe('two');
    expect(await client.closed()).toEqual({ reset: false, error: null, ended: true });
    expect(echo.accepted).toBe(1);
  });

  it('named greets with its name, then echoes', async () => {
    const b = await kit.named('b');
    expect(b.name).toBe('b');
    expect(String(await exchange(b.address, 'x'))).toBe('b\nx');
  });

  it('greeting sends first, then echoes, ends or holds', async () => {
    const echoing = await kit.greeting('220 ready\r\n');
    expect(String(await exchange(echoing.address, 'HELO'))).toBe('220 ready\r\nHELO');
    const ending = await kit.greeting(Buffer.from([1, 2, 3]), { after: 'end' });
    const c = await kit.connect(ending);
    expect([...(await c.collect())]).toEqual([1, 2, 3]);
    const holding = await kit.greeting('hi\n', { after: 'hold' });
    const h = await kit.connect(holding);
    await h.expect('hi\n');
    await h.send('ignored');
    await h.end();
    await expect(h.closed(200)).rejects.toThrow(/still open after 200 ms/);
    expect(holding.sockets.size).toBe(1);
  });

  it('refusing is a port where connects are refused', async () => {
    const dead = await kit.refusing();
    expect(await connectError(dead.address)).toBe('ECONNREFUSED');
    await expect(kit.connect(dead)).rejects.toThrow(`connect to ${dead.address} failed: ECONNREFUSED`);
  });

  it('resetting accepts, then resets at once or after a delay without a byte', async () => {
    for (const delay of [0, 50]) {
      const r = await kit.resetting({ delay });
      const client = await kit.connect(r);
      const started = Date.now();
      await client.expectReset();
      if (delay > 0) expect(Date.now() - started).toBeGreaterThanOrEqual(delay - 5);
      expect(client.buffered).toBe(0);
      expect(r.accepted).toBe(1);
    }
  });

  it('slow-reading reads nothing until resumed, so the sender stalls; then takes every byte', async () => {
    const slow = await kit.slowReading();
    const client = await kit.connect(slow);
    const total = 32 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 1);
    let written = 0;
    while (written < total && client.socket.write(chunk)) written += chunk.length;
    written += chunk.length;
    // The kernel buffers fill; the socket reports backpressure long before 32 MB.
    expect(written).toBeLessThan(total);
    await new Promise((r) => setTimeout(r, 100));
    expect(slow.received).toBe(0);
    expect(client.socket.writableLength).toBeGreaterThan(0);

    slow.resume();
    expect(slow.reading).toBe(true);
    await waitFor(() => slow.received === written, 5000, 'the backend to read what was sent');
    await client.end();
    await client.closed();
    expect(slow.received).toBe(written);
  });

  it('a closed backend refuses connects, and reopens on its port', async () => {
    const echo = await kit.echo();
    const held = await kit.connect(echo);
    await echo.close();
    await held.closed();
    expect(await connectError(echo.address)).toBe('ECONNREFUSED');
    await echo.reopen();
    expect(String(await exchange(echo.address, 'back'))).toBe('back');
    await echo.close();
    await echo.close(); // twice is fine
  });

  it('listens on IPv6 loopback when asked', async () => {
    const echo = await kit.echo({ host: '::1' });
    expect(echo.address).toMatch(/^\[::1\]:\d+$/);
    expect(String(await exchange(echo.address, 'v6'))).toBe('v6');
  });

  it('blackhole: connects hang until the caller gives up', async () => {
    const hole = await kit.blackhole();
    const started = Date.now();
    await expect(kit.connect(hole, { timeout: 200 })).rejects.toThrow(/timed out after 200 ms/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });
});

describe('clients', () => {
  it('read, readUntil and expect take bytes in order however they arrive', async () => {
    const b = await kit.backend((s) => {
      s.write('ab');
      setTimeout(() => s.write('c\nde'), 20);
      setTimeout(() => s.end('f'), 40);
    });
    const c = await kit.connect(b);
    expect(String(await c.read(1))).toBe('a');
    expect(String(await c.readUntil('\n'))).toBe('bc\n');
    await c.expect('d');
    expect(String(await c.collect())).toBe('ef');
    expect(c.ended).toBe(true);
  });

  it('says what came instead when an expectation fails', async () => {
    const b = await kit.greeting('hello world', { after: 'end' });
    const c = await kit.connect(b);
    await expect(c.expect('hellO')).rejects.toThrow('expected "hellO", received "hello"');
    await expect(c.read(100)).rejects.toThrow(
      /connection (ended|closed \(a FIN\)) before 100 bytes arrived; got " world"/,
    );
  });

  it('times out with what arrived so far', async () => {
    const b = await kit.greeting('partial', { after: 'hold' });
    const c = await kit.connect(b);
    await expect(c.read(20, 100)).rejects.toThrow(
      /timed out after 100 ms waiting for 20 bytes; got "partial"/,
    );
  });

  it('collect and closed tell a reset from a FIN', async () => {
    // The reset waits for the client's word that the 4 bytes arrived: a RST that overtakes
    // unread data makes the kernel drop it, which a timer alone cannot rule out under load.
    const b = await kit.backend((s) => {
      s.write('some');
      s.once('data', () => s.resetAndDestroy());
    });
    const c = await kit.connect(b);
    await waitFor(() => c.buffered === 4);
    c.socket.write('!');
    await expect(c.collect()).rejects.toThrow(/connection failed \(ECONNRESET\) after 4 bytes/);
    expect(await c.closed()).toEqual({ reset: true, error: 'ECONNRESET', ended: false });
    const fin = await kit.connect(await kit.greeting('x', { after: 'end' }));
    await expect(fin.expectReset()).rejects.toThrow('expected a reset, but the connection closed with a FIN');
  });

  it('discard counts a large transfer without keeping it', async () => {
    const b = await kit.greeting(Buffer.alloc(8 * 1024 * 1024, 1), { after: 'end' });
    const c = await kit.connect(b);
    await c.read(10);
    expect(await c.discard()).toBe(8 * 1024 * 1024 - 10);
    expect(c.buffered).toBe(0);
  });

  it('reset() sends a RST the server sees as ECONNRESET', async () => {
    let serverError: Promise<string | undefined> | undefined;
    const b = await kit.backend((s) => {
      serverError = new Promise((resolve) => {
        s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code));
        s.on('close', () => resolve(undefined));
      });
    });
    const c = await kit.connect(b);
    await waitFor(() => serverError !== undefined);
    c.reset();
    expect(await serverError).toBe('ECONNRESET');
  });

  it('allowHalfOpen keeps the client side open after the peer FIN', async () => {
    let got = '';
    const b = await kit.backend((s) => {
      s.end('bye');
      s.on('data', (d) => {
        got += d;
      });
    });
    const c = await kit.connect(b, { allowHalfOpen: true });
    await c.expect('bye');
    await waitFor(() => c.ended);
    await c.send('still here');
    await waitFor(() => got === 'still here');
  });
});

describe('proxy', () => {
  it('starts from a config object on a free port, kit backends as backends', async () => {
    const [a, b] = await Promise.all([kit.named('a'), kit.named('b')]);
    const proxy = await kit.proxy({ backends: [a, b.address, { address: '127.0.0.1:9', weight: 2 }] });
    expect(proxy.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(proxy.config.services[0]!.listen).toEqual(['127.0.0.1:0']);
    expect(proxy.service.backends.list().map((x) => [x.address, x.weight])).toEqual([
      [a.address, 1],
      [b.address, 1],
      ['127.0.0.1:9', 2],
    ]);
    expect(String(await exchange(proxy.address, 'x'))).toBe('a\nx');
  });

  it('takes YAML text as well, and services by name', async () => {
    const echo = await kit.echo();
    const proxy = await kit.proxy(`
services:
  web: { listen: 127.0.0.1:0, backends: [{ address: ${echo.address} }] }
  db: { listen: [127.0.0.1:0, 127.0.0.1:0], backends: [{ address: ${echo.address} }] }
`);
    expect(proxy.service.name).toBe('web');
    expect(proxy.addressOf('db', 1)).not.toBe(proxy.addressOf('db', 0));
    expect(String(await exchange(proxy.addressOf('db', 1), 'db'))).toBe('db');
    expect(() => proxy.addressOf('nope')).toThrow('no service "nope" (services: web, db)');
    expect(() => proxy.addressOf('web', 3)).toThrow('service web has no listener #3');
  });

  it('start: false applies plugins without listening, for taps and contributions before start', async () => {
    const proxy = await kit.proxy({}, { start: false });
    expect(() => proxy.address).toThrow(/no listener #0 \(not started/);
    await proxy.start();
    expect(proxy.address).toMatch(/:\d+$/);
    expect(() => proxy.start()).toThrow('started already');
  });

  it('records log lines at the level asked', async () => {
    const dead = await kit.refusing();
    const proxy = await kit.proxy({ backends: [dead], retries: 0 }, { logs: 'debug' });
    await exchange(proxy.address);
    await waitFor(() => proxy.service.counters.closed === 1);
    expect(proxy.logs.some((l) => l.level === 20 && /connect/.test(String(l.msg)))).toBe(true);
  });

  it('rejects a bad config with the loader’s error, and loadConfig checks without starting', async () => {
    await expect(kit.proxy({ retries: 99 })).rejects.toThrow(
      /test-config\.yaml:\d+:\d+\s+retries\s+must be <= 10/,
    );
    await expect(kit.proxy('listen: 127.0.0.1:0\nretrys: 1\n')).rejects.toThrow(
      /test\.yaml:2:1\s+retrys\s+unknown key "retrys" \(did you mean "retries"\?\)/,
    );
    const config = await loadConfig({ connect_timeout: '2s', plugins: { 'round-robin': null } });
    expect(config.services[0]).toMatchObject({ connect_timeout: 2000, listen: ['127.0.0.1:0'] });
  });

  it('stop drains for the time given and is safe to call twice', async () => {
    const echo = await kit.echo();
    const proxy = await kit.proxy({ backends: [echo] });
    const client = await kit.connect(proxy);
    await client.send('x');
    await client.expect('x');
    const stopping = proxy.stop(100);
    expect(proxy.stop()).toBe(stopping);
    await stopping;
    expect(await client.closed()).toMatchObject({ reset: false });
    expect(proxy.service.state).toBe('stopped');
  });
});

describe('close', () => {
  it('stops every proxy, backend, client and deferred task, and leaves no socket', async () => {
    const before = tcpHandles();
    const own = createTestKit();
    const echo = await own.echo();
    const proxy = await own.proxy({ backends: [echo] });
    const clients = await Promise.all([own.connect(proxy), own.connect(proxy), own.connect(echo)]);
    await clients[0]!.send('a');
    await clients[0]!.expect('a');
    const order: string[] = [];
    own.defer(() => order.push('first'));
    own.track({ close: async () => void order.push('tracked') });
    await own.close();
    expect(order).toEqual(['tracked', 'first']);
    expect(clients.every((c) => c.socket.destroyed)).toBe(true);
    expect(proxy.service.state).toBe('stopped');
    expect(await connectError(echo.address)).toBe('ECONNREFUSED');
    await waitFor(() => tcpHandles() <= before, 3000, 'TCP handles to be released');

    // The kit is empty and usable again.
    const again = await own.echo();
    expect(String(await exchange(again.address, 'y'))).toBe('y');
    await own.close();
  });

  it('runs every step when one fails, then reports the failure', async () => {
    const own = createTestKit();
    const echo = await own.echo();
    own.defer(() => {
      throw new Error('cleanup bug');
    });
    await expect(own.close()).rejects.toThrow('cleanup bug');
    expect(echo.server.listening).toBe(false);
  });
});
