import { afterEach, describe, expect, it } from 'vitest';
import type { Backend, Session } from '../../plugin-sdk/index.js';
import { createTestKit, type TestClient, type TestProxy, waitFor } from '../../testing/index.js';
import { select } from './index.js';

const kit = createTestKit();
afterEach(kit.close);
let proxy: TestProxy;
let clients: TestClient[] = [];

async function setup(weights: number[]): Promise<void> {
  clients = [];
  const backends = await Promise.all(weights.map((_, i) => kit.named(String.fromCharCode(97 + i))));
  proxy = await kit.proxy({
    backends: backends.map((b, i) => ({ address: b.address, weight: weights[i]! })),
    plugins: { p2c: {} },
  });
}

/** Opens a session, holds it, and resolves with the greeting backend's name. */
async function hold(): Promise<string> {
  const c = await kit.connect(proxy);
  clients.push(c);
  return (await c.read(2)).toString().trim();
}

describe('p2c over real sockets', () => {
  it('with two backends both are drawn every time: held sessions alternate by load', async () => {
    await setup([1, 1]);
    const got: string[] = [];
    for (let i = 0; i < 10; i++) got.push(await hold());
    expect(got.filter((n) => n === 'a').length).toBe(5);
    // Free two on a: the next two go there.
    for (const i of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].filter((k) => got[k] === 'a').slice(0, 2))
      clients[i]!.destroy();
    await waitFor(() => proxy.service.backends.list()[0]!.active === 3);
    expect([await hold(), await hold()]).toEqual(['a', 'a']);
  });

  it('compares sessions per weight: weights 3 and 1 hold 3:1', async () => {
    await setup([3, 1]);
    const got: string[] = [];
    for (let i = 0; i < 12; i++) got.push(await hold());
    expect(got.filter((n) => n === 'a').length).toBe(9);
  });

  it("counts the other workers' sessions (peerActive)", async () => {
    await setup([1, 1]);
    proxy.service.backends.list()[0]!.peerActive = 4;
    const got: string[] = [];
    for (let i = 0; i < 4; i++) got.push(await hold());
    expect(got).toEqual(['b', 'b', 'b', 'b']);
  });
});

function backend(address: string, active: number, weight = 1): Backend {
  return { address, active, peerActive: 0, weight, effectiveWeight: weight } as Backend;
}
const session = {} as Session;

describe('p2c select', () => {
  it('returns the only candidate, and only ever a candidate', () => {
    const one = [backend('x', 100)];
    expect(select(one, session)).toBe(one[0]);
    const list = Array.from({ length: 7 }, (_, i) => backend(`b${i}`, i));
    for (let i = 0; i < 1000; i++) expect(list).toContain(select(list, session));
  });

  it('never picks the most loaded of distinct loads, and picks the least loaded ~2/n of the time', () => {
    const n = 10;
    const list = Array.from({ length: n }, (_, i) => backend(`b${i}`, i * 3));
    const picks = new Map<Backend, number>();
    const draws = 20_000;
    for (let i = 0; i < draws; i++) {
      const b = select(list, session)!;
      picks.set(b, (picks.get(b) ?? 0) + 1);
    }
    expect(picks.get(list[n - 1]!)).toBeUndefined();
    // P(least loaded is one of the two drawn) = 2/n; it then always wins.
    expect(picks.get(list[0]!)! / draws).toBeGreaterThan(0.17);
    expect(picks.get(list[0]!)! / draws).toBeLessThan(0.23);
  });

  it('draws two distinct candidates: with two equal ones each wins half the ties', () => {
    const list = [backend('a', 0), backend('b', 0)];
    let a = 0;
    for (let i = 0; i < 10_000; i++) if (select(list, session) === list[0]) a++;
    expect(a / 10_000).toBeGreaterThan(0.45);
    expect(a / 10_000).toBeLessThan(0.55);
  });

  it('reads effectiveWeight, not weight', () => {
    const ramping = { ...backend('r', 0, 4), effectiveWeight: 0.4 } as Backend;
    const full = backend('f', 3, 4);
    // (0 + 1) / 0.4 = 2.5 > (3 + 1) / 4 = 1: the ramping backend loses despite no sessions.
    for (let i = 0; i < 100; i++) expect(select([ramping, full], session)).toBe(full);
  });
});
