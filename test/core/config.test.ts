import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigIssue } from '../../core/config/errors.js';
import { loadConfigText } from '../../core/config/load.js';

async function issuesOf(yaml: string, env: NodeJS.ProcessEnv = {}): Promise<ConfigIssue[]> {
  try {
    await loadConfigText(yaml, 'c.yaml', { env });
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('config was accepted');
}

describe('config loading', () => {
  it('applies defaults and parses durations', async () => {
    const c = await loadConfigText(
      `
listen: 127.0.0.1:8080
backends:
  - address: 127.0.0.1:9001
    weight: 2
connect_timeout: 250ms
idle_timeout: 1m
`,
      'c.yaml',
    );
    const s = c.services[0]!;
    expect(s.name).toBe('default');
    expect(s.listen).toEqual(['127.0.0.1:8080']);
    expect(s.connect_timeout).toBe(250);
    expect(s.idle_timeout).toBe(60_000);
    expect(s.drain_timeout).toBe(30_000);
    expect(s.retries).toBe(3);
    expect(s.tcp_nodelay).toBe(true);
    expect(s.backends[0]).toMatchObject({ address: '127.0.0.1:9001', weight: 2, tls: false });
    expect(s.plugins.map((p) => p.name)).toEqual(['round-robin']);
  });

  it('accepts milliseconds as numbers and a list of listeners, IPv6 included', async () => {
    const c = await loadConfigText(
      `
listen: [127.0.0.1:8080, "[::1]:8080"]
connect_timeout: 1500
plugins:
  least-connections:
`,
      'c.yaml',
    );
    expect(c.services[0]!.listen).toEqual(['127.0.0.1:8080', '[::1]:8080']);
    expect(c.services[0]!.connect_timeout).toBe(1500);
    expect(c.services[0]!.plugins.map((p) => p.name)).toEqual(['least-connections']);
  });

  it('substitutes ${ENV} and ${ENV:-default}, keeping YAML types', async () => {
    const c = await loadConfigText(
      `
listen: \${HOST:-127.0.0.1}:\${PORT}
retries: \${RETRIES}
backends:
  - address: \${BACKEND}
`,
      'c.yaml',
      { env: { PORT: '7000', RETRIES: '5', BACKEND: '10.0.0.1:80' } },
    );
    expect(c.services[0]!.listen).toEqual(['127.0.0.1:7000']);
    expect(c.services[0]!.retries).toBe(5);
    expect(c.services[0]!.backends[0]!.address).toBe('10.0.0.1:80');
  });

  it('runs several named services; root timeouts are their defaults', async () => {
    const c = await loadConfigText(
      `
connect_timeout: 1s
services:
  pg:
    listen: 127.0.0.1:5432
    backends: [{ address: 10.0.0.1:5432 }]
  redis:
    listen: 127.0.0.1:6379
    connect_timeout: 2s
    plugins: { least-connections: {} }
`,
      'c.yaml',
    );
    expect(c.services.map((s) => [s.name, s.connect_timeout])).toEqual([
      ['pg', 1000],
      ['redis', 2000],
    ]);
    expect(c.services[1]!.plugins.map((p) => p.name)).toEqual(['least-connections']);
  });

  it('reports a YAML syntax error with line and column', async () => {
    const issues = await issuesOf('listen: 127.0.0.1:8080\nbackends:\n  - address: [unclosed\n');
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]!.line).toBeGreaterThanOrEqual(3);
    expect(issues[0]!.col).toBeGreaterThan(0);
  });

  it('reports every schema error at once, each with file:line:col and path', async () => {
    const issues = await issuesOf(`listen: 127.0.0.1:8080
backends:
  - address: 127.0.0.1:9001
    weight: heavy
  - address: 127.0.0.1:9002
    wieght: 2
connect_timeout: soon
`);
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          file: 'c.yaml',
          line: 4,
          col: 13,
          path: 'backends[0].weight',
          message: 'must be integer',
        }),
        expect.objectContaining({
          line: 6,
          col: 5,
          path: 'backends[1].wieght',
          message: expect.stringContaining('did you mean "weight"'),
        }),
        expect.objectContaining({ line: 7, col: 18, path: 'connect_timeout' }),
      ]),
    );
  });

  it('rejects an unknown plugin at its key', async () => {
    const issues = await issuesOf(`listen: 127.0.0.1:8080
plugins:
  least-conections: {}
`);
    expect(issues).toEqual([
      expect.objectContaining({
        line: 3,
        col: 3,
        path: 'plugins.least-conections',
        message: expect.stringContaining('unknown plugin "least-conections"'),
      }),
    ]);
  });

  it('rejects two balancers', async () => {
    const issues = await issuesOf(`listen: 127.0.0.1:8080
plugins:
  round-robin: {}
  least-connections: {}
`);
    expect(issues).toEqual([
      expect.objectContaining({ line: 4, col: 3, message: expect.stringContaining('two balancers') }),
    ]);
  });

  it('rejects bad addresses, duplicates and a missing listen', async () => {
    const issues = await issuesOf(`backends:
  - address: 127.0.0.1:99999
  - address: nohost
  - address: 127.0.0.1:1
  - address: 127.0.0.1:1
`);
    const messages = issues.map((i) => `${i.line}:${i.path}:${i.message}`);
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^1::missing required key "listen"/),
        expect.stringMatching(/^2:backends\[0\]\.address:port 99999 is out of range/),
        expect.stringMatching(/^3:backends\[1\]\.address:.*has no port/),
        expect.stringMatching(
          /^5:backends\[3\]\.address:duplicate backend: 127\.0\.0\.1:1 is already backends\[2\]$/,
        ),
      ]),
    );
  });

  it('one backend, one identity: other spellings of an address are duplicates, at their position', async () => {
    const issues = await issuesOf(`listen: 127.0.0.1:8080
backends:
  - address: localhost:8081
  - address: LOCALHOST.:8081
  - address: "[::1]:8081"
  - address: "[0:0:0:0:0:0:0:1]:08081"
  - address: "[::ffff:127.0.0.1]:8081"
  - address: "[::FFFF:7F00:1]:8081"
  - address: 127.0.0.1:8081
  - address: 127.1:8081
  - address: 127.000.0.1:8081
  - address: 0x7f.0.0.1:8081
`);
    expect(issues.map((i) => `${i.line}:${i.col}:${i.path}:${i.message}`)).toEqual([
      '4:14:backends[1].address:duplicate backend: localhost:8081 is already backends[0] ("LOCALHOST.:8081" is the same address)',
      '6:14:backends[3].address:duplicate backend: [::1]:8081 is already backends[2] ("[0:0:0:0:0:0:0:1]:08081" is the same address)',
      '8:14:backends[5].address:duplicate backend: [::ffff:127.0.0.1]:8081 is already backends[4] ("[::FFFF:7F00:1]:8081" is the same address)',
      expect.stringMatching(
        /^10:14:backends\[7\]\.address:"127\.1" is not an IPv4 address as four decimal numbers/,
      ),
      expect.stringMatching(/^11:14:backends\[8\]\.address:"127\.000\.0\.1" is not an IPv4 address/),
      expect.stringMatching(/^12:14:backends\[9\]\.address:"0x7f\.0\.0\.1" is not an IPv4 address/),
    ]);
  });

  it('reports a missing environment variable where it is used', async () => {
    const issues = await issuesOf('listen: 127.0.0.1:8080\nbackends:\n  - address: ${NOPE}\n');
    expect(issues).toEqual([
      expect.objectContaining({ line: 3, col: 14, message: expect.stringContaining('NOPE is not set') }),
    ]);
  });

  it('rejects plugin option errors through the plugin schema', async () => {
    const issues = await issuesOf(`listen: 127.0.0.1:8080
plugins:
  round-robin:
    fancy: true
`);
    expect(issues).toEqual([expect.objectContaining({ line: 4, col: 5, path: 'plugins.round-robin.fancy' })]);
  });

  it('rejects a non-mapping document and wrong enum values', async () => {
    expect((await issuesOf('- a\n- b\n'))[0]!.message).toContain('must be a mapping');
    const issues = await issuesOf('listen: 127.0.0.1:1\nlog_level: loud\n');
    expect(issues[0]).toMatchObject({ line: 2, col: 12, path: 'log_level' });
    expect(issues[0]!.message).toContain('debug');
  });
});

