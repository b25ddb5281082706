import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { Session } from '../../plugin-sdk/index.js';
import {
  createTestKit,
  loadConfig,
  type TestBackend,
  type TestClient,
  type TestProxy,
  waitFor,
} from '../../testing/index.js';

const run = promisify(execFile);

interface KeepAliveTimer {
  local: string;
  peer: string;
  /** Seconds left until the next probe, as `ss` prints it. */
  left: number;
}

/** The keep-alive timers `ss -tnoi` shows for established sockets matching an ss filter. */
async function keepAliveTimers(filter: string): Promise<KeepAliveTimer[]> {
  const { stdout } = await run('ss', ['-tnoiH', 'state', 'established', filter]);
  const timers: KeepAliveTimer[] = [];
  for (const line of stdout.split('\n')) {
    const m = /(\S+)\s+(\S+)\s+timer:\(keepalive,([\d.]+)(ms|sec|min|h)?,\d+\)/.exec(line);
    if (!m) continue;
    const unit = { ms: 0.001, sec: 1, min: 60, h: 3600 }[m[4] ?? 'sec']!;
    timers.push({ local: m[1]!, peer: m[2]!, left: Number(m[3]) * unit });
  }
  return timers;
}

/** Every established socket matching the filter, with or without a timer. */
async function sockets(filter: string): Promise<string[]> {
  const { stdout } = await run('ss', ['-tnH', 'state', 'established', filter]);
  return stdout.split('\n').filter((l) => l.trim() !== '');
}

/** Resolves when the client closed, reset or not. */
const closeOf = async (client: TestClient) => {
  await client.closed();
};

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

