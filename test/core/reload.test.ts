import { afterEach, describe, expect, it } from 'vitest';
import { ClusterProcess, readUntil } from '../cluster/cluster-harness.js';
import { exchange, open, startNamed, type TestServer } from '../helpers/servers.js';

/** SIGHUP with one process (`workers: 1`), through the real CLI. */
describe('reload in one process', () => {
  let proc: ClusterProcess | undefined;
  let servers: TestServer[] = [];
  afterEach(async () => {
    await proc?.kill();
    proc = undefined;
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
  });

  it('applies backends and the admin token in place, lists restart-only changes, keeps open sessions, rejects a bad file', async () => {
    const a = await startNamed('a');
    const b = await startNamed('b');
    servers = [a, b];
    const t1 = 'first-token-0123456789';
    const t2 = 'second-token-9876543210';
    const config = (backend: string, token: string, extra = '') => `
listen: 127.0.0.1:0
backends: [{ address: "${backend}" }]
${extra}plugins:
  admin-api: { listen: 127.0.0.1:0, token: "${token}", read_only_open: false }
`;
    proc = new ClusterProcess();
    proc.writeConfig(config(a.address, t1));
    proc.start();
    const line = await proc.waitForLog('switchyard started', 15_000);
    const proxy = (line.services as Array<{ listen: string[] }>)[0]!.listen[0]!;
    const api = proc.find('admin API listening')!.address as string;
    const get = async (token: string) =>
      (await fetch(`http://${api}/backends`, { headers: { authorization: `Bearer ${token}` } })).status;
    expect((await exchange(proxy, 'x')).toString()).toBe('a\nx');
    expect(await get(t1)).toBe(200);
    const held = await open(proxy);
    expect(await readUntil(held, 'a\n')).toBe('a\n');

    proc.writeConfig(config(b.address, t2, 'idle_timeout: 30m\n'));
    proc.signal('SIGHUP');
    await proc.waitForLog('reloaded: backends and plugin options applied');
    expect(proc.find('reloaded in part: these changes take effect at restart')?.changes).toEqual([
      'services.default.idle_timeout',
    ]);
    for (let i = 0; i < 3; i++) expect((await exchange(proxy, 'x')).toString()).toBe('b\nx');
    expect(await get(t2)).toBe(200);
    expect(await get(t1)).toBe(401);
    // The session opened before the reload runs on: its backend was removed, so it drains.
    held.write('still here');
    expect(await readUntil(held, 'still here')).toBe('still here');
    held.destroy();

    proc.writeConfig(`${config(b.address, t2)}bogus_key: 1\n`);
    proc.signal('SIGHUP');
    await proc.waitForLog(/^reload rejected: the config is invalid/);
    expect(proc.find('invalid config')?.issue).toMatch(/bogus_key/);
    expect((await exchange(proxy, 'x')).toString()).toBe('b\nx');
    expect(await get(t2)).toBe(200);
  });
});
