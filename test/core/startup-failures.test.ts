import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange } from '../../testing/index.js';
import { ClusterProcess, clusterFixture, poll } from '../cluster/cluster-harness.js';
import { CertFactory } from '../fixtures/tls/certs.js';

/**
 * Config and start-up failures through the real CLI: each is loud (one clear line saying what
 * and where, a non-zero exit), `switchyard validate` finds what a start would, and nothing
 * waits forever.
 */
const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'bin/switchyard.js');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-startup-'));
  // A plugin module whose top level never finishes, one whose apply never finishes, one whose
  // start never finishes, and one whose start hangs only from the second generation on (for
  // reloads).
  writeFileSync(
    join(dir, 'never-loads.js'),
    "await new Promise(() => {});\nexport default { name: 'never-loads', apply() {} };\n",
  );
  writeFileSync(
    join(dir, 'never-applies.js'),
    "export default { name: 'never-applies', apply() { return new Promise(() => {}); } };\n",
  );
  writeFileSync(
    join(dir, 'never-starts.js'),
    `export default {
  name: 'never-starts',
  apply(service) {
    service.hooks.start.tapPromise('never-starts', () => new Promise(() => {}));
  },
};
`,
  );
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[], timeout = 20_000) {
  return spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', timeout });
}

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const BASE = 'listen: 127.0.0.1:0\nbackends: [{ address: 127.0.0.1:9001 }]\n';

