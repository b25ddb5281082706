import { afterEach, describe, expect, it } from 'vitest';
import type { Backend, Session } from '../../plugin-sdk/index.js';
import { createTestKit } from '../../testing/index.js';
import { hashString } from './hash.js';
import { buildMaglev } from './maglev.js';
import { isPrime } from './options.js';
import { buildRing } from './ring.js';

/*
 * `select` on a real service (no traffic: sockets add nothing to what a table maps) with many
 * synthetic client addresses. The backends are never dialled.
 */

const kit = createTestKit();
afterEach(kit.close);

const KEYS = 20_000;
const sessions: Session[] = Array.from(
  { length: KEYS },
  (_, i) =>
    ({
      remoteAddress: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      remotePort: 40000 + (i % 20000),
    }) as unknown as Session,
);

function addresses(n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.0.1:${20000 + from + i}`);
}

async function service(options: string, backends: string[], weights: number[] = []) {
  const proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends:
${backends.map((a, i) => `  - { address: "${a}", weight: ${weights[i] ?? 1} }`).join('\n')}
plugins:
  consistent-hash: ${options}
`);
  return proxy.service;
}

type Svc = Awaited<ReturnType<typeof service>>;

function mapping(svc: Svc, candidates: Backend[] = svc.backends.up as Backend[]): string[] {
  return sessions.map((s) => (svc.hooks.select.call(candidates, s) as Backend).address);
}

function counts(map: string[]): Map<string, number> {
  const c = new Map<string, number>();
  for (const a of map) c.set(a, (c.get(a) ?? 0) + 1);
  return c;
}

/** A registry change schedules the rebuild for the next turn; `select` would also rebuild first. */
const tick = () => new Promise((r) => setImmediate(r));

for (const algorithm of ['maglev', 'ring'] as const) {
  describe(`consistent-hash select (${algorithm})`, () => {
    const opts = `{ algorithm: ${algorithm} }`;

    it('spreads keys evenly over equal backends', async () => {
      const svc = await service(opts, addresses(10));
      const c = counts(mapping(svc));
      expect(c.size).toBe(10);
      // Maglev is near-perfect; a ring of 160 points per backend is within ~±25%.
      const tolerance = algorithm === 'maglev' ? 0.1 : 0.3;
      for (const n of c.values()) expect(Math.abs(n / (KEYS / 10) - 1)).toBeLessThan(tolerance);
    });

    it('depends only on the set of backends, not the order they were added', async () => {
      const list = addresses(10);
      const a = await service(opts, list);
      const b = await service(opts, [...list].reverse());
      expect(mapping(b)).toEqual(mapping(a));
    });

    it('moves about 1/10 of the keys when 1 of 10 backends leaves, and all back when it returns', async () => {
      const list = addresses(10);
      const svc = await service(opts, list);
      const before = mapping(svc);
      svc.backends.remove(list[3]!, { drainTimeout: 0 });
      await tick();
      const after = mapping(svc);
      let moved = 0;
      let movedOthers = 0;
      for (let i = 0; i < KEYS; i++) {
        if (before[i] === after[i]) continue;
        moved++;
        if (before[i] !== list[3]) movedOthers++;
      }
      // Every key of the leaving backend moves; the others (nearly) all stay.
      expect(after).not.toContain(list[3]);
      const share = moved / KEYS;
      expect(share).toBeGreaterThan(0.08);
      expect(share).toBeLessThan(0.125);
      if (algorithm === 'ring') expect(movedOthers).toBe(0);
      else expect(movedOthers / KEYS).toBeLessThan(0.02);
      svc.backends.add({ address: list[3]! });
      await tick();
      expect(mapping(svc)).toEqual(before);
    });

    it("sends a filtered-out backend's keys to the next entry and back, moving nobody else", async () => {
      const list = addresses(10);
      const svc = await service(opts, list);
      const all = svc.backends.up as Backend[];
      const before = mapping(svc);
      const without = all.filter((b) => b.address !== list[5]);
      const during = mapping(svc, without);
      for (let i = 0; i < KEYS; i++) {
        if (before[i] === list[5]) expect(during[i]).not.toBe(list[5]);
        else expect(during[i]).toBe(before[i]);
      }
      // A filter that reorders its copy changes nothing either.
      expect(mapping(svc, [...without].reverse())).toEqual(during);
      // Spread over the others, not dumped on one.
      const spill = counts(during.filter((_, i) => before[i] === list[5]));
      expect(spill.size).toBeGreaterThan(algorithm === 'maglev' ? 5 : 1);
      expect(mapping(svc, all)).toEqual(before);
    });

    it('gives shares by weight', async () => {
      const list = addresses(4);
      const svc = await service(opts, list, [1, 1, 2, 4]);
      const c = counts(mapping(svc));
      const tolerance = algorithm === 'maglev' ? 0.1 : 0.3;
      expect(Math.abs(c.get(list[2]!)! / c.get(list[0]!)! - 2)).toBeLessThan(2 * tolerance);
      expect(Math.abs(c.get(list[3]!)! / c.get(list[0]!)! - 4)).toBeLessThan(4 * tolerance);
    });

    it('follows a weight change (rebuild on backendChanged) and answers only candidates', async () => {
      const list = addresses(3);
      const svc = await service(opts, list);
      svc.backends.setWeight(list[0]!, 8);
      // No tick: select rebuilds first when the table is stale.
      const c = counts(mapping(svc));
      expect(c.get(list[0]!)!).toBeGreaterThan(KEYS * 0.6);
      const only = [svc.backends.get(list[2]!)!];
      expect(new Set(mapping(svc, only))).toEqual(new Set([list[2]]));
    });
  });
}

