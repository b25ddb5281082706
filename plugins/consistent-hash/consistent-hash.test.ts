import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, loadConfig, type TestBackend, type TestProxy, waitFor } from '../../testing/index.js';

/*
 * Real sockets: clients bind their own 127.x.y.z source address (all of 127/8 is loopback on
 * Linux), so the proxy sees many client IPs.
 */

const kit = createTestKit();
afterEach(kit.close);

function startBackends(n: number): Promise<TestBackend[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => kit.named(`b${i}`)));
}

function proxyFor(list: TestBackend[], plugins: string): Promise<TestProxy> {
  return kit.proxy(`
listen: 127.0.0.1:0
backends:
${list.map((b) => `  - address: ${b.address}`).join('\n')}
plugins:
${plugins}
`);
}

/**
 * Connects from `localAddress` (and port, 0 = any), sends `hello` if given, and resolves with
 * the greeting backend's name.
 */
async function nameFrom(
  proxy: TestProxy,
  localAddress: string,
  localPort = 0,
  hello?: string,
): Promise<string> {
  const colon = proxy.address.lastIndexOf(':');
  const socket = connect({
    host: proxy.address.slice(0, colon),
    port: Number(proxy.address.slice(colon + 1)),
    localAddress,
    localPort,
  });
  if (hello !== undefined) socket.write(hello);
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    text += chunk;
    if (text.includes('\n')) socket.destroy();
  });
  socket.on('error', () => {});
  await once(socket, 'close');
  if (!text.includes('\n')) throw new Error(`no greeting for a client from ${localAddress}`);
  return text.trim();
}

/** 127.1.x.y client addresses. */
const clientIps = (n: number) =>
  Array.from({ length: n }, (_, i) => `127.1.${(i >> 8) & 255}.${(i & 255) + 1}`);

async function namesFor(proxy: TestProxy, ips: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const ip of ips) out.push(await nameFrom(proxy, ip));
  return out;
}

