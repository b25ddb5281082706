import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** Every `.ts` file under `dir` (recursively, `.js` too with `withJs`), test files excepted. */
export function sourceFiles(dir: string, withJs = false, withTests = false): string[] {
  const out: string[] = [];
  const source = withJs ? /\.(ts|js)$/ : /\.ts$/;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') out.push(...sourceFiles(path, withJs, withTests));
    } else if (source.test(entry.name) && !(withTests ? /\.d\.ts$/ : /\.(test|d)\.[jt]s$/).test(entry.name))
      out.push(path);
  }
  return out;
}

/**
 * Module specifiers a file names: imports and re-exports (type-only ones too), `import()`
 * calls and `import('x').T` type references, as TypeScript's own pre-processor reads them.
 */
export function specifiersOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return info.importedFiles.map((f) => f.fileName);
}

/** Relative imports of the files under `dir` that stay under `dir`, as a graph of relative paths. */
export function importGraph(dir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(dir)) {
    const edges: string[] = [];
    for (const spec of specifiersOf(file)) {
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      const rel = relative(dir, target);
      if (!rel.startsWith('..')) edges.push(rel);
    }
    graph.set(relative(dir, file), edges);
  }
  return graph;
}

/** Strongly connected components with more than one module (or a module importing itself). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const stack: string[] = [];
  const onStack = new Set<string>();
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}
