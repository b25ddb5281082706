import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, Session } from '../../plugin-sdk/index.js';
import {
  createTestKit,
  exchange,
  freePort,
  type TestBackend,
  type TestProxy,
  waitFor,
} from '../../testing/index.js';
import type { HealthCheckApi } from './api.js';

const kit = createTestKit();
afterEach(kit.close);
let proxy: TestProxy;

/**
 * A backend that greets with `<name> ok` and echoes, or, when `healthy` is false, greets with
 * `<name> sick` and ends. The checks expect " ok": flipping `healthy` fails them while the port
 * still accepts. (A wrong reply on a connection left open fails at the timeout: probe.test.ts.)
 */
interface Switchable extends TestBackend {
  name: string;
  healthy: boolean;
}

async function switchable(name: string): Promise<Switchable> {
  const result = (await kit.backend((socket) => {
    if (!result.healthy) {
      socket.end(`${name} sick\n`);
      return;
    }
    socket.write(`${name} ok\n`);
    socket.pipe(socket);
  })) as Switchable;
  result.name = name;
  result.healthy = true;
  return result;
}

async function start(backends: string[], options: Record<string, unknown>): Promise<HealthCheckApi> {
  proxy = await kit.proxy(`
listen: 127.0.0.1:0
retries: 1
backends:
${backends.map((a) => `  - address: ${a}`).join('\n')}
plugins:
  health-check: ${JSON.stringify(options)}
`);
  return proxy.service.use<HealthCheckApi>('health-check')!;
}

/** Sends `x`, returns which backend answered ('' when the proxy closed without a backend). */
async function pick(): Promise<string> {
  const reply = (await exchange(proxy.address, 'x')).toString();
  return reply.split(' ')[0]!;
}

async function picks(n: number): Promise<string[]> {
  const got: string[] = [];
  for (let i = 0; i < n; i++) got.push(await pick());
  return got;
}

/** Records every health status change with the counters the checker had at that moment. */
function recordTransitions(api: HealthCheckApi) {
  const events: Array<{ address: string; status: string; successes: number; failures: number }> = [];
  proxy.service.hooks.backendStatus.tap('test', (b: Backend, source: string, status: string) => {
    if (source !== 'health-check') return;
    const h = api.get(b)!;
    events.push({
      address: b.address,
      status,
      successes: h.consecutiveSuccesses,
      failures: h.consecutiveFailures,
    });
  });
  return events;
}

const fast = { interval: 40, timeout: '1s', jitter: 0, expect: ' ok' };

