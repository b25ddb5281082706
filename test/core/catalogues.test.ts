import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKEND_STATUSES } from '../../core/backend-status.js';
import { CLOSE_REASONS } from '../../core/close-reasons.js';
import { ERROR_CODES } from '../../core/errors.js';
import { createServiceHooks } from '../../core/hooks.js';
import { STAGE } from '../../core/stages.js';
import { sourceFiles } from '../helpers/import-graph.js';

/**
 * The lists the docs promise are the lists the code has: error codes (docs/errors.md), hooks,
 * tap stages, backend statuses and close reasons (docs/hooks.md).
 */

const root = join(import.meta.dirname, '../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const hooksDoc = read('docs/hooks.md');

/** The text of a `## title` section, up to the next `## `. */
function section(doc: string, title: string): string {
  const start = doc.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`no section "${title}"`);
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
}

/** The cells of each body row of the first table in `text`, first cell unquoted from backticks. */
function tableRows(text: string): string[][] {
  const rows = text
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .map((l) =>
      l
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    );
  return rows.slice(2).map(([first, ...rest]) => [first!.replace(/^`|`$/g, ''), ...rest]);
}

describe('docs/errors.md and the codes thrown', () => {
  const documented = [...read('docs/errors.md').matchAll(/^## `(SWITCHYARD_E_[A-Z_]+)`$/gm)].map(
    (m) => m[1]!,
  );
  const sources = [...sourceFiles(join(root, 'core')), ...sourceFiles(join(root, 'plugins'))].filter(
    (f) => relative(root, f) !== 'core/errors.ts',
  );
  /** Code literals in the source outside the catalogue itself: where errors are made. */
  const used = new Map<string, string[]>();
  for (const file of sources)
    for (const m of readFileSync(file, 'utf8').matchAll(/'(SWITCHYARD_E_[A-Z_]+)'/g)) {
      const files = used.get(m[1]!) ?? [];
      files.push(relative(root, file));
      used.set(m[1]!, files);
    }

  it('documents each code of the catalogue once, and no other', () => {
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('every documented code is thrown somewhere', () => {
    const never = documented.filter((code) => !used.has(code));
    expect(never, 'documented but never thrown').toEqual([]);
  });

  it('every code thrown is documented', () => {
    const undocumented = [...used.keys()].filter((code) => !documented.includes(code));
    expect(undocumented, 'thrown but not in docs/errors.md').toEqual([]);
  });
});

describe('docs/hooks.md', () => {
  it('has one heading per hook, so each can be linked, and none for a hook that does not exist', () => {
    const headings = [...hooksDoc.matchAll(/^### `([\w.]+)`$/gm)].map((m) => m[1]!);
    const hooks = [
      ...Object.keys(createServiceHooks()),
      ...['start', 'stop'].map((h) => `runtime.hooks.${h}`),
    ];
    expect(new Set(headings).size).toBe(headings.length);
    expect([...headings].sort()).toEqual([...hooks].sort());
  });

  it('lists the tap stages with their values, in the order they run', () => {
    const rows = tableRows(section(hooksDoc, 'Tap stages')).map(([name, value]) => [name, Number(value)]);
    const code = Object.entries(STAGE).sort((a, b) => a[1] - b[1]);
    expect(rows).toEqual(code);
  });

  it('lists every backend status with its effect and who sets it', () => {
    const rows = tableRows(section(hooksDoc, 'Backend statuses')).map(([status, effect, setBy]) => [
      status,
      effect,
      setBy,
    ]);
    const code = Object.entries(BACKEND_STATUSES).map(([status, v]) => [
      status,
      v.effect,
      v.setBy ?? 'reserved',
    ]);
    expect(rows).toEqual(code);
  });

  it('lists every close reason, internal-error included', () => {
    const rows = tableRows(section(hooksDoc, 'Close reasons')).map(([reason]) => reason);
    expect(rows).toEqual([...CLOSE_REASONS]);
  });

  it('every close reason is produced by the core', () => {
    const core = sourceFiles(join(root, 'core'))
      .filter((f) => !f.endsWith('close-reasons.ts'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    expect(CLOSE_REASONS.filter((r) => !core.includes(`'${r}'`))).toEqual([]);
  });
});
