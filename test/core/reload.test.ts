import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readState } from '../../plugins/admin-api/state-file.js';
import { createTestKit, exchange } from '../../testing/index.js';
import { ClusterProcess, poll } from '../cluster/cluster-harness.js';

/** SIGHUP with one process (`workers: 1`), through the real CLI. */
describe('reload in one process', () => {
  let proc: ClusterProcess | undefined;
  const kit = createTestKit();
  afterEach(async () => {
    try {
      await kit.close();
    } finally {
      await proc?.kill();
      proc = undefined;
    }
  });

  it('applies backends and the admin token in place, lists restart-only changes, keeps open sessions, rejects a bad file', async () => {
    const a = await kit.named('a');
    const b = await kit.named('b');
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
    const held = await kit.connect(proxy);
    expect((await held.readUntil('a\n', 10_000)).toString()).toBe('a\n');

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
    await held.send('still here');
    expect((await held.readUntil('still here', 10_000)).toString()).toBe('still here');
    held.destroy();

    proc.writeConfig(`${config(b.address, t2)}bogus_key: 1\n`);
    proc.signal('SIGHUP');
    await proc.waitForLog(/^reload rejected: the config is invalid/);
    expect(proc.find('invalid config')?.issue).toMatch(/bogus_key/);
    expect((await exchange(proxy, 'x')).toString()).toBe('b\nx');
    expect(await get(t2)).toBe(200);
  });

  it('with a state file, a reload that edits the backends saves the file too (a restart would bring the old list back otherwise)', async () => {
    const a = await kit.named('a');
    const b = await kit.named('b');
    proc = new ClusterProcess();
    const stateFile = join(proc.dir, 'state.json');
    const config = (backend: string) => `
listen: 127.0.0.1:0
backends: [{ address: "${backend}" }]
plugins:
  admin-api: { listen: 127.0.0.1:0, state_file: "${stateFile}" }
`;
    proc.writeConfig(config(a.address));
    proc.start();
    const line = await proc.waitForLog('switchyard started', 15_000);
    const proxy = (line.services as Array<{ listen: string[] }>)[0]!.listen[0]!;
    const api = proc.find('admin API listening')!.address as string;
    // An API change makes the file manage the service's list.
    expect(
      (
        await fetch(`http://${api}/backends/${a.address}`, {
          method: 'PATCH',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ weight: 2 }),
        })
      ).status,
    ).toBe(200);
    await poll(async () => (await readState(stateFile)).doc !== undefined, 5000, 'the state file');

    proc.writeConfig(config(b.address));
    proc.signal('SIGHUP');
    await proc.waitForLog('backends changed outside the API (config reload): saving the state file');
    // The state as a restart reads it: the file with its journal applied.
    const saved = async () =>
      ((await readState(stateFile)).doc?.services.default?.backends ?? []).map((x) => x.address);
    await poll(async () => (await saved()).includes(b.address), 5000, 'b in the state file');
    expect(await saved()).toEqual([b.address]);
    expect((await exchange(proxy, 'x')).toString()).toBe('b\nx');
  });
});
