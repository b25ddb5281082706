import type { Logger } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { LogThrottle } from '../../core/log-throttle.js';

describe('LogThrottle', () => {
  it('logs a kind at most once per interval, then says how many it held back', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    try {
      const lines: Array<[Record<string, unknown>, string]> = [];
      const log = {
        warn: (fields: Record<string, unknown>, msg: string) => lines.push([fields, msg]),
      } as unknown as Logger;
      const throttle = new LogThrottle(log, 10_000);
      for (let i = 0; i < 5; i++) throttle.warn('rate', { i }, 'refused');
      throttle.warn('connections', { i: 9 }, 'other kind');
      vi.advanceTimersByTime(10_000);
      throttle.warn('rate', { i: 5 }, 'refused');
      expect(lines).toEqual([
        [{ i: 0 }, 'refused'],
        [{ i: 9 }, 'other kind'],
        [{ i: 5, suppressed: 4 }, 'refused'],
      ]);
    } finally {
      vi.useRealTimers();
    }
  });
});
