import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, exchange } from '../../testing/index.js';

describe('smoke', () => {
  const kit = createTestKit();
  afterEach(kit.close);

  it('proxies to backends in round-robin order', async () => {
    const backends = await Promise.all(['a', 'b'].map((n) => kit.named(n)));
    const proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends:
  - address: ${backends[0]!.address}
  - address: ${backends[1]!.address}
`);
    const got: string[] = [];
    for (let i = 0; i < 4; i++) got.push((await exchange(proxy.address, 'x')).toString());
    expect(got).toEqual(['a\nx', 'b\nx', 'a\nx', 'b\nx']);
  });
});
