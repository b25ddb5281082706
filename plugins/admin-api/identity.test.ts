import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestKit, type TestProxy } from '../../testing/index.js';
import { type AdminCall, adminClient } from './test-client.js';

/**
 * One backend, one identity through the admin API: the same server under other spellings
 * (upper case, a trailing dot, long IPv6 forms) is a 409 that shows the
 * existing entry; spellings resolvers disagree on are a 400; any spelling finds the backend.
 */
describe('admin-api: one backend per normalised address', () => {
  const kit = createTestKit();
  let proxy: TestProxy;
  let api: AdminCall;

  beforeAll(async () => {
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends: [{ address: "127.0.0.1:10001" }, { address: "[::1]:10001", weight: 3 }, { address: "localhost:10001" }]
plugins:
  admin-api: { listen: "127.0.0.1:0" }
`);
    api = adminClient(proxy.runtime);
  });
  afterAll(kit.close);

  it('refuses other spellings of an existing backend with 409 and the existing entry', async () => {
    const spellings: Array<[string, string]> = [
      ['[0:0:0:0:0:0:0:1]:10001', '[::1]:10001'],
      ['[0000::1]:10001', '[::1]:10001'],
      ['LOCALHOST:10001', 'localhost:10001'],
      ['localhost.:10001', 'localhost:10001'],
      ['LocalHost.:10001', 'localhost:10001'],
    ];
    for (const [spelling, existing] of spellings) {
      for (const [method, path] of [
        ['POST', '/backends'],
        ['POST', '/add'],
      ] as const) {
        const res = await api(method, path, { json: { address: spelling } });
        expect(res.status, `${method} ${path} ${spelling}`).toBe(409);
        expect(res.body.error).toBe(
          `backend ${existing} already exists (${JSON.stringify(spelling)} is the same address)`,
        );
        expect(res.body.existing).toMatchObject({ address: existing, state: 'up' });
      }
    }
    expect((await api('POST', '/backends', { json: { address: '[::1]:10001' } })).body).toMatchObject({
      error: 'backend [::1]:10001 already exists',
      existing: { address: '[::1]:10001', weight: 3 },
    });
    expect(proxy.service.backends.size).toBe(3);
  });

  it('refuses short, octal, hex and zero-padded IPv4 with 400', async () => {
    for (const address of [
      '127.1:10001',
      '127.0.1:10001',
      '127.000.0.1:10001',
      '0177.0.0.1:10001',
      '0x7f.0.0.1:10001',
      '2130706433:10001',
    ]) {
      const res = await api('POST', '/backends', { json: { address } });
      expect(res.status, address).toBe(400);
      expect(res.body.error).toMatch(/is not an IPv4 address as four decimal numbers without leading zeros/);
    }
    expect(proxy.service.backends.size).toBe(3);
  });

  it('adds a new address in its normalised form, and finds a backend by any spelling', async () => {
    const added = await api('POST', '/backends', { json: { address: '[2001:DB8:0:0::0:1]:443' } });
    expect(added.status).toBe(201);
    expect(added.body.address).toBe('[2001:db8::1]:443');
    expect(added.headers.get('location')).toBe(`/backends/${encodeURIComponent('[2001:db8::1]:443')}`);
    const got = await api('GET', `/backends/${encodeURIComponent('[2001:0DB8::1]:443')}`);
    expect(got.status).toBe(200);
    expect(got.body.address).toBe('[2001:db8::1]:443');
    const patched = await api('PATCH', `/backends/${encodeURIComponent('LOCALHOST.:10001')}`, {
      json: { weight: 7 },
    });
    expect(patched.body).toMatchObject({ address: 'localhost:10001', weight: 7 });
    const removed = await api('GET', `/remove?address=${encodeURIComponent('[0:0::0:1]:10001')}`);
    expect(removed.status).toBe(200);
    expect(removed.body.address).toBe('[::1]:10001');
    expect(proxy.service.backends.list().map((b) => b.address)).toEqual([
      '127.0.0.1:10001',
      'localhost:10001',
      '[2001:db8::1]:443',
    ]);
  });
});
