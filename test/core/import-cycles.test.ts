import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cycles, importGraph } from '../helpers/import-graph.js';

const core = new URL('../../core', import.meta.url).pathname;

describe('core/ has no import cycle', () => {
  it('none, type imports included', () => {
    const graph = importGraph(core);
    expect(graph.size).toBeGreaterThan(40);
    // Each entry is a set of modules that import each other, directly or through others.
    expect(cycles(graph)).toEqual([]);
  });

  describe('the check itself', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'switchyard-cycles-'));
      await writeFile(join(dir, 'a.ts'), "import type { B } from './b.js';\nexport type A = { b: B };\n");
      await writeFile(join(dir, 'b.ts'), "export type B = { a: import('./c.js').C };\n");
      await writeFile(join(dir, 'c.ts'), "export type { A as C } from './a.js';\n");
      await writeFile(join(dir, 'd.ts'), "import './d.js';\n");
      await writeFile(join(dir, 'e.ts'), "import { A } from './a.js';\nexport const e: A | null = null;\n");
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('sees type-only imports, import() types, re-exports and self-imports', () => {
      expect(cycles(importGraph(dir))).toEqual([['a.ts', 'b.ts', 'c.ts'], ['d.ts']]);
    });
  });
});