describe('health-check: marking down and up', () => {
  it('a closed backend is marked down after `fall` failures and gets no traffic; it returns after `rise`', async () => {
    const a = await switchable('a');
    const b = await switchable('b');
    const api = await start([a.address, b.address], { ...fast, rise: 2, fall: 3, initial: 'fully-up' });
    const events = recordTransitions(api);
    await waitFor(() => api.list().every((h) => h.checks >= 2), 5000, 'first checks');
    expect(await picks(4)).toEqual(['a', 'b', 'a', 'b']);

    // The backend process goes away: connects are refused.
    await b.close();
    await waitFor(() => !api.isHealthy(proxy.service.backends.get(b.address)!), 5000, 'b marked down');
    expect(events).toEqual([{ address: b.address, status: 'down', successes: 0, failures: 3 }]);
    const hb = api.get(b.address)!;
    expect(hb).toMatchObject({ healthy: false, phase: 'down' });
    expect(hb.lastError).toMatch(/^connect: .*ECONNREFUSED/);
    expect(proxy.service.backends.get(b.address)!.status['health-check']).toBe('down');

    const failuresBefore = proxy.service.counters.connectFailures;
    expect(await picks(6)).toEqual(['a', 'a', 'a', 'a', 'a', 'a']);
    // Not even tried: no connect attempt failed on b.
    expect(proxy.service.counters.connectFailures).toBe(failuresBefore);

    // It comes back on the same port.
    await b.reopen();
    await waitFor(() => api.isHealthy(proxy.service.backends.get(b.address)!), 5000, 'b marked up');
    expect(events[1]).toEqual({ address: b.address, status: 'up', successes: 2, failures: 0 });
    expect(new Set(await picks(4))).toEqual(new Set(['a', 'b']));
    expect(api.counters).toMatchObject({ markedDown: 1, markedUp: 1 });
  });

  it('a wrong reply marks a backend down although its port accepts, and fall resets on success', async () => {
    const a = await switchable('a');
    const b = await switchable('b');
    const api = await start([a.address, b.address], { ...fast, rise: 1, fall: 2, initial: 'fully-up' });
    const events = recordTransitions(api);
    await waitFor(() => (api.get(b.address)?.checks ?? 0) >= 1, 5000, 'first check');
    b.healthy = false;
    await waitFor(() => events.length === 1, 5000, 'b marked down');
    expect(events[0]).toMatchObject({ address: b.address, status: 'down', failures: 2 });
    expect(api.get(b.address)!.lastError).toMatch(/"b sick\\n"/);
    expect(await picks(4)).toEqual(['a', 'a', 'a', 'a']);
    b.healthy = true;
    await waitFor(() => events.length === 2, 5000, 'b marked up');
    expect(events[1]).toMatchObject({ status: 'up', successes: 1 });
  });

  it('initial fully-down: no sessions until `rise` checks passed', async () => {
    const a = await switchable('a');
    const api = await start([a.address], {
      interval: 100,
      fast_interval: 400,
      jitter: 0,
      rise: 3,
      initial: 'fully-down',
      expect: ' ok',
    });
    expect(proxy.service.backends.get(a.address)!.status['health-check']).toBe('down');
    expect(api.allDown).toBe(true);
    expect(await pick()).toBe('');
    await waitFor(() => api.isHealthy(proxy.service.backends.get(a.address)!), 5000, 'a up');
    expect(api.get(a.address)!.consecutiveSuccesses).toBeGreaterThanOrEqual(3);
    expect(await pick()).toBe('a');
  });

  it('initial up (default): one failed first check is enough to mark a dead backend down', async () => {
    const a = await switchable('a');
    const dead = (await kit.refusing()).address;
    const api = await start([a.address, dead], { interval: 5000, jitter: 0, fall: 3, expect: ' ok' });
    await waitFor(() => api.get(dead)?.checks === 1, 5000, 'first check of the dead backend');
    expect(api.get(dead)).toMatchObject({ healthy: false, consecutiveFailures: 1 });
    expect(api.get(a.address)).toMatchObject({ healthy: true });
  });
});

describe('health-check: send / expect with redis', () => {
  let redis: ChildProcess | undefined;
  let redisAddress = '';

  beforeAll(async () => {
    // redis-server cannot take port 0: pick a free one and retry if someone grabs it first.
    for (let attempt = 0; attempt < 5 && redis === undefined; attempt++) {
      const port = await freePort();
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--dir',
          tmpdir(),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const ready = await new Promise<boolean>((resolve) => {
        let out = '';
        child.stdout!.on('data', (c) => {
          out += c.toString();
          if (out.includes('Ready to accept connections')) resolve(true);
        });
        child.once('exit', () => resolve(false));
        child.once('error', () => resolve(false));
      });
      if (ready) {
        redis = child;
        redisAddress = `127.0.0.1:${port}`;
      }
    }
    if (redis === undefined) throw new Error('could not start redis-server');
  });

  afterAll(async () => {
    if (redis && redis.exitCode === null) {
      redis.kill('SIGKILL');
      await once(redis, 'exit');
    }
  });

  it('PING/+PONG keeps redis up; a server answering something else goes down', async () => {
    const wrong = await kit.backend((socket) => {
      socket.on('data', () => socket.end('-ERR unknown command\r\n'));
    });
    const api = await start([redisAddress, wrong.address], {
      interval: 40,
      timeout: '1s',
      jitter: 0,
      rise: 2,
      fall: 2,
      send: 'PING\\r\\n',
      expect: '+PONG',
    });
    await waitFor(() => api.get(wrong.address)?.healthy === false, 5000, 'wrong server down');
    await waitFor(() => (api.get(redisAddress)?.checks ?? 0) >= 3, 5000, 'redis checked');
    expect(api.get(redisAddress)).toMatchObject({ healthy: true, phase: 'up', lastError: null });
    expect(api.get(wrong.address)!.lastError).toContain('"-ERR unknown command\\r\\n"');

    for (let i = 0; i < 4; i++) {
      const c = await kit.connect(proxy);
      await c.send('PING\r\n');
      expect((await c.read(7)).toString()).toBe('+PONG\r\n');
      c.destroy();
    }
  });

  it('expect_regex on the reply', async () => {
    const api = await start([redisAddress], {
      interval: 40,
      timeout: '1s',
      jitter: 0,
      rise: 1,
      fall: 1,
      initial: 'fully-up',
      send: 'INFO server\\r\\n',
      expect_regex: 'redis_version:7\\.',
    });
    await waitFor(() => (api.get(redisAddress)?.checks ?? 0) >= 2, 5000, 'redis checked');
    expect(api.get(redisAddress)).toMatchObject({ healthy: true, lastError: null });
  });
});

