import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/config/errors.js';
import { loadConfigText } from '../../core/config/load.js';
import { createTestKit, exchange, waitFor } from '../../testing/index.js';

const kit = createTestKit();
let dir: string | undefined;

afterEach(async () => {
  await kit.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

const root = resolve(import.meta.dirname, '../..');

async function configIssues(yaml: string, baseDir = root): Promise<string[]> {
  try {
    await loadConfigText(yaml, 'c.yaml', { baseDir });
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => `${i.line}:${i.col} ${i.path} ${i.message}`);
    throw err;
  }
  return [];
}

describe('third-party plugins', () => {
  it('loads the SDK-only example plugin by path and runs its accept hook', async () => {
    const backend = await kit.echo();
    const proxy = await kit.proxy(
      `
listen: 127.0.0.1:0
backends: [{ address: ${backend.address} }]
plugins:
  ./examples/allow-list:
    allow: [10.0.0.0/8]
`,
      { baseDir: root },
    );
    // 127.0.0.1 is not allowed: refused before the backend sees anything.
    const got = await exchange(proxy.address).catch(() => Buffer.alloc(0));
    expect(got.length).toBe(0);
    await waitFor(() => proxy.service.counters.rejected === 1);
    expect(backend.accepted).toBe(0);
    expect(proxy.service.use<{ refused(): number }>('allow-list')!.refused()).toBe(1);
  });

  it('lets allowed clients through', async () => {
    const backend = await kit.echo();
    const proxy = await kit.proxy(
      `
listen: 127.0.0.1:0
backends: [{ address: ${backend.address} }]
plugins:
  ./examples/allow-list: { allow: [127.0.0.0/8] }
`,
      { baseDir: root },
    );
    expect((await exchange(proxy.address, 'in')).toString()).toBe('in');
  });

  it('validates a third-party plugin’s options with its own schema', async () => {
    const issues = await configIssues(`listen: 127.0.0.1:0
plugins:
  ./examples/allow-list:
    allow: [not-a-cidr]
`);
    expect(issues).toEqual([
      expect.stringMatching(/^4:13 plugins\["\.\/examples\/allow-list"\]\.allow\[0\] must match/),
    ]);
  });

  it('reports a missing plugin file, a non-plugin module and a missing dependency', async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-plugins-'));
    await writeFile(join(dir, 'not-a-plugin.js'), 'export default { hello: 1 };\n');
    await writeFile(
      join(dir, 'needs-dep.js'),
      "export default { name: 'needs-dep', dependencies: ['health-thing'], apply() {} };\n",
    );
    const issues = await configIssues(
      `listen: 127.0.0.1:0
plugins:
  ./missing.js: {}
  ./not-a-plugin.js: {}
  ./needs-dep.js: {}
`,
      dir,
    );
    expect(issues).toEqual([
      expect.stringMatching(/^3:3 .*does not exist/),
      expect.stringMatching(/^4:3 .*plugin has no name/),
      expect.stringMatching(/^5:3 .*needs plugin "health-thing"/),
    ]);
  });

  it("reports what a plugin's check finds at the option's line, and a check that throws", async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-plugins-'));
    await writeFile(
      join(dir, 'even.js'),
      `export default {
  name: 'even',
  schema: { type: 'object', properties: { n: { type: 'integer', default: 2 } } },
  check: (o) => (o.n % 2 === 0 ? [] : [{ path: ['n'], message: 'n must be even' }]),
  apply() {},
};
`,
    );
    await writeFile(
      join(dir, 'broken-check.js'),
      "export default { name: 'broken-check', check() { throw new Error('oops'); }, apply() {} };\n",
    );
    await writeFile(
      join(dir, 'odd-check.js'),
      "export default { name: 'odd-check', check: 1, apply() {} };\n",
    );
    const issues = await configIssues(
      `listen: 127.0.0.1:0
plugins:
  ./even.js:
    n: 3
  ./broken-check.js: {}
  ./odd-check.js: {}
`,
      dir,
    );
    expect(issues).toEqual([
      expect.stringMatching(/^6:3 .*check that is not a function/),
      '4:8 plugins["./even.js"].n n must be even',
      '5:22 plugins["./broken-check.js"] check failed: oops',
    ]);
    expect(await configIssues('listen: 127.0.0.1:0\nplugins:\n  ./even.js: { n: 4 }\n', dir)).toEqual([]);
  });

  it('reports a plugin whose apply throws at start, by name', async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-plugins-'));
    await writeFile(
      join(dir, 'boom.js'),
      "export default { name: 'boom', apply() { throw new Error('kaput'); } };\n",
    );
    await expect(
      kit.proxy('listen: 127.0.0.1:0\nplugins:\n  ./boom.js: {}\n', { baseDir: dir }),
    ).rejects.toThrow('plugin "./boom.js" failed to apply: kaput');
  });
});

describe('a throwing plugin hook', () => {
  it('fails only the session it threw on; the proxy keeps serving', async () => {
    const backend = await kit.echo();
    const proxy = await kit.proxy(`listen: 127.0.0.1:0\nbackends: [{ address: ${backend.address} }]\n`);
    let calls = 0;
    proxy.service.hooks.accept.tap('flaky', () => {
      if (++calls === 1) throw new Error('flaky plugin');
      return undefined;
    });
    proxy.service.hooks.candidates.tap('flaky-filter', (list) => {
      if (calls === 2) throw new Error('flaky filter');
      return list;
    });
    const reasons: string[] = [];
    proxy.service.hooks.closed.tap('test', (s) => {
      reasons.push(`${s.closeReason} ${s.closeDetail}`);
    });
    await exchange(proxy.address, 'a').catch(() => undefined);
    await exchange(proxy.address, 'b').catch(() => undefined);
    expect((await exchange(proxy.address, 'c')).toString()).toBe('c');
    await waitFor(() => reasons.length === 3);
    expect(reasons.slice(0, 2)).toEqual(['internal-error accept', 'internal-error connect']);
  });
});
