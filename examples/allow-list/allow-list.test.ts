// The example plugin's own tests, written as a third party would: only the public SDK and
// the public test kit, no path into Switchyard's source.
import type { Session } from 'switchyard/plugin-sdk';
import { createTestKit, loadConfig } from 'switchyard/testing';
import { afterEach, describe, expect, it } from 'vitest';

/** This folder, loaded as a package (package.json "main"), as `plugins: { ./allow-list: … }` would. */
const PLUGIN = '.';
const here = { baseDir: import.meta.dirname };

interface AllowListApi {
  refused(): number;
}

const kit = createTestKit();
afterEach(kit.close);

/** A proxy to one echo backend with the plugin enabled; records the sessions it closes. */
async function start(options: { allow: string[]; reset?: boolean }, listen = '127.0.0.1:0') {
  const backend = await kit.echo({ host: listen.startsWith('[') ? '::1' : '127.0.0.1' });
  const proxy = await kit.proxy({ listen, backends: [backend], plugins: { [PLUGIN]: options } }, here);
  const closed: Session[] = [];
  proxy.service.hooks.closed.tap('test', (s) => {
    closed.push(s);
  });
  const api = proxy.service.use<AllowListApi>('allow-list')!;
  return { backend, proxy, closed, api };
}

describe('allow-list', () => {
  it('lets clients from a listed network through, byte for byte', async () => {
    const { proxy, api } = await start({ allow: ['127.0.0.0/8'] });
    const client = await kit.connect(proxy);
    await client.send('hello');
    await client.expect('hello');
    await client.end();
    expect(await client.collect()).toEqual(Buffer.alloc(0));
    expect(api.refused()).toBe(0);
  });

  it('closes other clients with a FIN before the backend sees them', async () => {
    const { backend, proxy, closed, api } = await start({ allow: ['10.0.0.0/8', '192.168.0.0/16'] });
    const client = await kit.connect(proxy);
    expect(await client.closed()).toEqual({ reset: false, error: null, ended: true });
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({ closeReason: 'rejected', closeDetail: 'not-allowed', backend: null });
    expect(backend.accepted).toBe(0);
    expect(proxy.service.counters.rejected).toBe(1);
    expect(api.refused()).toBe(1);
  });

  it('reset: true refuses with a TCP reset instead', async () => {
    const { backend, proxy, api } = await start({ allow: ['10.0.0.0/8'], reset: true });
    for (let i = 0; i < 3; i++) await (await kit.connect(proxy)).expectReset();
    expect(backend.accepted).toBe(0);
    expect(api.refused()).toBe(3);
  });

  it('matches IPv6 clients against IPv6 networks only', async () => {
    const allowed = await start({ allow: ['::1/128'] }, '[::1]:0');
    const client = await kit.connect(allowed.proxy);
    await client.send('v6');
    await client.expect('v6');

    const v4only = await start({ allow: ['127.0.0.0/8'] }, '[::1]:0');
    await (await kit.connect(v4only.proxy)).closed();
    expect(v4only.api.refused()).toBe(1);
    expect(v4only.backend.accepted).toBe(0);
  });

  it('reports bad options with the config path, before anything listens', async () => {
    await expect(loadConfig({ plugins: { [PLUGIN]: { allow: ['localhost'] } } }, here)).rejects.toThrow(
      /plugins\["\."\]\.allow\[0\]\s+must match pattern/,
    );
    await expect(loadConfig({ plugins: { [PLUGIN]: { allow: [] } } }, here)).rejects.toThrow(
      /\.allow\s+must NOT have fewer than 1 items/,
    );
    await expect(loadConfig({ plugins: { [PLUGIN]: {} } }, here)).rejects.toThrow(
      /missing required key "allow"/,
    );
    // The schema lets it through; the plugin's own check refuses it when applied.
    await expect(kit.proxy({ plugins: { [PLUGIN]: { allow: ['300.1.2.3/8'] } } }, here)).rejects.toThrow(
      /failed to apply: allow-list: "300\.1\.2\.3\/8" is not a network/,
    );
  });

  it('applies its defaults: reset is false unless given', async () => {
    const config = await loadConfig({ plugins: { [PLUGIN]: { allow: ['127.0.0.0/8'] } } }, here);
    const use = config.services[0]!.plugins.find((p) => p.plugin.name === 'allow-list')!;
    expect(use.options).toEqual({ allow: ['127.0.0.0/8'], reset: false });
  });
});
