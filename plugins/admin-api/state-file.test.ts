import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestKit, exchange, type TestBackend } from '../../testing/index.js';
import { readState as readStateFiles, type StateDocument } from './state-file.js';
import { adminClient } from './test-client.js';

describe('admin-api state file', () => {
  const kit = createTestKit();
  afterEach(kit.close);
  let dir: string;
  let file: string;
  let servers: TestBackend[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-state-'));
    kit.defer(() => rm(dir, { recursive: true, force: true }));
    file = join(dir, 'state.json');
    servers = await Promise.all(['a', 'b', 'c', 'd'].map((n) => kit.named(n)));
  });

  const yaml = (stateFile = file) => `
services:
  web:
    listen: 127.0.0.1:0
    backends:
      - address: ${servers[0]!.address}
      - address: ${servers[1]!.address}
  other:
    listen: 127.0.0.1:0
    backends:
      - address: ${servers[3]!.address}
plugins:
  admin-api: { listen: 127.0.0.1:0, state_file: ${JSON.stringify(stateFile)} }
`;
  const addresses = (body: { backends: Array<{ address: string }> }) => body.backends.map((b) => b.address);
  /** The state as a restart would read it: the document with its journal applied. */
  const readState = async () => (await readStateFiles(file)).doc as StateDocument;
  /** The document alone (what is on disk once the proxy stopped). */
  const readDocument = async () => JSON.parse(await readFile(file, 'utf8')) as StateDocument;

  it('a restart keeps adds, removes, weights and drains made through the API', async () => {
    const [a, b, c] = servers.map((s) => s.address);
    let proxy = await kit.proxy(yaml());
    let api = adminClient(proxy.runtime);
    expect((await api('POST', '/backends', { json: { address: c, weight: 3 } })).status).toBe(201);
    expect((await api('GET', `/remove?address=${b}`)).status).toBe(200);
    expect((await api('PATCH', `/backends/${a}`, { json: { drain: true } })).status).toBe(200);
    expect((await api('PATCH', `/backends/${c}`, { json: { weight: 5 } })).status).toBe(200);

    // On disk as soon as the calls returned, without temp files left behind.
    const saved = await readState();
    expect(saved.version).toBe(1);
    expect(saved.services.web!.backends).toEqual([
      expect.objectContaining({ address: a, weight: 1, draining: true, origin: 'config' }),
      { address: c, weight: 5, origin: 'api' },
    ]);
    expect(saved.services.other).toBeUndefined(); // untouched: keeps following the config
    expect((await readdir(dir)).sort()).toEqual(['state.json.journal']);
    await proxy.stop();
    // At stop the journal is folded into the document.
    expect(await readdir(dir)).toEqual(['state.json']);
    expect((await readDocument()).services.web!.backends).toEqual(saved.services.web!.backends);

    proxy = await kit.proxy(yaml());
    api = adminClient(proxy.runtime);
    const web = (await api('GET', '/backends?service=web')).body;
    expect(web.backends).toEqual([
      expect.objectContaining({ address: a, state: 'draining', weight: 1 }),
      expect.objectContaining({ address: c, state: 'up', weight: 5 }),
    ]);
    expect(addresses((await api('GET', '/backends?service=other')).body)).toEqual([servers[3]!.address]);
    // Traffic follows the restored list: a is drained, b is gone.
    for (let i = 0; i < 3; i++) expect((await exchange(proxy.address, '')).toString()).toBe('c\n');

    // The file's list replaced the service's start list (service.startWith), not the config as
    // read: a reload compares the next file with that (test/cluster/state-file-reload.test.ts).
    // Each backend comes back with its origin, so a reload still touches only the config's.
    expect(proxy.service.config.backends.map((x) => x.address)).toEqual([a, b]);
    expect(proxy.config.services[0]!.backends.map((x) => x.address)).toEqual([a, b]);
    expect(web.backends.map((x: { origin: string }) => x.origin)).toEqual(['config', 'api']);

    // A later change on the other service records it too; web is unchanged.
    await api('POST', '/backends?service=other', { json: { address: b } });
    const again = await readState();
    expect(Object.keys(again.services).sort()).toEqual(['other', 'web']);
    expect(again.services.web!.backends).toEqual(saved.services.web!.backends);
  });

  it('many concurrent changes all reach the file', async () => {
    const proxy = await kit.proxy(yaml());
    const api = adminClient(proxy.runtime);
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        api('POST', '/backends', { json: { address: `127.0.0.1:${20000 + i}` } }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(30).fill(201));
    const saved = await readState();
    expect(saved.services.web!.backends).toHaveLength(32);
    expect(await readdir(dir)).toEqual(['state.json.journal']);
  });

  it('without a state file the config wins after a restart', async () => {
    const plain = yaml().replace(/, state_file: [^}]*/, '');
    let proxy = await kit.proxy(plain);
    await adminClient(proxy.runtime)('POST', '/add', { json: { address: servers[2]!.address } });
    await proxy.stop();
    proxy = await kit.proxy(plain);
    expect(addresses((await adminClient(proxy.runtime)('GET', '/backends')).body)).toHaveLength(2);
  });

  it('refuses to start on a corrupt state file, naming it', async () => {
    await writeFile(file, '{"version": 1, "services": {"web": {"backends": [');
    await expect(kit.proxy(yaml())).rejects.toThrow(`state file ${file} is not valid JSON`);
    await writeFile(
      file,
      JSON.stringify({ version: 1, services: { web: { backends: [{ address: 'x' }] } } }),
    );
    await expect(kit.proxy(yaml())).rejects.toThrow(/is invalid at "\/services\/web\/backends\/0"/);
    await writeFile(
      file,
      JSON.stringify({ version: 1, services: { web: { backends: [{ address: '1.2.3.4:0', weight: 1 }] } } }),
    );
    await expect(kit.proxy(yaml())).rejects.toThrow(/service "web": port 0 is out of range/);
    await writeFile(file, JSON.stringify({ version: 2, services: {} }));
    await expect(kit.proxy(yaml())).rejects.toThrow(/fix or delete it/);
  });

  it('a change that cannot be saved is reported, and is live', async () => {
    const unwritable = join(dir, 'missing-dir', 'state.json');
    const proxy = await kit.proxy(yaml(unwritable));
    const api = adminClient(proxy.runtime);
    const res = await api('POST', '/backends', { json: { address: servers[2]!.address } });
    expect(res.status).toBe(500);
    expect(res.body.error).toMatch(
      /^change applied, but not saved to the state file: cannot write state file .*ENOENT/,
    );
    expect(addresses((await api('GET', '/backends')).body)).toContain(servers[2]!.address);
    expect(await readdir(dir)).toEqual([]);

    // Once writable again, the next change writes the whole state: the failed one is in it too.
    await mkdir(join(dir, 'missing-dir'));
    expect((await api('PATCH', `/backends/${servers[0]!.address}`, { json: { weight: 3 } })).status).toBe(
      200,
    );
    const saved = (await readStateFiles(unwritable)).doc!;
    expect(saved.services.web!.backends.map((b) => `${b.address}*${b.weight}`)).toEqual([
      `${servers[0]!.address}*3`,
      `${servers[1]!.address}*1`,
      `${servers[2]!.address}*1`,
    ]);
  });

  it('keeps entries of services the config no longer has, and warns when the config changed', async () => {
    await writeFile(
      file,
      JSON.stringify({
        version: 1,
        updated_at: 'x',
        services: {
          gone: { backends: [{ address: '10.0.0.1:80', weight: 1 }], config_backends: [] },
          web: {
            backends: [{ address: servers[2]!.address, weight: 2 }],
            config_backends: [{ address: '127.0.0.1:1' }],
          },
        },
      }),
    );
    const proxy = await kit.proxy(yaml(), { logs: 'info' });
    const api = adminClient(proxy.runtime);
    expect((await api('GET', '/backends')).body.backends).toEqual([
      expect.objectContaining({ address: servers[2]!.address, weight: 2 }),
    ]);
    const log = proxy.logs;
    expect(log.some((l) => l.service === 'gone' && /does not have/.test(l.msg))).toBe(true);
    expect(log.some((l) => l.service === 'web' && /config's backends changed/.test(l.msg))).toBe(true);

    await api('PATCH', `/backends/${servers[2]!.address}`, { json: { weight: 4 } });
    const saved = await readState();
    expect(saved.services.gone).toEqual({
      backends: [{ address: '10.0.0.1:80', weight: 1 }],
      config_backends: [],
    });
    // The config list recorded is the config's own, so the warning stops once the file is rewritten.
    expect(saved.services.web!.config_backends.map((b) => b.address)).toEqual([
      servers[0]!.address,
      servers[1]!.address,
    ]);
  });
});