describe('health-check: sessions of a backend marked down', () => {
  async function holdSessionThenFail(onMarkedDown: 'keep' | 'close') {
    const a = await switchable('a');
    const b = await switchable('b');
    const api = await start([a.address, b.address], {
      ...fast,
      fall: 1,
      initial: 'fully-up',
      on_marked_down: onMarkedDown,
    });
    const closed: Session[] = [];
    proxy.service.hooks.closed.tap('test', (s: Session) => {
      closed.push(s);
    });
    await waitFor(() => api.list().every((h) => h.checks >= 1), 5000, 'first checks');
    // Round robin: the first session goes to a.
    const client = await kit.connect(proxy);
    expect((await client.read(5)).toString()).toBe('a ok\n');
    a.healthy = false;
    await waitFor(() => api.get(a.address)?.healthy === false, 5000, 'a down');
    return { api, client, closed };
  }

  it('on_marked_down: close ends them (reason killed, detail health-check)', async () => {
    const { api, client, closed } = await holdSessionThenFail('close');
    await waitFor(() => client.isClosed || client.ended, 5000, 'client closed by the proxy');
    await waitFor(() => closed.length === 1, 5000, 'session released');
    expect(closed[0]).toMatchObject({ closeReason: 'killed', closeDetail: 'health-check' });
    expect(api.counters.sessionsClosed).toBe(1);
  });

  it('on_marked_down: keep lets them run', async () => {
    const { api, client, closed } = await holdSessionThenFail('keep');
    await client.send('still there');
    expect((await client.read(11)).toString()).toBe('still there');
    expect(closed).toEqual([]);
    expect(api.counters.sessionsClosed).toBe(0);
  });
});

describe('health-check: every backend down', () => {
  async function allSick(whenAllDown: 'refuse' | 'panic') {
    const a = await switchable('a');
    const b = await switchable('b');
    a.healthy = false;
    b.healthy = false;
    const api = await start([a.address, b.address], { ...fast, fall: 1, when_all_down: whenAllDown });
    await waitFor(() => api.allDown, 5000, 'all down');
    return { api, a, b };
  }

  it('refuse (default): clients are closed without a backend, and counted', async () => {
    const { api, a } = await allSick('refuse');
    const before = api.counters.refusedAllDown;
    expect((await exchange(proxy.address)).length).toBe(0);
    expect((await exchange(proxy.address)).length).toBe(0);
    expect(api.counters.refusedAllDown).toBe(before + 2);
    expect(proxy.service.counters.noBackend).toBeGreaterThanOrEqual(2);
    expect(a.accepted - api.get(a.address)!.checks).toBeLessThanOrEqual(1); // only checks reached a

    a.healthy = true;
    await waitFor(() => !api.allDown, 5000, 'a back');
    expect(await picks(3)).toEqual(['a', 'a', 'a']);
  });

  it('panic: sessions go to all backends as if healthy', async () => {
    const { api } = await allSick('panic');
    const got = await picks(4);
    expect(new Set(got)).toEqual(new Set(['a', 'b']));
    expect(api.counters.panicRouted).toBeGreaterThanOrEqual(3);
    expect(api.counters.refusedAllDown).toBe(0);
  });
});

