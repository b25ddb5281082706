import { afterEach, describe, expect, it } from 'vitest';
import type { Backend, Session } from '../../plugin-sdk/index.js';
import {
  createTestKit,
  exchange,
  loadConfig,
  type TestBackend,
  type TestProxy,
  waitFor,
} from '../../testing/index.js';
import { adminClient } from '../admin-api/test-client.js';
import type { SlowStartApi } from './index.js';
import { rampFactor, rampStep } from './ramp.js';

const kit = createTestKit();
afterEach(kit.close);
let proxy: TestProxy | undefined;

async function setup(names: string[], plugins: string): Promise<TestBackend[]> {
  const backends = await Promise.all(names.map((name) => kit.named(name)));
  proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends:
  - address: ${backends[0]!.address}
plugins:
${plugins}
`);
  return backends;
}

const pick = async () => (await exchange(proxy!.address, '')).toString().trim();
async function hold(): Promise<string> {
  const c = await kit.connect(proxy!);
  return (await c.read(2)).toString().trim();
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('slow-start ramp', () => {
  it('ramps a backend added at run time from min_weight_percent to full weight over the window, visible in GET /backends', async () => {
    const [, b] = await setup(
      ['a', 'b'],
      '  round-robin: {}\n  slow-start: { window: 1200ms, min_weight_percent: 10 }\n  admin-api: { listen: 127.0.0.1:0 }',
    );
    const api = adminClient(proxy!.runtime);
    const a = proxy!.service.backends.list()[0]!;
    expect(a.status).toEqual({}); // configured backends do not ramp
    expect((await api('POST', '/backends', { json: { address: b!.address } })).status).toBe(201);
    const added = proxy!.service.backends.get(b!.address)!;
    const started = proxy!.service.use<SlowStartApi>('slow-start')!.ramps()[0]!.since;
    expect(added.effectiveWeight).toBeCloseTo(0.1);
    const listed = (await api('GET', '/backends')).body.backends as Array<{
      address: string;
      status: object;
    }>;
    expect(listed.find((x) => x.address === b!.address)!.status).toEqual({ 'slow-start': 'slow-start' });

    // The weight only grows, never above the configured one, until the status goes.
    const samples: number[] = [];
    while (added.status['slow-start'] !== undefined) {
      samples.push(added.effectiveWeight);
      if (Date.now() - started > 5000) throw new Error('the ramp did not end');
      await sleep(40);
    }
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(1200);
    for (let i = 1; i < samples.length; i++) expect(samples[i]!).toBeGreaterThanOrEqual(samples[i - 1]!);
    expect(samples.some((w) => w > 0.3 && w < 0.9)).toBe(true);
    expect(added.effectiveWeight).toBe(1);
    const after = (await api('GET', '/backends')).body.backends as Array<{ address: string; status: object }>;
    expect(after.find((x) => x.address === b!.address)!.status).toEqual({});
    // Full weight: a plain rotation again.
    const late: string[] = [];
    for (let i = 0; i < 10; i++) late.push(await pick());
    expect(late.filter((n) => n === 'b').length).toBe(5);
  });

  it('early in a ramp round-robin gives the backend its reduced share (weights 1 and 0.1: 1 in 11)', async () => {
    // window 10s, min 10%: the factor stays at 0.1 for the first second.
    const [, b] = await setup(['a', 'b'], '  round-robin: {}\n  slow-start: { window: 10s }');
    proxy!.service.backends.add({ address: b!.address });
    const got: string[] = [];
    for (let i = 0; i < 22; i++) got.push(await pick());
    expect(got.filter((n) => n === 'b').length).toBeGreaterThanOrEqual(1);
    expect(got.filter((n) => n === 'b').length).toBeLessThanOrEqual(3);
  });

  it('ramps a backend whose health check comes back up, and not while it is down', async () => {
    const [, b] = await setup(
      ['a', 'b'],
      '  slow-start: { window: 10s }\n  health-check: { interval: 50ms, fall: 1, rise: 1, timeout: 200ms }',
    );
    proxy!.service.backends.add({ address: b!.address });
    const reg = proxy!.service.backends;
    const bb = reg.get(b!.address)!;
    expect(bb.status['slow-start']).toBe('slow-start');
    // Down: the ramp ends (nothing to ramp), and no session goes there.
    const port = b!.port;
    await b!.close();
    await waitFor(() => bb.status['health-check'] === 'down', 3000, 'b marked down');
    expect(bb.status['slow-start']).toBeUndefined();
    expect(bb.effectiveWeight).toBe(1);
    // Back up on the same port: ramps again from 10%.
    await kit.greeting('b\n', { port, after: 'end' });
    await waitFor(() => bb.status['health-check'] === 'up', 3000, 'b marked up');
    expect(bb.status['slow-start']).toBe('slow-start');
    expect(bb.effectiveWeight).toBeCloseTo(0.1);
    const ramps = proxy!.service.use<SlowStartApi>('slow-start')!.ramps();
    expect(ramps).toEqual([expect.objectContaining({ address: b!.address, factor: 0.1 })]);
    expect(ramps[0]!.until - ramps[0]!.since).toBe(10_000);
  });

  it('ramps after a drain ends; drain, removal and re-adding end or restart the ramp', async () => {
    const [, b] = await setup(['a', 'b'], '  slow-start: { window: 10s }');
    const reg = proxy!.service.backends;
    const a = reg.list()[0]!;
    reg.setDraining(a.address, true);
    expect(a.status).toEqual({});
    reg.setDraining(a.address, false);
    expect(a.status).toEqual({ 'slow-start': 'slow-start' });
    expect(a.effectiveWeight).toBeCloseTo(0.1);
    reg.setDraining(a.address, true);
    expect(a.status).toEqual({});
    expect(a.effectiveWeight).toBe(1);
    reg.setDraining(a.address, false);
    const bb = reg.add({ address: b!.address, weight: 4 });
    expect(bb.effectiveWeight).toBeCloseTo(0.4);
    reg.setWeight(b!.address, 2); // the factor stays while the weight changes
    expect(bb.effectiveWeight).toBeCloseTo(0.2);
    reg.remove(b!.address);
    expect(bb.status).toEqual({});
    expect(bb.effectiveWeight).toBe(2);
    expect(reg.add({ address: b!.address }).effectiveWeight).toBeCloseTo(0.1);
  });

  it('with least-connections a ramping backend holds its share of sessions (10% of weight: 1 in 11)', async () => {
    const [, b] = await setup(['a', 'b'], '  least-connections: {}\n  slow-start: { window: 10s }');
    proxy!.service.backends.add({ address: b!.address });
    const got: string[] = [];
    for (let i = 0; i < 11; i++) got.push(await hold());
    // (a + 1) / 1 against (b + 1) / 0.1: b takes one once a holds 9.
    expect(got.filter((n) => n === 'b').length).toBe(1);
  });

  it('with consistent-hash a ramping backend owns a growing share of the keys', async () => {
    await setup(['a'], '  consistent-hash: {}\n  slow-start: { window: 10s }');
    const reg = proxy!.service.backends;
    for (let i = 0; i < 8; i++) reg.add({ address: `127.0.0.1:${20000 + i}` });
    // Configured at start: a; the 8 added ramp together (equal factors). Let them finish.
    for (const b of reg.list()) reg.setDraining(b.address, true);
    for (const b of reg.list()) reg.setDraining(b.address, false);
    const sessions = Array.from(
      { length: 9000 },
      (_, i) => ({ remoteAddress: `10.0.${i >> 8}.${i & 255}`, remotePort: 1 }) as unknown as Session,
    );
    const shareOf = (address: string) =>
      sessions.filter(
        (s) => (proxy!.service.hooks.select.call(reg.up as Backend[], s) as Backend).address === address,
      ).length / sessions.length;
    // All 9 ramp at 10%: equal weights, so about 1/9 each.
    expect(shareOf(reg.list()[0]!.address)).toBeCloseTo(1 / 9, 1);
    const newcomer = reg.add({ address: '127.0.0.1:20100' });
    // Rebuilt with the newcomer at 10% of the others' 10%... all equal again: force the others to full weight.
    for (const b of reg.list()) if (b !== newcomer) reg.setWeightFactor(b, 'slow-start', 1);
    const low = shareOf(newcomer.address);
    expect(low).toBeGreaterThan(0.1 / 9.1 / 2);
    expect(low).toBeLessThan((0.1 / 9.1) * 2);
    reg.setWeightFactor(newcomer, 'slow-start', 1);
    expect(shareOf(newcomer.address)).toBeCloseTo(0.1, 1);
  });
});

describe('slow-start curve and config', () => {
  it("follows Envoy's curve: weight x max(min, (t / window)^(1 / aggression))", () => {
    expect(rampFactor(0, 1000, 1, 0.1)).toBe(0.1);
    expect(rampFactor(500, 1000, 1, 0.1)).toBe(0.5);
    expect(rampFactor(250, 1000, 2, 0.1)).toBe(0.5); // sqrt: fast at first
    expect(rampFactor(500, 1000, 0.5, 0.1)).toBe(0.25); // square: slow at first
    expect(rampFactor(50, 1000, 1, 0.1)).toBe(0.1);
    expect(rampFactor(1000, 1000, 1, 0.1)).toBe(1);
    expect([rampStep(30_000), rampStep(1000), rampStep(100)]).toEqual([1000, 50, 25]);
  });

  it('refuses a zero window, aggression or min_weight_percent out of range, at their keys', async () => {
    const issues = async (opts: string) => {
      try {
        await loadConfig(`listen: 127.0.0.1:0\nplugins:\n  slow-start: ${opts}\n`);
      } catch (err) {
        if (err instanceof Error && 'issues' in err)
          return (err.issues as Array<{ line: number; path: string; message: string }>).map(
            (i) => `${i.line}:${i.path}: ${i.message}`,
          );
        throw err;
      }
      return [];
    };
    expect(await issues('{ window: 0s }')).toEqual(['3:plugins.slow-start.window: must be >= 1']);
    expect((await issues('{ aggression: 0 }'))[0]).toContain('plugins.slow-start.aggression');
    expect((await issues('{ min_weight_percent: 101 }'))[0]).toContain(
      'plugins.slow-start.min_weight_percent',
    );
    expect(await issues('{}')).toEqual([]);
  });
});
