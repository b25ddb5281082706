import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestKit, exchange, type TestBackend } from '../../testing/index.js';

describe('access-log', () => {
  const kit = createTestKit();
  afterEach(kit.close);
  let dir: string;
  let file: string;
  let echo: TestBackend;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-access-'));
    kit.defer(() => rm(dir, { recursive: true, force: true }));
    file = join(dir, 'logs', 'access.log');
    echo = await kit.echo();
  });

  const lines = async () =>
    (await readFile(file, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));

  it('writes one line per session with exact byte counts', async () => {
    const proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends: [{ address: ${echo.address} }]
plugins:
  access-log: { file: ${JSON.stringify(file)} }
`);
    const sizes = [1, 1000, 65_536, 300_000, 7];
    for (const n of sizes) expect((await exchange(proxy.address, Buffer.alloc(n, 'z'))).length).toBe(n);
    await proxy.stop(); // flushes and closes the file

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
        backend: echo.address,
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
    const dead = (await kit.refusing()).address;
    const proxy = await kit.proxy(`
listen: 127.0.0.1:0
retries: 1
backends: [{ address: ${dead} }, { address: ${echo.address} }]
plugins:
  access-log: { file: ${JSON.stringify(file)}, level: warn }
`);
    expect((await exchange(proxy.address, 'hello')).toString()).toBe('hello'); // dead first, then retried
    proxy.service.backends.remove(echo.address);
    proxy.service.backends.remove(dead);
    expect((await exchange(proxy.address)).length).toBe(0); // no backend left
    await proxy.stop();

    const [retried, refused] = await lines();
    expect(retried).toMatchObject({
      level: 40,
      attempts: 2,
      backend: echo.address,
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
    const echo2 = await kit.echo();
    const proxy = await kit.proxy(`
services:
  one:
    listen: 127.0.0.1:0
    backends: [{ address: ${echo.address} }]
    plugins:
      access-log: { file: ${JSON.stringify(file)} }
  two:
    listen: 127.0.0.1:0
    backends: [{ address: ${echo2.address} }]
    plugins:
      access-log: { file: ${JSON.stringify(file)} }
`);
    const [one, two] = [...proxy.runtime.services.values()].map((s) => s.addresses()[0]!);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => exchange(i % 2 === 0 ? one : two, Buffer.alloc(100 + i, 'q'))),
    );
    await proxy.stop();
    const got = await lines(); // every line parses: none interleaved
    expect(got).toHaveLength(40);
    expect(got.filter((l) => l.service === 'one')).toHaveLength(20);
    expect(got.map((l) => l.bytesIn).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 40 }, (_, i) => 100 + i),
    );
  });

  it('without a file, lines go to the service log', async () => {
    const proxy = await kit.proxy(
      `
listen: 127.0.0.1:0
backends: [{ address: ${echo.address} }]
plugins:
  access-log: {}
`,
      { logs: 'info' },
    );
    await exchange(proxy.address, 'abc');
    await proxy.stop();
    const entries = proxy.logs.filter((l) => l.msg === 'session closed');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ service: 'default', plugin: 'access-log', bytesIn: 3, bytesOut: 3 });
  });

  it('is off unless listed, and lines below the log level are not built', async () => {
    const proxy = await kit.proxy(
      `
listen: 127.0.0.1:0
backends: [{ address: ${echo.address} }]
plugins:
  access-log: { level: debug }
`,
      { logs: 'info', start: false },
    );
    expect(proxy.service.hooks.closed.isUsed()).toBe(true);
    await proxy.start();
    await exchange(proxy.address, 'abc');
    const warned = proxy.logs.filter((l) => /below the log level/.test(String(l.msg)));
    expect(warned).toHaveLength(1);
    expect(proxy.logs.some((l) => JSON.stringify(l).includes('session closed'))).toBe(false);

    const plain = await kit.proxy(`listen: 127.0.0.1:0\nbackends: [{ address: ${echo.address} }]\n`);
    expect(plain.service.hooks.closed.isUsed()).toBe(false);
    await plain.stop();
  });

  it('fails the start clearly when the file cannot be opened', async () => {
    const blocker = join(dir, 'not-a-dir');
    await writeFile(blocker, '');
    await expect(
      kit.proxy(`
listen: 127.0.0.1:0
plugins:
  access-log: { file: ${JSON.stringify(join(blocker, 'access.log'))} }
`),
    ).rejects.toThrow(/access-log cannot open .*not-a-dir\/access.log: (ENOTDIR|EEXIST)/);
  });

  it('the process that could not open the file exits with that one error, and nothing at exit', async () => {
    const blocker = join(dir, 'not-a-dir');
    await writeFile(blocker, '');
    await writeFile(
      join(dir, 'bad.yaml'),
      `listen: 127.0.0.1:0\nplugins:\n  access-log: { file: ${JSON.stringify(join(blocker, 'a.log'))} }\n`,
    );
    const bin = join(import.meta.dirname, '../../bin/switchyard.js');
    const run = spawnSync(process.execPath, [bin, '--config', 'bad.yaml', '--no-pretty'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 15_000,
    });
    const output = run.stdout + run.stderr;
    expect(run.status).toBe(1);
    expect(output).toContain('access-log cannot open');
    // pino flushes asynchronous destinations at exit; one whose file never opened used to throw there.
    expect(output).not.toMatch(/sonic boom|Uncaught|at .*node_modules/);
  });
});
