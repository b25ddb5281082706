import { afterEach, describe, expect, it } from 'vitest';
import {
  createTestKit,
  exchange,
  type TestBackend,
  type TestClient,
  type TestProxy,
  waitFor,
} from '../../testing/index.js';

const kit = createTestKit();
let backends: TestBackend[] = [];
let proxy: TestProxy;
const clients: TestClient[] = [];

afterEach(async () => {
  clients.length = 0;
  await kit.close();
});

async function setup(names: string[], weights: number[], balancer: string): Promise<void> {
  backends = await Promise.all(names.map((n) => kit.named(n)));
  proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends:
${backends.map((b, i) => `  - { address: ${b.address}, weight: ${weights[i]} }`).join('\n')}
plugins:
  ${balancer}: {}
`);
}

async function pick(): Promise<string> {
  return (await exchange(proxy.address, '')).toString().trim();
}

/** Opens a session and resolves with the backend's name once it greeted. */
async function hold(): Promise<string> {
  const c = await kit.connect(proxy);
  clients.push(c);
  const name = (await c.read(2)).toString().trim();
  return name;
}

describe('round-robin', () => {
  it('rotates evenly with equal weights', async () => {
    await setup(['a', 'b', 'c'], [1, 1, 1], 'round-robin');
    const order: string[] = [];
    for (let i = 0; i < 6; i++) order.push(await pick());
    expect(order).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('is weighted and smooth: 5,1,1 gives a a b a c a a', async () => {
    await setup(['a', 'b', 'c'], [5, 1, 1], 'round-robin');
    const order: string[] = [];
    for (let i = 0; i < 14; i++) order.push(await pick());
    expect(order.slice(0, 7)).toEqual(['a', 'a', 'b', 'a', 'c', 'a', 'a']);
    expect(order.slice(7)).toEqual(order.slice(0, 7));
  });

  it('follows weight changes and backends added at run time', async () => {
    await setup(['a', 'b'], [1, 1], 'round-robin');
    const c = await kit.named('c');
    backends.push(c);
    proxy.service.backends.add({ address: c.address, weight: 2 });
    const counts: Record<string, number> = {};
    for (let i = 0; i < 40; i++) {
      const n = await pick();
      counts[n] = (counts[n] ?? 0) + 1;
    }
    expect(counts).toEqual({ a: 10, b: 10, c: 20 });
  });
});

describe('least-connections', () => {
  it('sends new sessions to the backend with the fewest active ones; ties rotate', async () => {
    await setup(['a', 'b', 'c'], [1, 1, 1], 'least-connections');
    const first = [await hold(), await hold(), await hold()];
    expect(new Set(first)).toEqual(new Set(['a', 'b', 'c']));
    // Close the session on b: b is now the least loaded.
    clients[first.indexOf('b')]!.destroy();
    await waitFor(() => proxy.service.backends.get(backends[1]!.address)!.active === 0);
    expect(await hold()).toBe('b');
  });

  it('compares active sessions per weight', async () => {
    await setup(['a', 'b'], [3, 1], 'least-connections');
    const got: string[] = [];
    for (let i = 0; i < 8; i++) got.push(await hold());
    expect(got.filter((n) => n === 'a').length).toBe(6);
    expect(got.filter((n) => n === 'b').length).toBe(2);
  });

  it("counts the other cluster workers' sessions (peerActive) with its own", async () => {
    await setup(['a', 'b', 'c'], [1, 1, 1], 'least-connections');
    const reg = proxy.service.backends;
    // What a worker's peer view says: the other workers hold 5 sessions on a, 1 on c.
    reg.get(backends[0]!.address)!.peerActive = 5;
    reg.get(backends[2]!.address)!.peerActive = 1;
    // b and c fill up to a's 5 before a gets one (without the peer counts a would get a third).
    const got: string[] = [];
    for (let i = 0; i < 8; i++) got.push(await hold());
    expect(got).not.toContain('a');
    expect(got.filter((n) => n === 'b').length).toBeGreaterThanOrEqual(4);
  });

  it('keeps counts right while backends are removed, re-added and added', async () => {
    await setup(['a', 'b'], [1, 1], 'least-connections');
    await hold();
    await hold();
    const reg = proxy.service.backends;
    const bAddr = backends[1]!.address;
    const b = reg.get(bAddr)!;
    expect(b.active).toBe(1);
    reg.remove(bAddr, { drainTimeout: 60_000 });
    expect(reg.get(bAddr)).toBeUndefined();
    // Removed: takes nothing new; its session still counts.
    expect(await hold()).toBe('a');
    expect(b.active).toBe(1);
    // Re-added while its old session lives: same object, the count carries over.
    const again = reg.add({ address: bAddr });
    expect(again).toBe(b);
    expect(again.active).toBe(1);
    expect(await hold()).toBe('b'); // a has 2, b has 1
    const c = await kit.named('c');
    backends.push(c);
    reg.add({ address: c.address });
    expect(await hold()).toBe('c');
    for (const s of clients.splice(0)) s.destroy();
    await waitFor(() => reg.list().every((x) => x.active === 0), 3000, 'counts back to zero');
  });
});