describe('consistent-hash over real sockets', () => {
  it('keeps each client IP on one backend, across sessions and across instances listing backends in another order', async () => {
    const list = await startBackends(5);
    const a = await proxyFor(list, '  consistent-hash: {}');
    const b = await proxyFor([...list].reverse(), '  consistent-hash: {}');
    const ips = clientIps(30);
    const first = await namesFor(a, ips);
    expect(await namesFor(a, ips)).toEqual(first); // sticky across sessions
    expect(await namesFor(b, ips)).toEqual(first); // and across instances
    expect(new Set(first).size).toBeGreaterThanOrEqual(4); // and spread
  });

  it('key: source spreads one client IP over several backends (by source port)', async () => {
    const list = await startBackends(5);
    const proxy = await proxyFor(list, '  consistent-hash: { key: source }');
    const names = new Set<string>();
    for (let i = 0; i < 20; i++) names.add(await nameFrom(proxy, '127.1.0.1'));
    expect(names.size).toBeGreaterThanOrEqual(3);
  });

  it('moves only the leaving backend clients (ring: exactly; maglev: ~1/10) and all of them back when it returns', async () => {
    const list = await startBackends(10);
    for (const algorithm of ['ring', 'maglev']) {
      const proxy = await proxyFor(list, `  consistent-hash: { algorithm: ${algorithm} }`);
      const ips = clientIps(100);
      const before = await namesFor(proxy, ips);
      const leaving = before[0]!;
      const address = list[Number(leaving.slice(1))]!.address;
      proxy.service.backends.remove(address, { drainTimeout: 0 });
      const after = await namesFor(proxy, ips);
      let movedOthers = 0;
      for (let i = 0; i < ips.length; i++) {
        if (before[i] === leaving) expect(after[i]).not.toBe(leaving);
        else if (after[i] !== before[i]) movedOthers++;
      }
      expect(movedOthers).toBeLessThanOrEqual(algorithm === 'ring' ? 0 : 3);
      proxy.service.backends.add({ address });
      expect(await namesFor(proxy, ips)).toEqual(before);
    }
  });

  it("sends a down backend's clients to the next entry and back once it recovers (health-check)", async () => {
    const list = await startBackends(4);
    const proxy = await proxyFor(
      list,
      '  consistent-hash: {}\n  health-check: { interval: 50ms, fall: 1, rise: 1, timeout: 200ms }',
    );
    const ips = clientIps(40);
    const before = await namesFor(proxy, ips);
    const victim = before[0]!;
    const server = list[Number(victim.slice(1))]!;
    const port = server.port;
    await server.close();
    const backend = proxy.service.backends.get(server.address)!;
    await waitFor(() => backend.status['health-check'] === 'down', 3000, 'marked down');
    const during = await namesFor(proxy, ips);
    for (let i = 0; i < ips.length; i++) {
      if (before[i] === victim) expect(during[i]).not.toBe(victim);
      else expect(during[i]).toBe(before[i]); // nobody else moves
    }
    // The same port again (what a restarted backend does).
    await kit.named(victim, { port });
    await waitFor(() => backend.status['health-check'] === 'up', 3000, 'marked up');
    expect(await namesFor(proxy, ips)).toEqual(before);
  });

  it('key: sni hashes the server name a peek-stage plugin found, whatever the client IP', async () => {
    const list = await startBackends(5);
    // A stand-in for a ClientHello parser: the first line is the server name; it is consumed
    // (the backend never sees it) and put where such a plugin puts it, session.tls.
    const dir = await mkdtemp(join(tmpdir(), 'switchyard-sni-'));
    kit.defer(() => rm(dir, { recursive: true, force: true }));
    await writeFile(
      join(dir, 'first-line-sni.js'),
      `export default {
  name: 'first-line-sni',
  apply(service) {
    service.hooks.peek.tap({ name: 'first-line-sni', maxBytes: 256, timeout: 2000 }, (session, bytes) => {
      const nl = bytes.indexOf(10);
      if (nl < 0) return 'more';
      if (nl > 0) session.tls = { sni: Buffer.from(bytes.subarray(0, nl)).toString('latin1') };
      return nl + 1;
    });
  },
};
`,
    );
    const proxy = await kit.proxy(
      `listen: 127.0.0.1:0
backends:
${list.map((b) => `  - address: ${b.address}`).join('\n')}
plugins:
  consistent-hash: { key: sni }
  ./first-line-sni.js: {}
`,
      { baseDir: dir },
    );
    const names = Array.from({ length: 12 }, (_, i) => `svc${i}.example`);
    const viaIp = async (ip: string, sni: string) => nameFrom(proxy, ip, 0, `${sni}\n`);
    const first = await Promise.all(names.map((n) => viaIp('127.1.5.1', n)));
    expect(new Set(first).size).toBeGreaterThanOrEqual(3);
    // The same names from other client IPs: the same backends.
    for (const ip of ['127.1.5.2', '127.1.6.3'])
      expect(await Promise.all(names.map((n) => viaIp(ip, n)))).toEqual(first);
    // No server name (an empty first line): hashed by client IP, so one IP sticks to one backend.
    const noSni = await Promise.all(Array.from({ length: 4 }, () => viaIp('127.1.7.7', '')));
    expect(new Set(noSni).size).toBe(1);
  });

  it('bounded_load: one hot client spills to the next entries, no backend above c x average', async () => {
    const list = await startBackends(4);
    const proxy = await proxyFor(list, '  consistent-hash: { bounded_load: 1.25 }');
    const held: ReturnType<typeof connect>[] = [];
    const names: string[] = [];
    try {
      for (let i = 0; i < 16; i++) {
        const colon = proxy.address.lastIndexOf(':');
        const s = connect({
          host: '127.0.0.1',
          port: Number(proxy.address.slice(colon + 1)),
          localAddress: '127.1.9.9',
        });
        held.push(s);
        s.setEncoding('utf8');
        const [line] = (await once(s, 'data')) as [string];
        names.push(line.trim());
      }
      const counts = new Map<string, number>();
      for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
      // 16 sessions, 4 backends: at most ceil(1.25 x 16 / 4) = 5 each; the home backend is full.
      expect(Math.max(...counts.values())).toBeLessThanOrEqual(5);
      expect(counts.get(names[0]!)).toBe(5);
      expect(counts.size).toBeGreaterThanOrEqual(3);
    } finally {
      for (const s of held) s.destroy();
    }
  });
});

interface Issue {
  line: number;
  col: number;
  path: string;
  message: string;
}

/** The issues of a config error (what `switchyard validate` prints, one per line). */
async function issuesOf(plugins: string): Promise<Issue[]> {
  try {
    await loadConfig(`listen: 127.0.0.1:0\nplugins:\n${plugins}\n`);
  } catch (err) {
    if (err instanceof Error && 'issues' in err) return err.issues as Issue[];
    throw err;
  }
  throw new Error('config was accepted');
}

describe('consistent-hash config', () => {
  it('refuses a Maglev table_size that is not a prime, at its line, naming the nearest primes', async () => {
    expect(await issuesOf('  consistent-hash:\n    table_size: 65536')).toEqual([
      expect.objectContaining({
        line: 4,
        col: 17,
        path: 'plugins.consistent-hash.table_size',
        message: 'table_size 65536 is not a prime (Maglev needs one); nearest: 65521 or 65537',
      }),
    ]);
  });

  it('refuses options of the other algorithm and a table beyond the schema bounds', async () => {
    const ring = await issuesOf('  consistent-hash: { algorithm: ring, table_size: 65537 }');
    expect(ring.map((i) => i.path)).toEqual(['plugins.consistent-hash.table_size']);
    const maglev = await issuesOf('  consistent-hash: { ring_points: 100 }');
    expect(maglev[0]!.message).toContain('ring_points applies to algorithm: ring');
    const big = await issuesOf('  consistent-hash: { table_size: 5000012 }');
    expect(big[0]!.message).toContain('must be <= 5000011');
    const c = await issuesOf('  consistent-hash: { bounded_load: 0.9 }');
    expect(c[0]!.path).toBe('plugins.consistent-hash.bounded_load');
  });
});
