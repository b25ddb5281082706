import { afterEach, describe, expect, it } from 'vitest';
import type { Session } from '../../core/types.js';
import {
  createTestKit,
  type TestBackend,
  type TestClient,
  type TestProxy,
  waitFor,
} from '../../testing/index.js';

const kit = createTestKit();
afterEach(kit.close);
let proxy: TestProxy;

async function proxyTo(backend: TestBackend, extra = ''): Promise<TestProxy> {
  proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends:
  - address: ${backend.address}
${extra}
`);
  return proxy;
}

/** A backend that records every byte it receives per connection, and echoes them. */
async function recordingEcho(): Promise<{ server: TestBackend; received: Buffer[]; ended: boolean[] }> {
  const received: Buffer[] = [];
  const ended: boolean[] = [];
  const server = await kit.backend((socket) => {
    const i = received.length;
    received.push(Buffer.alloc(0));
    ended.push(false);
    socket.on('data', (c) => {
      received[i] = Buffer.concat([received[i]!, c]);
      socket.write(c);
    });
    socket.on('end', () => {
      ended[i] = true;
      socket.end('bye');
    });
  });
  return { server, received, ended };
}

/** A tap consuming a `HDR <text>\n` line, as a PROXY header parser would. */
function headerTap(seen: string[]) {
  return (_session: Session, bytes: Buffer) => {
    const nl = bytes.indexOf(10);
    if (nl < 0) return 'more' as const;
    seen.push(bytes.subarray(0, nl).toString());
    return nl + 1;
  };
}

function closedReasons(p: TestProxy): Array<[string | null, string | null]> {
  const reasons: Array<[string | null, string | null]> = [];
  p.service.hooks.closed.tap('test', (s) => {
    reasons.push([s.closeReason, s.closeDetail]);
  });
  return reasons;
}

/** A client of the proxy; its errors (resets) are recorded, not thrown. */
const open = (allowHalfOpen = false) => kit.connect(proxy, { allowHalfOpen });

/** Everything the client received, and the error it closed with (a reset is an outcome here). */
async function untilClosed(client: TestClient): Promise<{ data: Buffer; error: string | null }> {
  const { error } = await client.closed();
  return { data: await client.read(client.buffered), error };
}

describe('peek stage', () => {
  it('reads nothing when no tap asks: a server-first backend greets a silent client', async () => {
    const greeter = await kit.greeting('220 smtp ready\r\n', { after: 'hold' });
    await proxyTo(greeter);
    const asked: number[] = [];
    // A tap that decides without bytes (its listener or source is not covered): nothing is read.
    proxy.service.hooks.peek.tap({ name: 'decline', maxBytes: 100, timeout: 50 }, (_s, bytes) => {
      asked.push(bytes.length);
      return undefined;
    });
    const client = await open();
    expect((await client.read(16)).toString()).toBe('220 smtp ready\r\n');
    // Long past the tap's timeout: the session was never waiting for client bytes.
    await new Promise((r) => setTimeout(r, 120));
    expect(proxy.service.sessions.size).toBe(1);
    expect(asked).toEqual([0]);
    expect(proxy.service.counters.peekTimeouts).toBe(0);
  });

  it('consumes a header sent one byte at a time and forwards the rest intact, in order', async () => {
    const echo = await recordingEcho();
    await proxyTo(echo.server);
    const seen: string[] = [];
    proxy.service.hooks.peek.tap({ name: 'hdr', maxBytes: 64, timeout: 2000 }, headerTap(seen));
    const client = await open();
    client.socket.setNoDelay(true);
    for (const ch of 'HDR 10.1.2.3\nhel') {
      client.socket.write(ch);
      await new Promise((r) => setTimeout(r, 2));
    }
    await new Promise((r) => setTimeout(r, 20));
    client.socket.write('lo world');
    expect((await client.read(11)).toString()).toBe('hello world');
    expect(seen).toEqual(['HDR 10.1.2.3']);
    expect(echo.received[0]!.toString()).toBe('hello world');
  });

  it('runs taps in stage order, each on what the previous left; the second sees without consuming', async () => {
    const echo = await recordingEcho();
    await proxyTo(echo.server);
    const seen: string[] = [];
    const inspected: string[] = [];
    // Tapped first at the default stage, runs second: stage decides, not tap order.
    proxy.service.hooks.peek.tap({ name: 'inspect', maxBytes: 5, timeout: 2000 }, (_s, bytes, final) => {
      if (bytes.length < 5 && !final) return 'more';
      inspected.push(bytes.toString());
      return undefined;
    });
    proxy.service.hooks.peek.tap({ name: 'hdr', stage: -50, maxBytes: 64, timeout: 2000 }, headerTap(seen));
    const client = await open();
    client.socket.write('HDR x\nabcdefgh');
    expect((await client.read(8)).toString()).toBe('abcdefgh');
    expect(seen).toEqual(['HDR x']);
    // Shown at most maxBytes of what the header tap left.
    expect(inspected).toEqual(['abcde']);
    expect(echo.received[0]!.toString()).toBe('abcdefgh');
  });

  it('closes a client that sends nothing in time: reason peek-timeout, counted, no backend dialled', async () => {
    const echo = await recordingEcho();
    await proxyTo(echo.server);
    const reasons = closedReasons(proxy);
    proxy.service.hooks.peek.tap({ name: 'slow-tap', maxBytes: 64, timeout: 80 }, headerTap([]));
    const client = await open();
    client.socket.write('HDR no newline');
    const started = Date.now();
    const { data } = await untilClosed(client);
    expect(Date.now() - started).toBeGreaterThanOrEqual(60);
    expect(data.length).toBe(0);
    await waitFor(() => reasons.length === 1);
    expect(reasons[0]).toEqual(['peek-timeout', 'slow-tap']);
    expect(proxy.service.counters.peekTimeouts).toBe(1);
    expect(echo.server.accepted).toBe(0);
  });

  it('refuses with a reset when a tap still wants more after maxBytes (never buffers beyond)', async () => {
    const echo = await recordingEcho();
    await proxyTo(echo.server);
    const reasons = closedReasons(proxy);
    const lengths: number[] = [];
    proxy.service.hooks.peek.tap({ name: 'greedy', maxBytes: 32, timeout: 2000 }, (_s, bytes) => {
      lengths.push(bytes.length);
      return 'more';
    });
    const client = await open();
    client.socket.write(Buffer.alloc(20, 1));
    await new Promise((r) => setTimeout(r, 20));
    client.socket.write(Buffer.alloc(1000, 2));
    const { error } = await untilClosed(client);
    expect(error).toBe('ECONNRESET');
    await waitFor(() => reasons.length === 1);
    expect(reasons[0]).toEqual(['rejected', 'peek-limit']);
    expect(Math.max(...lengths)).toBe(32);
    expect(echo.server.accepted).toBe(0);
  });

  it('keeps a half-close that came during the peek: the backend gets the bytes, then FIN, and may answer', async () => {
    const echo = await recordingEcho();
    await proxyTo(echo.server);
    proxy.service.hooks.peek.tap({ name: 'hdr', maxBytes: 64, timeout: 2000 }, headerTap([]));
    const client = await open(true);
    await client.end('HDR a\nquestion');
    const { data } = await untilClosed(client);
    expect(data.toString()).toBe('questionbye');
    expect(echo.ended[0]).toBe(true);
  });

  it('a FIN before the tap is satisfied closes the session as client-closed, without dialling', async () => {
    const echo = await recordingEcho();
    await proxyTo(echo.server);
    const reasons = closedReasons(proxy);
    proxy.service.hooks.peek.tap({ name: 'hdr', maxBytes: 64, timeout: 2000 }, headerTap([]));
    const client = await open(true);
    await client.end('HDR never finished');
    await untilClosed(client);
    await waitFor(() => reasons.length === 1);
    expect(reasons[0]![0]).toBe('client-closed');
    expect(echo.server.accepted).toBe(0);
  });

  it('a Rejection from a tap refuses; a throwing tap or a bad answer fails that session only', async () => {
    const echo = await recordingEcho();
    await proxyTo(echo.server);
    const reasons = closedReasons(proxy);
    proxy.service.hooks.peek.tap({ name: 'judge', maxBytes: 8, timeout: 2000 }, (_s, bytes) => {
      if (bytes.length === 0) return 'more';
      const c = String.fromCharCode(bytes[0]!);
      if (c === 'R') return { reason: 'no-thanks' };
      if (c === 'T') throw new Error('tap bug');
      if (c === 'B') return 99; // more than it was shown
      return undefined;
    });
    const results = [];
    for (const first of ['R', 'T', 'B']) {
      const client = await open();
      client.socket.write(`${first}xyz`);
      results.push(await untilClosed(client));
    }
    const ok = await open();
    ok.socket.write('okay');
    expect((await ok.read(4)).toString()).toBe('okay');
    await waitFor(() => reasons.length === 3);
    expect(reasons).toEqual([
      ['rejected', 'no-thanks'],
      ['internal-error', 'peek'],
      ['internal-error', 'peek'],
    ]);
    for (const r of results) expect(r.data.length).toBe(0);
  });

  it('a session waiting in the peek stage is closed by stop without waiting for its timeout', async () => {
    const echo = await recordingEcho();
    await proxyTo(echo.server);
    proxy.service.hooks.peek.tap({ name: 'hdr', maxBytes: 64, timeout: 60_000 }, headerTap([]));
    const client = await open();
    await waitFor(() => proxy.service.sessions.size === 1);
    const started = Date.now();
    await proxy.stop(50);
    expect(Date.now() - started).toBeLessThan(2000);
    await untilClosed(client);
  });

  it('rejects bad tap options when tapped', async () => {
    const echo = await recordingEcho();
    await proxyTo(echo.server);
    const peek = proxy.service.hooks.peek;
    expect(() => peek.tap({ name: 'x', maxBytes: 0, timeout: 10 }, () => undefined)).toThrow(/maxBytes/);
    expect(() => peek.tap({ name: 'x', maxBytes: 70_000, timeout: 10 }, () => undefined)).toThrow(/maxBytes/);
    expect(() => peek.tap({ name: 'x', maxBytes: 10, timeout: 0 }, () => undefined)).toThrow(/timeout/);
    expect(() => peek.tap({ name: '', maxBytes: 10, timeout: 10 }, () => undefined)).toThrow(/name/);
    expect(peek.isUsed()).toBe(false);
  });
});

describe('the real client address', () => {
  it('setClient in a peek tap: admit, select, closed and the session JSON see the real client; the peer stays', async () => {
    const echo = await recordingEcho();
    await proxyTo(echo.server);
    const seen: Record<string, string> = {};
    proxy.service.hooks.accept.tap('test', (s) => {
      seen.accept = `${s.remoteAddress}:${s.remotePort}`;
    });
    proxy.service.hooks.peek.tap({ name: 'hdr', maxBytes: 64, timeout: 2000 }, (s, bytes) => {
      const nl = bytes.indexOf(10);
      if (nl < 0) return 'more';
      const [, host, port] = bytes.subarray(0, nl).toString().split(' ');
      s.setClient(host!, Number(port), { host: '192.0.2.1', port: 443 });
      return nl + 1;
    });
    proxy.service.hooks.admit.tap('test', (s) => {
      seen.admit = `${s.remoteAddress}:${s.remotePort}`;
      seen.peer = `${s.peerAddress}:${s.peerPort}`;
      seen.local = `${s.localAddress}:${s.localPort}`;
    });
    proxy.service.hooks.select.tap({ name: 'spy', stage: -100 }, (_c, s) => {
      seen.select = s.remoteAddress;
      return undefined;
    });
    let json: Record<string, unknown> | undefined;
    proxy.service.hooks.closed.tap('test', (s) => {
      seen.closed = `${s.remoteAddress}:${s.remotePort}`;
      json = s.toJSON();
    });
    const client = await open();
    client.socket.write('HDR 2001:db8::7 5555\nping');
    expect((await client.read(4)).toString()).toBe('ping');
    const peer = `127.0.0.1:${client.localPort}`;
    await client.end();
    await waitFor(() => json !== undefined);
    expect(seen).toEqual({
      accept: peer,
      admit: '2001:db8::7:5555',
      peer,
      local: '192.0.2.1:443',
      select: '2001:db8::7',
      closed: '2001:db8::7:5555',
    });
    expect(json).toMatchObject({ client: '2001:db8::7:5555', peer });
  });

  it('refuses in admit by the address set during peek; a bad setClient fails the session only', async () => {
    const echo = await recordingEcho();
    await proxyTo(echo.server);
    const reasons = closedReasons(proxy);
    proxy.service.hooks.peek.tap({ name: 'hdr', maxBytes: 64, timeout: 2000 }, (s, bytes) => {
      const nl = bytes.indexOf(10);
      if (nl < 0) return 'more';
      s.setClient(bytes.subarray(0, nl).toString(), 1000);
      return nl + 1;
    });
    proxy.service.hooks.admit.tap('test', (s) =>
      s.remoteAddress === '10.9.9.9' ? { reason: 'banned', reset: true } : undefined,
    );
    const banned = await open();
    banned.socket.write('10.9.9.9\nx');
    expect((await untilClosed(banned)).error).toBe('ECONNRESET');
    const bad = await open();
    bad.socket.write('not-an-ip\nx');
    await untilClosed(bad);
    const good = await open();
    good.socket.write('10.1.1.1\nxy');
    expect((await good.read(2)).toString()).toBe('xy');
    await waitFor(() => reasons.length === 2);
    expect(reasons).toEqual([
      ['rejected', 'banned'],
      ['internal-error', 'peek'],
    ]);
  });
});