describe('keep-alive', () => {
  const kit = createTestKit();
  let backend: TestBackend;
  let proxy: TestProxy;
  let closed: Session[] = [];

  afterEach(async () => {
    await kit.close();
    closed = [];
  });

  async function start(pluginYaml: string, server?: TestBackend): Promise<TestProxy> {
    backend = server ?? (await kit.echo());
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends:
  - address: ${backend.address}
plugins:
  keep-alive:
${pluginYaml}
`);
    proxy.service.hooks.closed.tap('test', (s) => {
      closed.push(s);
    });
    return proxy;
  }

  const connect = () => kit.connect(proxy);

  it('sets SO_KEEPALIVE and TCP_KEEPIDLE on the client and upstream sockets (ss shows the timers)', async () => {
    await start(`
    client: { initial_delay: 41s }
    upstream: { initial_delay: 53s }
`);
    const client = await connect();
    await client.send('ping');
    await client.read(4);
    const proxyPort = portOf(proxy.address);
    const clientPort = client.localPort!;
    const upstreamPort = [...proxy.service.sessions.values()][0]!.upstream!.localPort!;
    const backendPort = backend.port;
    // Ephemeral ports are shared across destinations: always filter on both ends.
    const between = (a: number, b: number) => `( sport = :${a} and dport = :${b} )`;

    // The proxy's accepted socket: local = listener, peer = our client.
    const accepted = await keepAliveTimers(between(proxyPort, clientPort));
    expect(accepted).toHaveLength(1);
    expect(accepted[0]!.left).toBeGreaterThan(30);
    expect(accepted[0]!.left).toBeLessThanOrEqual(41);

    // The proxy's upstream socket: peer = the backend.
    const upstream = await keepAliveTimers(between(upstreamPort, backendPort));
    expect(upstream).toHaveLength(1);
    expect(upstream[0]!.left).toBeGreaterThan(42);
    expect(upstream[0]!.left).toBeLessThanOrEqual(53);

    // Control: the test's own client socket and the backend's socket have no keep-alive.
    expect(await sockets(between(clientPort, proxyPort))).toHaveLength(1);
    expect(await keepAliveTimers(between(clientPort, proxyPort))).toHaveLength(0);
    expect(await sockets(between(backendPort, upstreamPort))).toHaveLength(1);
    expect(await keepAliveTimers(between(backendPort, upstreamPort))).toHaveLength(0);
  });

  it('leaves a side alone when disabled, and keeps the kernel timing with initial_delay 0', async () => {
    await start(`
    client: { enabled: false }
    upstream: { initial_delay: 0 }
`);
    const client = await connect();
    await client.send('ping');
    await client.read(4);
    const proxyPort = portOf(proxy.address);
    const upstreamPort = [...proxy.service.sessions.values()][0]!.upstream!.localPort!;
    const accepted = `( sport = :${proxyPort} and dport = :${client.localPort} )`;
    expect(await sockets(accepted)).toHaveLength(1);
    expect(await keepAliveTimers(accepted)).toHaveLength(0);

    const upstream = await keepAliveTimers(`( sport = :${upstreamPort} and dport = :${backend.port} )`);
    expect(upstream).toHaveLength(1);
    const kernelIdle = Number(await readFile('/proc/sys/net/ipv4/tcp_keepalive_time', 'utf8'));
    expect(upstream[0]!.left).toBeGreaterThan(kernelIdle - 120);
    expect(upstream[0]!.left).toBeLessThanOrEqual(kernelIdle);
  });

  it('applies the documented defaults', async () => {
    const config = await loadConfig('listen: 127.0.0.1:0\nplugins:\n  keep-alive:\n');
    expect(config.services[0]!.plugins.find((p) => p.name === 'keep-alive')!.options).toEqual({
      client: { enabled: true, initial_delay: 60_000 },
      upstream: { enabled: true, initial_delay: 60_000 },
      client_idle_timeout: 0,
      upstream_idle_timeout: 0,
      client_fin_timeout: 30_000,
      upstream_fin_timeout: 30_000,
    });
  });

  it('rejects a sub-second initial_delay (Node sets whole seconds)', async () => {
    await expect(start(`    client: { initial_delay: 500ms }\n`)).rejects.toThrow(/at least 1s/);
  });

  it('closes a session whose client sent FIN when the backend stays silent (upstream_fin_timeout)', async () => {
    // The backend reads and never answers nor closes.
    await start(`    upstream_fin_timeout: 200ms\n`, await kit.backend((s) => s.resume()));
    const client = await connect();
    await client.end('request');
    await closeOf(client);
    await waitFor(() => closed.length === 1, 3000, 'closed hook');
    expect(closed[0]!.endedAt - closed[0]!.connectedAt).toBeGreaterThanOrEqual(200);
    expect(closed[0]!.closeReason).toBe('idle-timeout');
    expect(closed[0]!.closeDetail).toBe('upstream-fin');
  });

  it('counts the half-close timeout as inactivity: a backend still answering is not cut', async () => {
    // After the client's FIN the backend streams 10 chunks 60ms apart (600ms > 400ms), then ends.
    const server = await kit.backend((s) => {
      s.resume();
      s.once('end', () => {
        let n = 0;
        const timer = setInterval(() => {
          s.write('x');
          if (++n === 10) {
            clearInterval(timer);
            s.end();
          }
        }, 60);
        s.once('close', () => clearInterval(timer));
      });
    });
    await start(`    upstream_fin_timeout: 400ms\n`, server);
    const client = await connect();
    await client.end('request');
    expect((await client.collect(3000)).toString()).toBe('x'.repeat(10));
    await closeOf(client);
    await waitFor(() => closed.length === 1, 3000, 'closed hook');
    // The client finished first; the session ended normally, not by the timeout.
    expect(closed[0]!.closeReason).toBe('client-closed');
    expect(closed[0]!.closeDetail).toBeNull();
  });

  it('closes a session whose backend sent FIN when the client never finishes (client_fin_timeout)', async () => {
    await start(`    client_fin_timeout: 200ms\n`, await kit.greeting('bye\n', { after: 'end' }));
    // A client that keeps its side open after the server's FIN (allowHalfOpen).
    const client = await kit.connect(proxy, { allowHalfOpen: true });
    const got = await client.collect();
    // The proxy already sent its FIN, so closing now sends nothing the client could see
    // until it writes: watch the session instead.
    await waitFor(() => closed.length === 1, 3000, 'closed hook');
    expect(closed[0]!.endedAt - closed[0]!.connectedAt).toBeGreaterThanOrEqual(200);
    expect(got.toString()).toBe('bye\n');
    expect(closed[0]!.closeReason).toBe('idle-timeout');
    expect(closed[0]!.closeDetail).toBe('client-fin');
  });

  it('client_idle_timeout: a silent client is cut even while the backend keeps sending', async () => {
    const server = await kit.backend((s) => {
      const timer = setInterval(() => s.write('.'), 30);
      s.on('close', () => clearInterval(timer));
    });
    await start(`    client_idle_timeout: 250ms\n`, server);
    const client = await connect();
    await closeOf(client);
    await waitFor(() => closed.length === 1, 3000, 'closed hook');
    expect(closed[0]!.endedAt - closed[0]!.connectedAt).toBeGreaterThanOrEqual(250);
    expect(closed[0]!.closeReason).toBe('idle-timeout');
    expect(closed[0]!.closeDetail).toBe('client-idle');
  });

  it('upstream_idle_timeout: a silent backend is cut even while the client keeps sending', async () => {
    await start(`    upstream_idle_timeout: 250ms\n`, await kit.backend((s) => s.resume()));
    const client = await connect();
    const timer = setInterval(() => client.socket.write('.'), 30);
    try {
      await closeOf(client);
    } finally {
      clearInterval(timer);
    }
    await waitFor(() => closed.length === 1, 3000, 'closed hook');
    expect(closed[0]!.closeDetail).toBe('upstream-idle');
  });

  it('keeps a session open while both sides talk', async () => {
    await start(`
    client_idle_timeout: 500ms
    upstream_idle_timeout: 500ms
`);
    const client = await connect();
    const timer = setInterval(() => client.socket.write('.'), 25);
    await new Promise((r) => setTimeout(r, 1200));
    clearInterval(timer);
    expect(client.socket.destroyed).toBe(false);
    expect(client.buffered).toBeGreaterThan(5);
    expect(closed).toHaveLength(0);
    // ...and once both go quiet, the first limit closes it.
    await closeOf(client);
    await waitFor(() => closed.length === 1, 3000, 'closed hook');
    expect(closed[0]!.closeDetail).toMatch(/^(client|upstream)-idle$/);
  });
});
