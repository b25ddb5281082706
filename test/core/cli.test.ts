import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestKit, exchange, freePort } from '../../testing/index.js';

// The CLI is tested as users run it: the built bin (npm test builds first).
const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'bin/switchyard.js');
let dir: string;
let child: ChildProcess | undefined;
const kit = createTestKit();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  child = undefined;
  await kit.close();
});

function run(args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', timeout: 15_000 });
}

describe('switchyard CLI', () => {
  it('prints its version and help', () => {
    expect(run(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--config');
    expect(help.stdout).toContain('validate');
    expect(help.stdout).toContain('--log-level');
  });

  it('validate: exit 0 for a good config (the bundled config.yaml too)', async () => {
    await writeFile(
      join(dir, 'ok.yaml'),
      'listen: 127.0.0.1:8080\nbackends: [{ address: 127.0.0.1:9001 }]\n',
    );
    const ok = run(['validate', '--config', 'ok.yaml']);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('valid');
    expect(run(['validate', '--config', join(root, 'config.yaml')]).status).toBe(0);
  });

  it('validate: exit 2 and every problem as file:line:col  path  message', async () => {
    await writeFile(
      join(dir, 'bad.yaml'),
      'listen: 127.0.0.1:8080\nbackends:\n  - address: 127.0.0.1:9001\n    weight: 0\nretries: many\n',
    );
    const bad = run(['validate', '--config', 'bad.yaml']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('bad.yaml:4:13  backends[0].weight  must be >= 1');
    expect(bad.stderr).toContain('bad.yaml:5:10  retries  must be integer');
    expect(bad.stderr).toContain('2 problems in bad.yaml');
    const missing = run(['validate', '--config', 'nope.yaml']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('cannot read config: ENOENT');
  });

  it('runs, logs one start line, proxies, and stops gracefully on SIGTERM', async () => {
    const backend = await kit.echo();
    const port = await freePort();
    await writeFile(
      join(dir, 'run.yaml'),
      `listen: 127.0.0.1:${port}\nbackends: [{ address: ${backend.address} }]\nplugins: { least-connections: {} }\n`,
    );
    child = spawn(process.execPath, [bin, '--config', 'run.yaml', '--no-pretty'], { cwd: dir });
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
    });
    const started = Date.now();
    while (!out.includes('switchyard started')) {
      if (Date.now() - started > 10_000 || child.exitCode !== null) throw new Error(`did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const startLine = JSON.parse(out.split('\n').find((l) => l.includes('switchyard started'))!);
    expect(startLine.services[0]).toMatchObject({
      listen: [`127.0.0.1:${port}`],
      backends: [backend.address],
      plugins: ['least-connections'],
    });
    expect((await exchange(`127.0.0.1:${port}`, 'via cli')).toString()).toBe('via cli');
    // No per-connection lines at the default level.
    expect(out.split('\n').filter(Boolean).length).toBe(1);
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(out).toContain('stopped');
  });

  it('exits 1 with a clear message when it cannot bind', async () => {
    const backend = await kit.echo();
    await writeFile(join(dir, 'busy.yaml'), `listen: ${backend.address}\n`);
    const busy = run(['--config', 'busy.yaml', '--no-pretty']);
    expect(busy.status).toBe(1);
    expect(busy.stdout).toContain(`cannot listen on ${backend.address}: EADDRINUSE`);
  });
});
