import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sourceFiles, specifiersOf } from '../helpers/import-graph.js';

/**
 * Built-in plugins and examples are written as a third party would: they reach the core only
 * through `switchyard/plugin-sdk`. Biome's noRestrictedImports (biome.json) says so while
 * editing; this test also catches `import()` and `import('x').T` types, in .ts and .js files.
 * Their tests too: they use `switchyard/testing`, never core/ or test/helpers.
 */

const root = join(import.meta.dirname, '../..');
/** The package's doors for plugins: the SDK, and the test kit for their tests. */
const ALLOWED = new Set(['switchyard/plugin-sdk', 'switchyard/testing']);

/** Imports of `file` that reach into core/ or the programmatic API instead of the SDK. */
function forbidden(file: string, base = root): string[] {
  return specifiersOf(file).filter((spec) => {
    if (spec === 'switchyard' || (spec.startsWith('switchyard/') && !ALLOWED.has(spec))) return true;
    if (!spec.startsWith('.')) return false;
    const target = relative(base, resolve(dirname(file), spec));
    return target === 'core' || target.startsWith('core/') || target.startsWith('test/helpers');
  });
}

describe('plugins/ and examples/ import only the plugin SDK', () => {
  it('no file under plugins/ or examples/, tests included, imports core/', () => {
    const files = [
      ...sourceFiles(join(root, 'plugins'), true, true),
      ...sourceFiles(join(root, 'examples'), true, true),
    ];
    expect(files.length).toBeGreaterThan(60);
    const found = files.flatMap((f) => forbidden(f).map((spec) => `${relative(root, f)}: ${spec}`));
    expect(found).toEqual([]);
  });

  it('the check sees static, dynamic and type imports and the bare package', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'switchyard-boundary-'));
    try {
      const file = join(dir, 'plugins/x/index.ts');
      await import('node:fs/promises').then((fs) => fs.mkdir(dirname(file), { recursive: true }));
      await writeFile(
        file,
        [
          "import { parseDuration } from '../../core/duration.js';",
          "import type { Service } from '../../core/service.js';",
          "export type R = import('../../core/runtime.js').Runtime;",
          "const late = () => import('../../core/cli.js');",
          "import { Runtime } from 'switchyard';",
          "import { definePlugin } from '../../plugin-sdk/index.js';",
          "import { definePlugin as d } from 'switchyard/plugin-sdk';",
        ].join('\n'),
      );
      expect(forbidden(file, dir)).toEqual([
        '../../core/duration.js',
        '../../core/service.js',
        '../../core/runtime.js',
        '../../core/cli.js',
        'switchyard',
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