describe('consistent-hash keys', () => {
  it('key: source_ip ignores the port; key: source hashes ip and port; mapped IPv4 equals IPv4', async () => {
    const list = addresses(8);
    const byIp = await service('{}', list);
    const bySource = await service('{ key: source }', list);
    const up = (svc: Svc) => svc.backends.up as Backend[];
    const at = (svc: Svc, remoteAddress: string, remotePort: number) =>
      (svc.hooks.select.call(up(svc), { remoteAddress, remotePort } as unknown as Session) as Backend)
        .address;
    const ports = Array.from({ length: 50 }, (_, i) => 30000 + i);
    expect(new Set(ports.map((p) => at(byIp, '10.1.2.3', p))).size).toBe(1);
    expect(new Set(ports.map((p) => at(bySource, '10.1.2.3', p))).size).toBeGreaterThan(4);
    for (const p of ports) expect(at(bySource, '10.1.2.3', p)).toBe(at(bySource, '10.1.2.3', p));
    expect(at(byIp, '::ffff:10.1.2.3', 1)).toBe(at(byIp, '10.1.2.3', 2));
    // key: sni — the server name in session.tls; none: the client IP.
    const bySni = await service('{ key: sni }', list);
    const sni = (name: string | undefined, ip: string) =>
      (
        bySni.hooks.select.call(up(bySni), {
          remoteAddress: ip,
          remotePort: 1,
          tls: name === undefined ? null : { sni: name },
        } as unknown as Session) as Backend
      ).address;
    const hosts = Array.from({ length: 40 }, (_, i) => `h${i}.example`);
    expect(new Set(hosts.map((h) => sni(h, '10.0.0.1'))).size).toBeGreaterThan(4);
    for (const h of hosts) expect(sni(h, '10.9.9.9')).toBe(sni(h, '10.0.0.1'));
    expect(sni(undefined, '10.1.2.3')).toBe(at(byIp, '10.1.2.3', 5));
    expect(at(bySource, '::ffff:10.1.2.3', 7)).toBe(at(bySource, '10.1.2.3', 7));
  });
});

describe('consistent-hash bounded load (select)', () => {
  it('caps every backend at ceil(c x (load + 1) / n) and spills to the next entry', async () => {
    const list = addresses(4);
    const svc = await service('{ bounded_load: 1.25 }', list);
    const up = svc.backends.up as Backend[];
    const one = sessions[7]!;
    const home = svc.hooks.select.call(up, one) as Backend;
    // 40 sessions of the same key, each held (active++ as the core does while it connects).
    const placed: Backend[] = [];
    for (let i = 0; i < 40; i++) {
      const b = svc.hooks.select.call(up, one) as Backend;
      b.active++;
      placed.push(b);
      const total = placed.length;
      for (const x of up) expect(x.active).toBeLessThanOrEqual(Math.ceil((1.25 * total) / 4));
    }
    expect(placed[0]).toBe(home);
    expect(home.active).toBe(Math.ceil((1.25 * 40) / 4) - 0); // home fills to its cap first
    for (const b of up) b.active = 0;
  });

  it('counts the other workers sessions (peerActive)', async () => {
    const list = addresses(2);
    const svc = await service('{ bounded_load: 1.1 }', list);
    const up = svc.backends.up as Backend[];
    const one = sessions[11]!;
    const home = svc.hooks.select.call(up, one) as Backend;
    home.peerActive = 10;
    const other = up.find((b) => b !== home)!;
    expect(svc.hooks.select.call(up, one)).toBe(other);
    home.peerActive = 0;
    expect(svc.hooks.select.call(up, one)).toBe(home);
  });
});

describe('consistent-hash tables', () => {
  it('hashString is MurmurHash3-stable (tables must not change between versions)', () => {
    // Pinned values: changing the hash remaps every key of every user.
    expect([hashString(''), hashString('127.0.0.1'), hashString('10.0.0.1:80', 7)]).toEqual([
      0, 1699364902, 2294038185,
    ]);
  });

  it('maglev fills every slot of a prime table; ring gives each entry its points', () => {
    const entries = addresses(7).map((address, i) => ({ address, weight: i + 1 }));
    const owners = buildMaglev(entries, 1009);
    expect(owners.every((o) => o < 7)).toBe(true);
    const ring = buildRing(entries, 10);
    expect(ring.points.length).toBe(
      entries.reduce((s, e) => s + Math.max(1, Math.round((10 * e.weight) / 7)), 0),
    );
    for (let i = 1; i < ring.points.length; i++)
      expect(ring.points[i]!).toBeGreaterThanOrEqual(ring.points[i - 1]!);
  });

  it('isPrime', () => {
    expect([2, 3, 65537, 5_000_011].every(isPrime)).toBe(true);
    expect([0, 1, 4, 65536, 65535, 5_000_013 * 1].some(isPrime)).toBe(false);
  });
});