describe('health-check: backends added and removed at run time', () => {
  it('checks a new backend, stops checking a removed one', async () => {
    const a = await switchable('a');
    const api = await start([a.address], fast);
    const dead = (await kit.refusing()).address;
    proxy.service.backends.add({ address: dead });
    await waitFor(() => api.get(dead)?.healthy === false, 5000, 'dead backend marked down');
    expect(api.get(dead)!.lastError).toMatch(/ECONNREFUSED/);
    expect(await picks(3)).toEqual(['a', 'a', 'a']);

    const c = await switchable('c');
    proxy.service.backends.add({ address: c.address });
    await waitFor(() => (api.get(c.address)?.checks ?? 0) >= 2, 5000, 'c checked');
    expect(new Set(await picks(4))).toEqual(new Set(['a', 'c']));

    proxy.service.backends.remove(c.address);
    expect(api.get(c.address)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 50)); // a check aborted mid-connect may still be accepted
    const accepted = c.accepted;
    await new Promise((r) => setTimeout(r, 200)); // five intervals
    expect(c.accepted).toBe(accepted);
  });
});

describe('health-check: jitter and stop', () => {
  it('jitter spreads the first checks of many backends', async () => {
    const firstSeen: number[] = [];
    const servers: TestBackend[] = [];
    for (let i = 0; i < 8; i++) {
      const s = await kit.backend(() => {
        if (s.accepted === 1) firstSeen.push(performance.now());
      });
      servers.push(s);
    }
    await start(
      servers.map((s) => s.address),
      { interval: '2s', jitter: 50 },
    );
    await waitFor(() => firstSeen.length === 8, 5000, 'every first check');
    // First checks fall anywhere in the first second, not as one burst: without jitter all eight
    // arrive within a few ms (one or two 50 ms slots); with it they spread over many slots.
    expect(new Set(firstSeen.map((t) => Math.floor(t / 50))).size).toBeGreaterThanOrEqual(3);
  });

  it('stop ends checks in flight and leaves no timer running', async () => {
    const silent = await kit.backend((socket) => socket.on('end', () => socket.destroy()));
    const api = await start([silent.address], { interval: 30, timeout: '10s', expect: 'never' });
    await waitFor(() => silent.sockets.size === 1, 5000, 'check in flight');
    await proxy.stop();
    await waitFor(() => silent.sockets.size === 0, 3000, 'check socket closed at stop');
    const accepted = silent.accepted;
    await new Promise((r) => setTimeout(r, 150));
    expect(silent.accepted).toBe(accepted);
    expect(api.counters.checks).toBe(0);
  });
});

describe('health-check: robustness', () => {
  it('a throwing backendStatus listener does not stop the checks', async () => {
    const a = await switchable('a');
    const b = await switchable('b');
    const api = await start([a.address, b.address], { ...fast, fall: 1, rise: 1, initial: 'fully-up' });
    proxy.service.hooks.backendStatus.tap('test', () => {
      throw new Error('listener bug');
    });
    b.healthy = false;
    await waitFor(() => api.get(b.address)?.healthy === false, 5000, 'b down');
    b.healthy = true;
    await waitFor(() => api.get(b.address)?.healthy === true, 5000, 'b up again');
    expect(api.counters).toMatchObject({ markedDown: 1, markedUp: 1 });
  });

  it('refuses conflicting options at start-up', async () => {
    await expect(
      kit.proxy(`
listen: 127.0.0.1:0
plugins:
  health-check: { send: 'a', send_hex: '61' }
`),
    ).rejects.toThrow(/health-check.*failed to apply: set only one of send and send_hex/);
    await expect(
      kit.proxy(`
listen: 127.0.0.1:0
plugins:
  health-check: { expect_regex: '(' }
`),
    ).rejects.toThrow(/expect_regex: Invalid regular expression/);
  });
});