describe('config errors that used to be stacks or silence', () => {
  it('a YAML alias bomb is a config error at its position, for validate and for a start', () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (const l of 'bcdefghi') {
      const prev = String.fromCharCode(l.charCodeAt(0) - 1);
      levels.push(`${l}: &${l} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    write('bomb.yaml', `${BASE}${levels.join('\n')}\n`);
    for (const args of [
      ['validate', '-c', 'bomb.yaml'],
      ['-c', 'bomb.yaml'],
    ]) {
      const run = cli(args);
      expect(run.status, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(
        /^bomb\.yaml:5:\d+ {2}\(root\) {2}YAML aliases expand too far from \*b \(.*billion laughs.*\); at most 100 alias expansions are allowed\n1 problem in bomb\.yaml\n$/,
      );
      expect(run.stderr).not.toMatch(/ReferenceError|\n\s+at /);
    }
    // Anchors and aliases used as meant still work.
    write('anchors.yaml', `${BASE}connect_timeout: &t 5s\nidle_timeout: *t\n`);
    const ok = cli(['validate', '-c', 'anchors.yaml']);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
  });

  it('a plugin whose module never finishes loading: validate and start fail within plugin_timeout, naming it', () => {
    write('hang.yaml', `${BASE}plugin_timeout: 1s\nplugins:\n  ./never-loads.js: {}\n`);
    for (const args of [
      ['validate', '-c', 'hang.yaml'],
      ['-c', 'hang.yaml'],
    ]) {
      const t0 = Date.now();
      const run = cli(args);
      expect(run.status, `${args.join(' ')}: ${run.stderr}`).toBe(2);
      expect(run.stderr).toContain(
        'hang.yaml:5:3  plugins["./never-loads.js"]  plugin "./never-loads.js" did not finish loading within 1s',
      );
      expect(Date.now() - t0).toBeLessThan(15_000);
    }
  });

  it('validate runs the checks a start runs: admin token, TLS files, listener caps, state file and plugin paths', async () => {
    const certs = await CertFactory.create();
    try {
      const good = await certs.leaf('good', { cn: 'a.test' });
      const cases: Array<[string, string, RegExp]> = [
        [
          'token.yaml',
          `${BASE}plugins:\n  admin-api: { listen: "0.0.0.0:0" }\n`,
          /token\.yaml:4:\d+ {2}plugins\.admin-api\.listen {2}0\.0\.0\.0:0 is reachable from other hosts, so a token is mandatory/,
        ],
        [
          'tls.yaml',
          `${BASE}plugins:\n  tls-listener: { cert: ${good.cert}, key: ${join(dir, 'missing.key')} }\n`,
          /tls\.yaml:4:\d+ {2}plugins\.tls-listener\.key {2}key file .*missing\.key cannot be read: ENOENT/,
        ],
        [
          'tls-mismatch.yaml',
          `${BASE}plugins:\n  tls-listener: { cert: ${good.cert}, key: ${(await certs.leaf('other', { cn: 'b.test' })).key} }\n`,
          /plugins\.tls-listener {2}key file .*other\.key does not match certificate file .*good\.crt/,
        ],
        [
          'caps.yaml',
          `${BASE}plugins:\n  admin-api: { listen: "127.0.0.1:0", max_connections: 120 }\n  demo-backends: { listen: ["127.0.0.1:1"] }\n`,
          /^caps\.yaml: plugin listeners may hold 136 connections at once \(demo-backends 127\.0\.0\.1:1 16, admin-api 120\)/,
        ],
      ];
      for (const [file, text, message] of cases) {
        write(file, text);
        const run = cli(['validate', '-c', file]);
        expect(run.status, `${file}: ${run.stdout}${run.stderr}`).toBe(2);
        expect(run.stderr).toMatch(message);
      }
    } finally {
      await certs.cleanup();
    }
  });

  it('refuses paths that are not regular files: a FIFO or a device as state file or plugin, a directory', () => {
    const fifo = join(dir, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    write(
      'state-fifo.yaml',
      `${BASE}plugins:\n  admin-api: { listen: "127.0.0.1:0", state_file: ${fifo} }\n`,
    );
    let run = cli(['validate', '-c', 'state-fifo.yaml'], 10_000);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`plugins.admin-api.state_file  ${fifo} is a FIFO, not a regular file`);
    run = cli(['-c', 'state-fifo.yaml'], 10_000);
    expect(run.status).toBe(2);

    write('plugin-fifo.yaml', `${BASE}plugins:\n  ./fifo: {}\n`);
    run = cli(['validate', '-c', 'plugin-fifo.yaml'], 10_000);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`plugin file ${fifo} is a FIFO, not a regular file or package folder`);

    // Devices: /dev/zero never ends, a read of it would fill the memory.
    write(
      'state-dev.yaml',
      `${BASE}plugins:\n  admin-api: { listen: "127.0.0.1:0", state_file: /dev/zero }\n`,
    );
    run = cli(['validate', '-c', 'state-dev.yaml'], 10_000);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('plugins.admin-api.state_file  /dev/zero is a device, not a regular file');
    write('plugin-dev.yaml', `${BASE}plugins:\n  /dev/zero: {}\n`);
    run = cli(['validate', '-c', 'plugin-dev.yaml'], 10_000);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('plugin file /dev/zero is a device, not a regular file or package folder');

    write('state-dir.yaml', `${BASE}plugins:\n  admin-api: { listen: "127.0.0.1:0", state_file: ${dir} }\n`);
    run = cli(['validate', '-c', 'state-dir.yaml']);
    expect(run.stderr).toContain(`${dir} is a directory, not a regular file`);
  });
});

describe('start-up failures (real CLI)', () => {
  const t = clusterFixture();

  it('a plugin whose start never finishes: one fatal line naming it, exit 1, no stack', async () => {
    const proc = new ClusterProcess();
    t.cluster = proc;
    proc.writeConfig(`${BASE}plugin_timeout: 1s\nplugins:\n  ${join(dir, 'never-starts.js')}: {}\n`);
    proc.start();
    expect(await proc.waitExit(20_000)).toBe(1);
    const fatal = proc.logs.filter((l) => l.level === 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.msg).toBe(
      'start failed: plugin "never-starts" did not finish starting within 1s (start hook of service "default"); raise plugin_timeout if it needs longer',
    );
    expect(fatal[0]!.code).toBe('SWITCHYARD_E_PLUGIN_TIMEOUT');
    expect(JSON.stringify(proc.logs)).not.toContain('"stack"');
  });

  it('a plugin whose apply never finishes: one fatal line naming it at plugin_timeout, exit 1', async () => {
    const proc = new ClusterProcess();
    t.cluster = proc;
    proc.writeConfig(`${BASE}plugin_timeout: 1s\nplugins:\n  ${join(dir, 'never-applies.js')}: {}\n`);
    proc.start();
    // It used to wait forever, silent, half started.
    expect(await proc.waitExit(20_000)).toBe(1);
    const fatal = proc.logs.filter((l) => l.level === 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.msg).toBe(
      `start failed: plugin "${join(dir, 'never-applies.js')}" did not finish applying within 1s; raise plugin_timeout if it needs longer`,
    );
    expect(fatal[0]!.code).toBe('SWITCHYARD_E_PLUGIN_TIMEOUT');
  });

  it('a port in use: one line saying which, the stack only at debug level, in one process and a cluster', async () => {
    const holder = await t.kit.named('holder');
    const port = holder.address.split(':')[1]!;
    for (const [level, workers] of [
      ['info', 1],
      ['debug', 1],
      ['info', 2],
    ] as const) {
      const proc = new ClusterProcess();
      t.cluster = proc;
      proc.writeConfig(
        `workers: ${workers}\nlisten: 127.0.0.1:${port}\nbackends: [{ address: 127.0.0.1:9001 }]\nlog_level: ${level}\n`,
      );
      proc.start();
      const label = `${level}, workers: ${workers}`;
      expect(await proc.waitExit(20_000), label).toBe(1);
      // One fatal line for the process: a cluster's workers leave it to the primary.
      const fatal = proc.logs.filter((l) => Number(l.level) >= 50);
      expect(fatal, label).toHaveLength(1);
      expect(fatal[0]!.level).toBe(60);
      expect(String(fatal[0]!.msg), label).toMatch(
        new RegExp(`^start failed: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE$`),
      );
      expect(fatal[0]!.code, label).toBe('SWITCHYARD_E_LISTEN');
      expect(JSON.stringify(proc.logs).includes('"stack"'), label).toBe(level === 'debug');
      await proc.kill();
    }
  });

  it('a cluster reload that loads a never-finishing plugin, or one that never starts, fails; the next SIGHUP works', async () => {
    const a = await t.kit.named('a');
    const b = await t.kit.named('b');
    const proc = new ClusterProcess();
    t.cluster = proc;
    const config = (backend: string, extra = '') =>
      `workers: 2\nplugin_timeout: 1s\nlisten: 127.0.0.1:0\nbackends: [{ address: "${backend}" }]\n${extra}`;
    proc.writeConfig(config(a.address));
    proc.start();
    const { proxy } = await proc.started();
    expect((await exchange(proxy, 'x')).toString()).toBe('a\nx');

    proc.writeConfig(config(b.address, `plugins:\n  ${join(dir, 'never-loads.js')}: {}\n`));
    proc.signal('SIGHUP');
    await proc.waitForLog(/reload rejected: the config is invalid/, 20_000);
    expect(String(proc.find('invalid config')?.issue)).toContain('did not finish loading within 1s');

    proc.writeConfig(config(b.address, `plugins:\n  ${join(dir, 'never-starts.js')}: {}\n`));
    proc.signal('SIGHUP');
    await proc.waitForLog(/reload failed: the new workers did not start/, 30_000);
    // The old workers serve the old file's backends again: the primary put the new file's in its
    // registry for the new generation and takes them back on failure; the old workers get that
    // with the next registry snapshot, sent just after the line above (so not at once).
    await poll(
      async () => (await exchange(proxy, 'y')).toString() === 'a\ny',
      5_000,
      "the old workers back on the old file's backend",
    );

    proc.writeConfig(config(b.address));
    proc.signal('SIGHUP');
    await proc.waitForLog('reloaded: new workers listening, old workers draining', 30_000);
    expect((await exchange(proxy, 'z')).toString()).toBe('b\nz');
  }, 90_000);
});
