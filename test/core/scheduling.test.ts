import { describe, expect, it } from 'vitest';
import {
  resolveScheduling,
  reusePortSupport,
  SCHEDULING_ENV,
  workerScheduling,
} from '../../core/cluster/scheduling.js';

/**
 * Which Node can do `listen({ reusePort })`, and what `scheduling` becomes with it or without.
 * The cluster tests (test/cluster/reuseport.test.ts) check the same on the Node they run on,
 * with real processes; these pin the boundaries CI's two passes (Node 20, Node 24) cannot.
 */
describe('scheduling: where reuseport is available', () => {
  it('reusePort support starts at 22.12 on the 22 line and 23.1 after it, on Linux only', () => {
    const yes = ['22.12.0', '22.22.1', '23.1.0', '23.11.1', '24.0.0', '24.22.3', '25.2.1'];
    const no = ['18.20.8', '20.20.2', '21.7.3', '22.0.0', '22.11.0', '23.0.0'];
    for (const v of yes) expect(reusePortSupport(v, 'linux'), v).toEqual({ supported: true });
    for (const v of no) {
      const r = reusePortSupport(v, 'linux');
      expect(r.supported, v).toBe(false);
      expect(r).toMatchObject({
        reason: `reuseport needs Node >= 22.12 (or >= 23.1) on Linux; this is Node v${v} on linux`,
      });
    }
    // Elsewhere Node ignores the option or the kernel does not spread connections (macOS): rr.
    expect(reusePortSupport('24.22.3', 'darwin').supported).toBe(false);
    expect(reusePortSupport('24.22.3', 'win32').supported).toBe(false);
  });

  it('auto is reuseport where supported, else rr with a note saying why; rr and none stay as written', () => {
    const yes = reusePortSupport('24.22.3', 'linux');
    const no = reusePortSupport('20.20.2', 'linux');
    expect(resolveScheduling('auto', yes)).toEqual({ scheduling: 'reuseport' });
    expect(resolveScheduling('auto', no)).toEqual({
      scheduling: 'rr',
      note: 'scheduling auto: using rr (reuseport needs Node >= 22.12 (or >= 23.1) on Linux; this is Node v20.20.2 on linux)',
    });
    expect(resolveScheduling('reuseport', yes)).toEqual({ scheduling: 'reuseport' });
    expect(resolveScheduling('reuseport', no)).toEqual({
      error:
        'scheduling: reuseport is not available: reuseport needs Node >= 22.12 (or >= 23.1) on Linux; this is Node v20.20.2 on linux',
    });
    for (const s of ['rr', 'none'] as const) {
      expect(resolveScheduling(s, yes)).toEqual({ scheduling: s });
      expect(resolveScheduling(s, no)).toEqual({ scheduling: s });
    }
  });

  it('a worker runs the mode its primary resolved; anything else in the variable is rr', () => {
    expect(workerScheduling({ [SCHEDULING_ENV]: 'reuseport' })).toBe('reuseport');
    expect(workerScheduling({ [SCHEDULING_ENV]: 'none' })).toBe('none');
    expect(workerScheduling({ [SCHEDULING_ENV]: 'rr' })).toBe('rr');
    expect(workerScheduling({})).toBe('rr');
    expect(workerScheduling({ [SCHEDULING_ENV]: 'auto' })).toBe('rr');
  });
});
