import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echo, startBackend, type TestBackend } from '../../testing/backends.js';
import { freePort } from '../../testing/index.js';

// `switchyard ctl` against a real proxy started through the CLI, as an operator would use both.
const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'bin/switchyard.js');
const TOKEN = 'ctl-test-token';
let dir: string;
let proxy: ChildProcess;
let backends: TestBackend[] = [];
let admin: string;
let listen: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-ctl-'));
  backends = [await startBackend(echo), await startBackend(echo)];
  const adminPort = await freePort();
  const proxyPort = await freePort();
  admin = `http://127.0.0.1:${adminPort}`;
  listen = `127.0.0.1:${proxyPort}`;
  await writeFile(
    join(dir, 'config.yaml'),
    [
      `listen: ${listen}`,
      'backends:',
      `  - address: 127.0.0.1:${backends[0]!.port}`,
      'plugins:',
      '  force-disconnect: {}',
      `  admin-api: { listen: 127.0.0.1:${adminPort}, token: ${TOKEN} }`,
      '',
    ].join('\n'),
  );
  proxy = spawn(process.execPath, [bin, '--config', 'config.yaml', '--no-pretty'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proxy.stdout!.on('data', (d: Buffer) => {
    out += d;
  });
  const deadline = Date.now() + 15_000;
  while (!out.includes('"listening"') && !/started|listening/.test(out)) {
    if (Date.now() > deadline) throw new Error(`proxy did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // The admin API binds in a start hook; wait until it answers.
  while ((await ctl(['workers'])).code !== 0) {
    if (Date.now() > deadline) throw new Error('admin API did not answer');
    await new Promise((r) => setTimeout(r, 50));
  }
}, 60_000);

afterAll(async () => {
  if (proxy.exitCode === null) {
    proxy.kill('SIGKILL');
    await once(proxy, 'exit');
  }
  await Promise.all(backends.map((b) => b.close()));
  await rm(dir, { recursive: true, force: true });
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function ctl(args: string[], env: Record<string, string | undefined> = {}): Promise<Result> {
  const child = spawn(process.execPath, [bin, 'ctl', '--admin', admin, ...args], {
    env: { ...process.env, SWITCHYARD_ADMIN_TOKEN: TOKEN, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d;
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

// Each call starts a Node process; on a loaded 2-core machine that alone can take seconds.
describe('switchyard ctl', { timeout: 60_000 }, () => {
  it('lists backends as a table, and as the API wrote them with --json', async () => {
    const table = await ctl(['backends']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ADDRESS\s+WEIGHT\s+STATE/);
    expect(table.stdout).toContain(`127.0.0.1:${backends[0]!.port}`);
    const json = await ctl(['--json', 'backends']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { backends: Array<{ address: string; state: string }> };
    expect(parsed.backends.map((b) => b.address)).toEqual([`127.0.0.1:${backends[0]!.port}`]);
  });

  it('adds, re-weights, drains, undrains and removes a backend; the registry follows', async () => {
    const address = `127.0.0.1:${backends[1]!.port}`;
    const add = await ctl(['add', address, '--weight', '3']);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(add.stdout).toContain(`added ${address} (weight 3)`);
    expect((await ctl(['weight', address, '5'])).stdout).toContain('weight 5');
    expect((await ctl(['drain', address])).stdout).toContain(`${address}: draining`);
    expect((await ctl(['drain', address, '--undo'])).stdout).toContain(`${address}: up`);
    const listed = JSON.parse((await ctl(['--json', 'backends'])).stdout) as {
      backends: Array<{ address: string; weight: number }>;
    };
    expect(listed.backends.find((b) => b.address === address)?.weight).toBe(5);
    const removed = await ctl(['remove', address]);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain(`removed ${address}`);
  });

  it('shows the API error as the API wrote it, with exit 1', async () => {
    const address = `127.0.0.1:${backends[0]!.port}`;
    const dup = await ctl(['add', address]);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/POST \/backends: 409 /);
    const missing = await ctl(['remove', '127.0.0.1:1']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/404/);
  });

  it('lists a live session and switches force-disconnect on and off', async () => {
    const client: Socket = connect({ host: '127.0.0.1', port: Number(listen.split(':')[1]) });
    await once(client, 'connect');
    client.write('ping');
    await once(client, 'data');
    const sessions = await ctl(['sessions']);
    expect(sessions.code).toBe(0);
    expect(sessions.stdout.split('\n')[0]).toMatch(/^ID\s+CLIENT\s+BACKEND/);
    expect(sessions.stdout).toContain(`127.0.0.1:${client.localPort}`);
    const closed = once(client, 'close');
    const on = await ctl(['--json', 'force-disconnect', 'on']);
    expect(on.code).toBe(0);
    await closed;
    expect((await ctl(['--json', 'force-disconnect'])).stdout).toMatch(/"enabled": true/);
    expect((await ctl(['force-disconnect', 'off'])).code).toBe(0);
    expect((await ctl(['--json', 'force-disconnect'])).stdout).toMatch(/"enabled": false/);
  });

  it('lists the processes that proxy', async () => {
    const workers = await ctl(['workers']);
    expect(workers.code).toBe(0);
    expect(workers.stdout).toMatch(/^WORKER\s+PID/);
    expect(workers.stdout).toContain(String(proxy.pid));
  });

  it('exit codes scripts can use: 4 without the token, 3 unreachable, 2 usage', async () => {
    const noToken = await ctl(['add', '127.0.0.1:2'], { SWITCHYARD_ADMIN_TOKEN: '' });
    expect(noToken.code).toBe(4);
    expect(noToken.stderr).toContain('SWITCHYARD_ADMIN_TOKEN');
    const wrong = await ctl(['drain', '127.0.0.1:2'], { SWITCHYARD_ADMIN_TOKEN: 'wrong' });
    expect(wrong.code).toBe(4);
    const port = await freePort();
    const down = await ctl(['--admin', `http://127.0.0.1:${port}`, 'backends']);
    expect(down.code).toBe(3);
    expect(down.stderr).toContain('cannot reach the admin API');
    expect((await ctl(['frobnicate'])).code).toBe(2);
    expect((await ctl(['add'])).code).toBe(2);
    expect((await ctl(['force-disconnect', 'maybe'])).code).toBe(2);
    expect((await ctl(['--admin', 'ftp://x', 'backends'])).code).toBe(2);
  });
});
