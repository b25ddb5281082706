import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');

describe('.ci/run installs what the tests start', () => {
  it('its package list is the prerequisites list of scripts/prereqs.js', () => {
    const script = readFileSync(join(root, '.ci/run'), 'utf8');
    const block = /^CI_PACKAGES=\(([^)]*)\)/m.exec(script);
    expect(block, 'CI_PACKAGES=( ... ) in .ci/run').not.toBeNull();
    const ci = block![1]!.split(/\s+/).filter(Boolean).sort();
    const prereqs = execFileSync(process.execPath, [join(root, 'scripts/prereqs.js'), '--list'], {
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean)
      .sort();
    expect(ci).toEqual(prereqs);
  });
});