describe('tls backends', () => {
  it('rejects tls: true when the tls-upstream plugin is not enabled', async () => {
    const issues = await issuesOf(`listen: 127.0.0.1:8080
backends:
  - address: 127.0.0.1:9001
    tls: true
`);
    expect(issues).toEqual([
      expect.objectContaining({
        line: 4,
        col: 10,
        path: 'backends[0].tls',
        message: expect.stringContaining('tls-upstream'),
      }),
    ]);
  });

  it("accepts tls: true when any enabled plugin provides 'upstream-tls' (a stand-in for tls-upstream)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-provides-'));
    try {
      const file = join(dir, 'my-tls.mjs');
      writeFileSync(file, "export default { name: 'my-tls', provides: ['upstream-tls'], apply() {} };\n");
      const yaml = (plugin: string) => `listen: 127.0.0.1:8080
backends:
  - address: 127.0.0.1:9001
    tls: true
plugins:
  ${plugin}: {}
`;
      const config = await loadConfigText(yaml(JSON.stringify(file)), join(dir, 'c.yaml'));
      expect(config.services[0]!.backends[0]!.tls).toBe(true);
      // A plugin that does not declare it does not count.
      writeFileSync(join(dir, 'other.mjs'), "export default { name: 'other', apply() {} };\n");
      await expect(
        loadConfigText(yaml(JSON.stringify(join(dir, 'other.mjs'))), join(dir, 'c.yaml')),
      ).rejects.toThrow(/dials TLS/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
