import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../core/config/load.js';
import { Runtime } from '../../core/runtime.js';
import { startProxy, type TestProxy } from '../../test/helpers/proxy.js';
import { exchange, freePort, startEcho, type TestServer } from '../../test/helpers/servers.js';

describe('access-log', () => {
  let dir: string;
  let file: string;
  let servers: TestServer[] = [];
  let proxy: TestProxy | undefined;
  let runtime: Runtime | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-access-'));
    file = join(dir, 'logs', 'access.log');
    servers = [await startEcho()];
  });
  afterEach(async () => {
    await proxy?.stop();
    await runtime?.stop(0);
    proxy = undefined;
    runtime = undefined;
    await Promise.all(servers.map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  });

  const lines = async () =>
    (await readFile(file, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));

  it('writes one line per session with exact byte counts', async () => {
    proxy = await startProxy(`
listen: 127.0.0.1:0
backends: [{ address: ${servers[0]!.address} }]
plugins:
  access-log: { file: ${JSON.stringify(file)} }
`);
    const sizes = [1, 1000, 65_536, 300_000, 7];
    for (const n of sizes) expect((await exchange(proxy.address, Buffer.alloc(n, 'z'))).length).toBe(n);
    await proxy.stop(); // flushes and closes the file
    proxy = undefined;

    const got = await lines();
    expect(got).toHaveLength(sizes.length);
    expect(got.map((l) => l.bytesIn)).toEqual(sizes);
    expect(got.map((l) => l.bytesOut)).toEqual(sizes);
    for (const l of got) {
      expect(l).toMatchObject({
        level: 30,
        msg: 'session closed',
        service: 'default',
        listener: '127.0.0.1:0',
        backend: servers[0]!.address,
        attempts: 1,
        reason: expect.stringMatching(/^(client|backend)-closed$/),
        detail: null,
      });
      expect(l.client).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(l.durationMs).toBeGreaterThanOrEqual(0);
      expect(l.connectMs).toBeGreaterThanOrEqual(0);
      expect(l.connectMs).toBeLessThanOrEqual(l.durationMs);
      expect(typeof l.session).toBe('number');
      expect(typeof l.time).toBe('number');
    }
    expect(new Set(got.map((l) => l.session)).size).toBe(sizes.length);
  });

  it('logs refused sessions and retries with their reason, at the configured level', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    proxy = await startProxy(`
listen: 127.0.0.1:0
retries: 1
backends: [{ address: ${dead} }, { address: ${servers[0]!.address} }]
plugins:
  access-log: { file: ${JSON.stringify(file)}, level: warn }
`);
    expect((await exchange(proxy.address, 'hello')).toString()).toBe('hello'); // dead first, then retried
    proxy.service.backends.remove(servers[0]!.address);
    proxy.service.backends.remove(dead);
    expect((await exchange(proxy.address)).length).toBe(0); // no backend left
    await proxy.stop();
    proxy = undefined;

    const [retried, refused] = await lines();
    expect(retried).toMatchObject({
      level: 40,
      attempts: 2,
      backend: servers[0]!.address,
      bytesIn: 5,
      bytesOut: 5,
    });
    expect(refused).toMatchObject({
      level: 40,
      attempts: 0,
      backend: null,
      connectMs: null,
      bytesIn: 0,
      bytesOut: 0,
      reason: 'no-backend',
    });
  });

  it('services logging to the same file share it without mixing lines', async () => {
    servers.push(await startEcho());
    proxy = await startProxy(`
services:
  one:
    listen: 127.0.0.1:0
    backends: [{ address: ${servers[0]!.address} }]
    plugins:
      access-log: { file: ${JSON.stringify(file)} }
  two:
    listen: 127.0.0.1:0
    backends: [{ address: ${servers[1]!.address} }]
    plugins:
      access-log: { file: ${JSON.stringify(file)} }
`);
    const [one, two] = [...proxy.runtime.services.values()].map((s) => s.addresses()[0]!);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => exchange(i % 2 === 0 ? one : two, Buffer.alloc(100 + i, 'q'))),
    );
    await proxy.stop();
    proxy = undefined;
    const got = await lines(); // every line parses: none interleaved
    expect(got).toHaveLength(40);
    expect(got.filter((l) => l.service === 'one')).toHaveLength(20);
    expect(got.map((l) => l.bytesIn).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 40 }, (_, i) => 100 + i),
    );
  });

  it('without a file, lines go to the service log', async () => {
    const out: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        out.push(chunk.toString());
        cb();
      },
    });
    const config = await loadConfigText(
      `
listen: 127.0.0.1:0
backends: [{ address: ${servers[0]!.address} }]
plugins:
  access-log: {}
`,
      'test.yaml',
    );
    runtime = await Runtime.create(config, pino({ level: 'info' }, sink));
    await runtime.start();
    await exchange(runtime.defaultService.addresses()[0]!, 'abc');
    await runtime.stop(0);
    runtime = undefined;
    const entries = out.map((l) => JSON.parse(l)).filter((l) => l.msg === 'session closed');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ service: 'default', plugin: 'access-log', bytesIn: 3, bytesOut: 3 });
  });

  it('is off unless listed, and lines below the log level are not built', async () => {
    const out: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        out.push(chunk.toString());
        cb();
      },
    });
    const config = await loadConfigText(
      `
listen: 127.0.0.1:0
backends: [{ address: ${servers[0]!.address} }]
plugins:
  access-log: { level: debug }
`,
      'test.yaml',
    );
    runtime = await Runtime.create(config, pino({ level: 'info' }, sink));
    expect(runtime.defaultService.hooks.closed.isUsed()).toBe(true);
    await runtime.start();
    await exchange(runtime.defaultService.addresses()[0]!, 'abc');
    const warned = out.map((l) => JSON.parse(l)).filter((l) => /below the log level/.test(l.msg));
    expect(warned).toHaveLength(1);
    expect(out.some((l) => l.includes('session closed'))).toBe(false);

    const plain = await startProxy(`listen: 127.0.0.1:0\nbackends: [{ address: ${servers[0]!.address} }]\n`);
    expect(plain.service.hooks.closed.isUsed()).toBe(false);
    await plain.stop();
  });

  it('fails the start clearly when the file cannot be opened', async () => {
    const blocker = join(dir, 'not-a-dir');
    await writeFile(blocker, '');
    await expect(
      startProxy(`
listen: 127.0.0.1:0
plugins:
  access-log: { file: ${JSON.stringify(join(blocker, 'access.log'))} }
`),
    ).rejects.toThrow(/access-log cannot open .*not-a-dir\/access.log: (ENOTDIR|EEXIST)/);
  });
});
