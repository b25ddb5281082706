import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The config thread (core/config/load-thread.ts) is what the CLI runs: tested on the build,
// because a worker thread runs compiled files (npm test builds first).
const root = resolve(import.meta.dirname, '../..');
const dist = (path: string) => pathToFileURL(join(root, 'dist', path)).href;
const { loadConfigInThread } = (await import(
  dist('core/config/load-thread.js')
)) as typeof import('../../core/config/load-thread.js');
const { loadConfigFile } = (await import(
  dist('core/config/load.js')
)) as typeof import('../../core/config/load.js');
const { ConfigError } = (await import(
  dist('core/config/errors.js')
)) as typeof import('../../core/config/errors.js');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-config-thread-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const MULTI = `
connect_timeout: 2s
services:
  web:
    listen: 127.0.0.1:18080
    idle_timeout: 90s
    backends:
      - address: 127.0.0.1:9001
        weight: 3
      - address: 127.0.0.1:9002
    plugins:
      least-connections: {}
      health-check:
        interval: 1500ms
  pool:
    backends: [{ address: 127.0.0.1:9003 }]
plugins:
  admin-api:
    listen: 127.0.0.1:0
`;

async function configFile(name: string, text: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('config thread', () => {
  it('returns what loading in this thread returns: values, defaults, durations, the same plugin objects', async () => {
    const file = await configFile('multi.yaml', MULTI);
    const here = await loadConfigFile(file);
    const there = await loadConfigInThread(file);
    expect(there).toEqual(here);
    // Each use holds the module this thread imported, not a copy: apply() runs here.
    const plugin = (c: typeof here, name: string) =>
      c.services[0]!.plugins.find((p) => p.name === name)!.plugin;
    expect(plugin(there, 'health-check')).toBe(plugin(here, 'health-check'));
    expect(there.services[0]!.connect_timeout).toBe(2000);
    expect(there.services[0]!.idle_timeout).toBe(90_000);
  });

  it('reports every problem with file:line:col and path, as a ConfigError', async () => {
    const file = await configFile(
      'bad.yaml',
      'listen: 127.0.0.1:8080\nbackends:\n  - address: 127.0.0.1:9001\n    weight: 0\nretries: many\nplugins:\n  no-such-plugin: {}\n',
    );
    const here = await rejection(loadConfigFile(file));
    const there = await rejection(loadConfigInThread(file));
    expect(there).toBeInstanceOf(ConfigError);
    expect((there as InstanceType<typeof ConfigError>).issues).toEqual(
      (here as InstanceType<typeof ConfigError>).issues,
    );
    expect((there as Error).message).toMatch(/bad\.yaml:4:13 +backends\[0\]\.weight/);
    expect((there as Error).message).toMatch(/bad\.yaml:7:3 +plugins\.no-such-plugin +unknown plugin/);
  });

  it('a file that cannot be read is a ConfigError naming it', async () => {
    const err = await rejection(loadConfigInThread(join(dir, 'missing.yaml')));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('cannot read config: ENOENT');
  });

  it('a plugin whose check leaves something other than plain data in its options: an error naming it and where', async () => {
    // A function cannot cross threads; a Map or class instance would arrive without its type.
    for (const [name, value, expected] of [
      ['fn', '() => 1', 'a function at nested.callback'],
      ['map', 'new Map()', 'a Map object at nested.callback'],
    ]) {
      await writeFile(
        join(dir, `sticky-${name}.mjs`),
        `export default {
          name: 'sticky',
          apply() {},
          check(options) { options.nested = { callback: ${value} }; return []; },
        };\n`,
      );
      const file = await configFile(
        `sticky-${name}.yaml`,
        `listen: 127.0.0.1:8080\nbackends: [{ address: 127.0.0.1:9001 }]\nplugins:\n  ./sticky-${name}.mjs: {}\n`,
      );
      const err = await rejection(loadConfigInThread(file));
      expect((err as Error).message).toBe(
        `plugin "./sticky-${name}.mjs": its options hold ${expected}; options must stay plain data (objects, arrays, strings, numbers, booleans, null): build other values in apply()`,
      );
    }
  });

  it('a started proxy never loads the YAML parser or ajv in its own thread', () => {
    // Both are CommonJS, so what loaded them is in require.cache; the control loads the config
    // in the same thread and must see them (else this test could not fail).
    const script = (load: 'thread' | 'here') => `
      import { createRequire } from 'node:module';
      const loaded = () => Object.keys(createRequire(import.meta.url).cache)
        .filter((k) => /node_modules\\/(ajv|yaml)\\//.test(k)).length;
      if (${JSON.stringify(load)} === 'here') {
        const { loadConfigFile } = await import(${JSON.stringify(dist('core/config/load.js'))});
        await loadConfigFile(process.argv[2]);
        console.log(JSON.stringify({ loaded: loaded() }));
        process.exit(0);
      }
      const { main } = await import(${JSON.stringify(dist('core/cli.js'))});
      await main(['node', 'switchyard', '--config', process.argv[2], '--log-level', 'warn']);
      // The config thread is ended once it answered (Node names its threads WorkerThread).
      const { readdirSync, readFileSync } = await import('node:fs');
      const threads = () => readdirSync('/proc/self/task').filter(
        (t) => readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim() === 'WorkerThread').length;
      for (let i = 0; i < 40 && threads() > 0; i++) await new Promise((r) => setTimeout(r, 50));
      console.log(JSON.stringify({ loaded: loaded(), threads: threads() }));
      process.exit(0);
    `;
    const run = async (load: 'thread' | 'here') => {
      const file = join(dir, `probe-${load}.mjs`);
      await writeFile(file, script(load));
      const config = await configFile(
        `probe-${load}.yaml`,
        'listen: 127.0.0.1:0\nbackends: [{ address: 127.0.0.1:9001 }]\nplugins:\n  round-robin: {}\n',
      );
      const out = spawnSync(process.execPath, [file, config], {
        cwd: root,
        encoding: 'utf8',
        timeout: 15_000,
      });
      expect(out.status, out.stderr).toBe(0);
      return JSON.parse(out.stdout.trim().split('\n').pop()!) as { loaded: number; threads?: number };
    };
    return Promise.all([run('thread'), run('here')]).then(([thread, here]) => {
      expect(here.loaded).toBeGreaterThan(0);
      expect(thread.loaded).toBe(0);
      expect(thread.threads).toBe(0);
    });
  });
});
