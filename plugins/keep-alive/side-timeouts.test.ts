import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { Service, Session } from '../../plugin-sdk/index.js';
import type { KeepAliveOptions } from './options.js';
import { SideTimeouts } from './side-timeouts.js';

/** A socket as far as the sweep looks at it. */
interface FakeSocket {
  bytesRead: number;
  readableEnded: boolean;
  destroyed: boolean;
}

interface FakeSession {
  client: FakeSocket;
  upstream: FakeSocket;
  connectedAt: number;
  /** The service whose backends serve the session; the sweep only times its own. */
  pool: unknown;
  data: Record<string, unknown>;
  closeReason: string | null;
  closeDetail: string | null;
  close(reason: string): void;
}

function fakeSession(at: number, pool: unknown): FakeSession {
  const s: FakeSession = {
    client: { bytesRead: 0, readableEnded: false, destroyed: false },
    upstream: { bytesRead: 0, readableEnded: false, destroyed: false },
    connectedAt: at,
    pool,
    data: {},
    closeReason: null,
    closeDetail: null,
    close() {
      s.client.destroyed = true;
      s.upstream.destroyed = true;
    },
  };
  return s;
}

function setup(options: Partial<KeepAliveOptions>) {
  const sessions = new Map<number, FakeSession>();
  const service = { sessions } as unknown as Service;
  const full: KeepAliveOptions = {
    client: { enabled: false, initial_delay: 0 },
    upstream: { enabled: false, initial_delay: 0 },
    client_idle_timeout: 0,
    upstream_idle_timeout: 0,
    client_fin_timeout: 0,
    upstream_fin_timeout: 0,
    ...options,
  };
  const timeouts = new SideTimeouts(service, full);
  const add = (at: number) => {
    const s = fakeSession(at, service);
    sessions.set(sessions.size + 1, s);
    timeouts.track(s as unknown as Session);
    return s;
  };
  return { timeouts, add };
}

describe('SideTimeouts (the sweep, with a fake clock)', () => {
  it('is off, with no sweep, when every timeout is 0', () => {
    expect(setup({}).timeouts.enabled).toBe(false);
  });

  it('sweeps at a tenth of the smallest limit, between 10ms and 1s', () => {
    expect(setup({ client_idle_timeout: 2000 }).timeouts.tick).toBe(200);
    expect(setup({ upstream_fin_timeout: 50 }).timeouts.tick).toBe(10);
    expect(setup({ client_fin_timeout: 3_600_000 }).timeouts.tick).toBe(1000);
  });

  it('measures silence per side: bytes from the client reset only the client clock', () => {
    const { timeouts, add } = setup({ client_idle_timeout: 100, upstream_idle_timeout: 300 });
    const s = add(0);
    s.client.bytesRead = 10;
    timeouts.sweep(90); // client spoke at 90
    expect(timeouts.sweep(180)).toBe(0);
    s.upstream.bytesRead = 5; // backend talks, client silent
    expect(timeouts.sweep(190)).toBe(1);
    expect(s.closeReason).toBe('idle-timeout');
    expect(s.closeDetail).toBe('client-idle');
  });

  it('upstream silence while the client keeps sending', () => {
    const { timeouts, add } = setup({ upstream_idle_timeout: 100 });
    const s = add(0);
    for (let t = 10; t < 100; t += 10) {
      s.client.bytesRead += 1;
      expect(timeouts.sweep(t)).toBe(0);
    }
    expect(timeouts.sweep(100)).toBe(1);
    expect(s.closeDetail).toBe('upstream-idle');
  });

  it('after the client FIN, the backend has upstream_fin_timeout of silence, counted from the FIN', () => {
    const { timeouts, add } = setup({ upstream_fin_timeout: 100 });
    const s = add(0);
    timeouts.sweep(500); // long silent before the FIN: no limit applied then (idle is 0)
    s.client.readableEnded = true;
    s.closeReason = 'client-closed'; // what the core sets on the client's FIN
    expect(timeouts.sweep(510)).toBe(0);
    s.upstream.bytesRead = 3; // the backend answers: its clock restarts
    expect(timeouts.sweep(600)).toBe(0);
    expect(timeouts.sweep(690)).toBe(0);
    expect(timeouts.sweep(700)).toBe(1);
    expect(s.closeReason).toBe('idle-timeout');
    expect(s.closeDetail).toBe('upstream-fin');
  });

  it('after the backend FIN, the client has client_fin_timeout', () => {
    const { timeouts, add } = setup({ client_fin_timeout: 100, client_idle_timeout: 1000 });
    const s = add(0);
    s.upstream.readableEnded = true;
    timeouts.sweep(50);
    expect(timeouts.sweep(149)).toBe(0);
    expect(timeouts.sweep(150)).toBe(1);
    expect(s.closeDetail).toBe('client-fin');
  });

  it('a *_fin_timeout of 0 falls back to the side idle timeout (HAProxy)', () => {
    const { timeouts, add } = setup({ upstream_idle_timeout: 200 });
    const s = add(0);
    s.client.readableEnded = true;
    timeouts.sweep(10);
    expect(timeouts.sweep(209)).toBe(0);
    expect(timeouts.sweep(210)).toBe(1);
    expect(s.closeDetail).toBe('upstream-fin');
  });

  it('a finished side is not held to its idle timeout; both finished is left to the core', () => {
    const { timeouts, add } = setup({ client_idle_timeout: 100, upstream_idle_timeout: 100 });
    const s = add(0);
    s.client.readableEnded = true;
    s.upstream.readableEnded = true;
    expect(timeouts.sweep(10_000)).toBe(0);
  });

  it('skips sessions without a clock (not established) and closed ones', () => {
    const { timeouts, add } = setup({ client_idle_timeout: 100 });
    const s = add(0);
    s.client.destroyed = true;
    delete add(0).data['keep-alive'];
    expect(timeouts.sweep(10_000)).toBe(0);
  });

  it("leaves a session routed to another service's pool to that pool's sweep", () => {
    const { timeouts, add } = setup({ client_idle_timeout: 100 });
    const mine = add(0);
    const routed = add(0);
    routed.pool = {}; // another service
    expect(timeouts.sweep(100)).toBe(1);
    expect(mine.closeDetail).toBe('client-idle');
    expect(routed.closeDetail).toBeNull();
  });
});

