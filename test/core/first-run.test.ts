import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, freePort } from '../../testing/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'bin/switchyard.js');

/**
 * What a new user does after `npm install && npm start`: the bundled config.yaml (its ports
 * moved to free ones) run by the real CLI prints where the dashboard and the admin API are,
 * proxies to the demo backends (nc), serves the page, and takes an `/add` through the API and
 * through `switchyard ctl`.
 */
describe('first run: npm start on the bundled config', () => {
  const kit = createTestKit();
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    child = undefined;
    await kit.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('prints the dashboard and admin API URLs, proxies to the demo backends, serves the page, takes /add', async () => {
    const [proxy, demo1, demo2, admin] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    let config = await readFile(join(root, 'config.yaml'), 'utf8');
    for (const [from, to] of [
      ['127.0.0.1:8080', proxy],
      ['127.0.0.1:9001', demo1],
      ['127.0.0.1:9002', demo2],
      ['127.0.0.1:9090', admin],
    ] as const) {
      expect(config, `config.yaml has ${from}`).toContain(from);
      config = config.replaceAll(from, `127.0.0.1:${to}`);
    }
    dir = await mkdtemp(join(tmpdir(), 'switchyard-first-run-'));
    await writeFile(join(dir, 'config.yaml'), config);

    // Pretty logs, as on a terminal: the start line a user reads.
    const env = { ...process.env, NO_COLOR: '1', SWITCHYARD_ADMIN_TOKEN: '' };
    child = spawn(process.execPath, [bin, '--config', 'config.yaml', '--pretty'], { cwd: dir, env });
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
    });
    child.stderr!.on('data', (c) => {
      out += c;
    });
    const started = Date.now();
    while (!/switchyard started[\s\S]*dashboard:/.test(out)) {
      if (Date.now() - started > 15_000 || child.exitCode !== null) throw new Error(`did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const base = `http://127.0.0.1:${admin}`;
    expect(out).toContain(`dashboard: "${base}/"`);
    expect(out).toContain(`admin: "${base}/"`);
    expect(out).toContain(`metrics: "${base}/metrics"`);

    // nc 127.0.0.1 8080, twice: each demo backend greets in turn.
    const greetings: string[] = [];
    for (let i = 0; i < 2; i++) {
      const client = await kit.connect(`127.0.0.1:${proxy}`);
      greetings.push((await client.read(`hello from demo backend 127.0.0.1:${demo1}\n`.length)).toString());
      await client.end();
    }
    expect(greetings.sort()).toEqual(
      [`hello from demo backend 127.0.0.1:${demo1}\n`, `hello from demo backend 127.0.0.1:${demo2}\n`].sort(),
    );

    // The dashboard page and its state, with the actions open (no token on loopback).
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>Switchyard stats</title>');
    const state = (await (await fetch(`${base}/dashboard/state`)).json()) as {
      admin: unknown;
      services: Array<{ backends: Array<{ address: string; condition: { state: string } }> }>;
    };
    expect(state.admin).toEqual({ token: false, readsOpen: true });
    expect(state.services[0]!.backends.map((b) => [b.address, b.condition.state])).toEqual([
      [`127.0.0.1:${demo1}`, 'up'],
      [`127.0.0.1:${demo2}`, 'up'],
    ]);

    // The README's third thing to try: a backend added through the API, then with switchyard ctl.
    const third = await kit.echo();
    const add = await fetch(`${base}/add`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ address: third.address }),
    });
    expect(add.status).toBe(200);
    expect(((await add.json()) as { address: string }).address).toBe(third.address);
    const fourth = await kit.echo();
    const ctl = spawnSync(process.execPath, [bin, 'ctl', 'add', fourth.address, '--admin', base], {
      encoding: 'utf8',
      env,
    });
    expect(ctl.status, ctl.stderr).toBe(0);
    const listed = (await (await fetch(`${base}/get`)).json()) as Array<{ address: string }>;
    expect(listed.map((b) => b.address)).toEqual([
      `127.0.0.1:${demo1}`,
      `127.0.0.1:${demo2}`,
      third.address,
      fourth.address,
    ]);

    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  }, 30_000);
});
