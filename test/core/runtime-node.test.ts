import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/**
 * CI runs the suite on the machine's Node and again on the reference runtime (.ci/run sets
 * SWITCHYARD_EXPECT_NODE for that pass): this fails if that pass is not really on it.
 */
describe('the Node the suite runs on', () => {
  const expected = process.env.SWITCHYARD_EXPECT_NODE;

  it('is reported', () => {
    // Shown in the run's output, so a log says which Node each pass used.
    console.log(`Node ${process.version} (${process.execPath})`);
    expect(process.version).toMatch(/^v\d+\.\d+\.\d+$/);
  });

  it.skipIf(expected === undefined)('is the version CI asked for, in the tests and in `node` on PATH', () => {
    expect(process.version).toBe(expected);
    expect(execFileSync('node', ['--version'], { encoding: 'utf8' }).trim()).toBe(expected);
  });
});
