import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { DiscoverySource } from '../../plugin-sdk/index.js';
import { readState } from '../../plugins/admin-api/state-file.js';
import { adminClient } from '../../plugins/admin-api/test-client.js';
import { createTestKit, exchange, type TestBackend, type TestProxy, waitFor } from '../../testing/index.js';

const SOURCE = fileURLToPath(new URL('../fixtures/plugins/list-source.js', import.meta.url));

describe('discovery sources (registry.reconcile)', () => {
  const kit = createTestKit();
  let servers: TestBackend[] = [];
  let proxy: TestProxy | undefined;
  const dirs: string[] = [];
  afterEach(async () => {
    await kit.close();
    proxy = undefined;
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  const start = async (
    options: { config?: number[]; source?: (address: (i: number) => string) => string; admin?: string } = {},
  ) => {
    servers = await Promise.all(['a', 'b', 'c', 'd'].map((name) => kit.named(name)));
    const config = (options.config ?? [0]).map((i) => `  - address: ${servers[i]!.address}`).join('\n');
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
drain_timeout: 300ms
backends:
${config}
plugins:
  ${SOURCE}: ${options.source?.(addr) ?? '{}'}
  admin-api: { listen: 127.0.0.1:0${options.admin ?? ''} }
`);
    return proxy.service.use<DiscoverySource>('list-source')!;
  };
  const addr = (i: number) => servers[i]!.address;
  const names = async (n: number) => {
    const seen: string[] = [];
    for (let i = 0; i < n; i++) seen.push((await exchange(proxy!.address, '')).toString().trim());
    return seen;
  };

  it('adds, re-weights in place (same Backend, counters kept) and drains what the source drops', async () => {
    const source = await start();
    const result = source.update([{ address: addr(1) }, { address: addr(2), weight: 1 }]);
    expect(result).toMatchObject({ added: [addr(1), addr(2)], removed: [], updated: [], conflicts: [] });
    const registry = proxy!.service.backends;
    expect(registry.list().map((b) => [b.address, b.origin])).toEqual([
      [addr(0), 'config'],
      [addr(1), 'list-source'],
      [addr(2), 'list-source'],
    ]);
    expect((await names(3)).sort()).toEqual(['a', 'b', 'c']);

    // Same list again: nothing changes. New weight: the same object, its counters intact.
    const c = registry.get(addr(2))!;
    const total = c.total;
    expect(total).toBeGreaterThan(0);
    expect(source.update([{ address: addr(1) }, { address: addr(2) }])).toMatchObject({ updated: [] });
    expect(source.update([{ address: addr(1) }, { address: addr(2), weight: 3 }]).updated).toEqual([addr(2)]);
    expect(registry.get(addr(2))).toBe(c);
    expect(c.weight).toBe(3);
    expect(c.total).toBe(total);
    const seen = await names(10);
    expect(seen.filter((n) => n === 'c').length).toBe(6); // 3 of every 5

    // Dropped: no new sessions; a running one continues until the drain timeout (300 ms).
    registry.remove(addr(0), { drainTimeout: 0 });
    const held = await kit.connect(proxy!.address);
    await held.read(2);
    const heldOn = registry.list().find((b) => b.active > 0)!;
    expect(heldOn.origin).toBe('list-source');
    const keep = [addr(1), addr(2)].filter((a) => a !== heldOn.address);
    const closed = held.closed();
    const dropped = source.update(keep.map((address) => ({ address })));
    expect(dropped.removed).toEqual([heldOn.address]);
    expect(heldOn.state).toBe('removed');
    await held.send('still here');
    expect((await held.read(10)).toString()).toBe('still here');
    await closed; // by the drain timeout
    await waitFor(() => heldOn.active === 0, 2000, 'the drained session released');
    expect(source.status.listed).toBe(1);
  });

  it('leaves an operator drain standing until the source itself changes that field', async () => {
    const source = await start();
    source.update([{ address: addr(1) }]);
    const api = adminClient(proxy!.runtime);
    expect((await api('PATCH', `/backends/${addr(1)}`, { json: { drain: true } })).status).toBe(200);
    source.update([{ address: addr(1), weight: 2 }]);
    expect(proxy!.service.backends.get(addr(1))!.state).toBe('draining');
    // The source says draining, then not: now it is the source's word.
    source.update([{ address: addr(1), weight: 2, draining: true }]);
    source.update([{ address: addr(1), weight: 2, draining: false }]);
    expect(proxy!.service.backends.get(addr(1))!.state).toBe('up');
  });

  it('an address two origins claim stays with its owner, and passes in place when the owner lets go', async () => {
    const source = await start({ config: [0, 1] });
    const registry = proxy!.service.backends;
    const b = registry.get(addr(1))!;
    const result = source.update([{ address: addr(1), weight: 4 }, { address: addr(2) }]);
    expect(result.conflicts).toEqual([{ address: addr(1), owner: 'config' }]);
    expect(b.origin).toBe('config');
    expect(b.weight).toBe(1);
    // Still a conflict, reported once only.
    expect(source.update([{ address: addr(1), weight: 4 }, { address: addr(2) }]).conflicts).toEqual([]);

    // The config file drops it (what a reload does): the source takes it over, same object, no drain.
    await kit.connect(proxy!.address); // a session held across the hand-over
    registry.reconcile('config', [{ address: addr(0) }]);
    expect(registry.get(addr(1))).toBe(b);
    expect(b.origin).toBe('list-source');
    expect(b.weight).toBe(4);
    expect(b.state).toBe('up');
  });

  it('skips bad entries without losing the good ones', async () => {
    const source = await start();
    const result = source.update([
      { address: 'nonsense' },
      { address: addr(1), weight: 0 },
      { address: addr(2) },
      { address: addr(2) },
      { address: addr(3), tls: true },
    ]);
    expect(result.added).toEqual([addr(2)]);
    expect(result.invalid.map((i) => i.address)).toEqual(['nonsense', addr(1), addr(2), addr(3)]);
    expect(result.invalid[3]!.error).toMatch(/tls: true.*no plugin that dials TLS/);
  });

  it('admin API: origin shown; a source backend cannot be removed there (409), only drained', async () => {
    const source = await start();
    source.update([{ address: addr(1) }]);
    const api = adminClient(proxy!.runtime);
    const list = (await api('GET', '/backends')).body.backends;
    expect(list.map((b: { origin: string }) => b.origin)).toEqual(['config', 'list-source']);
    const del = await api('DELETE', `/backends/${addr(1)}`);
    expect(del.status).toBe(409);
    expect(del.body).toEqual({
      error: expect.stringMatching(/comes from list-source; remove it there/),
      code: 'SWITCHYARD_E_BACKEND_MANAGED',
    });
    expect((await api('GET', `/remove?address=${addr(1)}`)).status).toBe(409);
    expect((await api('DELETE', `/backends/${addr(0)}`)).status).toBe(200); // config's: allowed
    expect((await api('PATCH', `/backends/${addr(1)}`, { json: { weight: 7 } })).body.weight).toBe(7);
  });

  it('an exclusive source: the config list is not added, its first list is there before traffic', async () => {
    const source = await start({
      config: [0],
      source: (address) => `{ exclusive: true, initial: [{ address: "${address(1)}" }] }`,
    });
    expect(source.exclusive).toBe(true);
    expect(proxy!.service.backends.list().map((b) => [b.address, b.origin])).toEqual([
      [addr(1), 'list-source'],
    ]);
    expect(await names(2)).toEqual(['b', 'b']);
    const api = adminClient(proxy!.runtime);
    const add = await api('POST', '/backends', { json: { address: addr(2) } });
    expect(add.status).toBe(409);
    expect(add.body.error).toMatch(/come from list-source; change them there/);
  });

  it('the state file records config and API backends, never a source’s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-discovery-'));
    dirs.push(dir);
    const file = join(dir, 'state.json');
    const source = await start({ admin: `, state_file: ${file}` });
    source.update([{ address: addr(1) }]);
    const api = adminClient(proxy!.runtime);
    expect((await api('POST', '/backends', { json: { address: addr(2) } })).status).toBe(201);
    source.update([{ address: addr(1) }, { address: addr(3) }]);
    // The state as a restart reads it: the document with its journal of changes applied.
    const read = async () => (await readState(file)).doc;
    await waitFor(async () => JSON.stringify((await read()) ?? {}).includes(addr(2)));
    await new Promise((r) => setTimeout(r, 50));
    const saved = (await read())!;
    expect(saved.services.default!.backends.map((b) => [b.address, b.origin])).toEqual([
      [addr(0), 'config'],
      [addr(2), 'api'],
    ]);
  });
});
