import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, exchange, type TestProxy } from '../../testing/index.js';
import type { CircuitBreakerApi } from './api.js';

/** A dead backend among healthy ones should cost clients nothing (design notes, section 4). */
describe('one of three backends dead: 100 sessions', () => {
  const kit = createTestKit();
  afterEach(kit.close);
  let proxy: TestProxy;

  const run = async (plugins: string) => {
    const servers = await Promise.all(['a', 'b'].map((n) => kit.named(n)));
    const dead = (await kit.refusing()).address;
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends:
  - address: ${servers[0]!.address}
  - address: ${dead}
  - address: ${servers[1]!.address}
${plugins}
`);
    const replies: string[] = [];
    // 10 clients at a time, 100 in all.
    await Promise.all(
      Array.from({ length: 10 }, async (_, worker) => {
        for (let i = 0; i < 10; i++) replies.push(String(await exchange(proxy.address, `${worker}.${i}`)));
      }),
    );
    return { replies, dead: proxy.service.backends.get(dead)! };
  };

  it('all succeed with the core alone (retries on another backend)', async () => {
    const { replies, dead } = await run('');
    expect(replies).toHaveLength(100);
    expect(replies.every((r) => /^[ab]\n\d\.\d$/.test(r))).toBe(true);
    expect(dead.connectFailures).toBeGreaterThan(10);
    expect(proxy.service.counters.retries).toBe(dead.connectFailures);
  });

  it('all succeed with the circuit breaker, which stops dialling the dead one', async () => {
    const { replies, dead } = await run('plugins:\n  circuit-breaker: {}');
    expect(replies).toHaveLength(100);
    expect(replies.every((r) => /^[ab]\n\d\.\d$/.test(r))).toBe(true);
    const api = proxy.service.use<CircuitBreakerApi>('circuit-breaker')!;
    expect(api.get(dead.address)!.state).toBe('open');
    // 5 to open, plus at most the attempts already in flight when it opened.
    expect(dead.connectFailures).toBeGreaterThanOrEqual(5);
    expect(dead.connectFailures).toBeLessThan(5 + 10);
  });
});