/**
 * Pins what the README says Node does in `socket.setKeepAlive(true, ms)`: SO_KEEPALIVE,
 * TCP_KEEPIDLE = whole seconds, and fixed TCP_KEEPINTVL 1 / TCP_KEEPCNT 10; with 0 s no
 * TCP_KEEPIDLE takes effect and the kernel defaults stay (Node 20 tries it and the kernel
 * answers EINVAL; Node 24 does not try), so only the calls that succeeded are compared.
 */
describe('what Node sets (strace)', async () => {
  const run = promisify(execFile);
  const hasStrace = await run('strace', ['-qq', '-e', 'trace=none', 'true']).then(
    () => true,
    () => false,
  );
  const script = (delay: number) => `
    const net = require('node:net');
    const srv = net.createServer(() => {}).listen(0, '127.0.0.1', () => {
      const c = net.connect(srv.address().port, '127.0.0.1', () => {
        c.setKeepAlive(true, ${delay});
        c.destroy(); srv.close();
      });
    });`;
  const trace = async (delay: number) => {
    const { stderr } = await run('strace', [
      '-f',
      '-qq',
      '-e',
      'trace=setsockopt',
      process.execPath,
      '-e',
      script(delay),
    ]);
    return stderr
      .split('\n')
      .filter((l) => /KEEP/.test(l))
      .map((l) => /(SO_KEEPALIVE|TCP_KEEP\w+), \[(\d+)\].*= (-?\d+)/.exec(l)!.slice(1).join(' '))
      .filter((call) => !call.endsWith(' -1'));
  };

  it.skipIf(!hasStrace)('setKeepAlive(true, 45000): idle 45 s, interval 1 s, 10 probes', async () => {
    expect(await trace(45_000)).toEqual([
      'SO_KEEPALIVE 1 0',
      'TCP_KEEPIDLE 45 0',
      'TCP_KEEPINTVL 1 0',
      'TCP_KEEPCNT 10 0',
    ]);
  });

  it.skipIf(!hasStrace)('setKeepAlive(true, 0) and sub-second delays leave the kernel defaults', async () => {
    for (const delay of [0, 999]) {
      expect(await trace(delay)).toEqual(['SO_KEEPALIVE 1 0']);
    }
  });
});
