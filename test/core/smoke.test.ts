import { afterEach, describe, expect, it } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { exchange, startNamed, type TestServer } from '../helpers/servers.js';

describe('smoke', () => {
  let backends: TestServer[] = [];
  let proxy: TestProxy | undefined;
  afterEach(async () => {
    await proxy?.stop();
    await Promise.all(backends.map((b) => b.close()));
    backends = [];
  });

  it('proxies to backends in round-robin order', async () => {
    backends = await Promise.all(['a', 'b'].map(startNamed));
    proxy = await startProxy(`
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
