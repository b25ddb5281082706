import { closeSync, openSync } from 'node:fs';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { openFilesLimit } from '../../core/capacity.js';
import { openDescriptors, PrimaryFdWatch } from '../../core/cluster/primary-fd-watch.js';

/** A pino logger that keeps its lines. */
function recordingLog() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { log, lines };
}

describe('primary descriptor watch', () => {
  it('counts real descriptors: opening files raises the count by as many', () => {
    const before = openDescriptors()!;
    const fds = Array.from({ length: 25 }, () => openSync('/dev/null', 'r'));
    try {
      expect(openDescriptors()! - before).toBe(25);
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    expect(openDescriptors()).toBe(before);
  });

  it('warns above its share of the limit, at most once per 10 s, with the count and the limit', () => {
    const { log, lines } = recordingLog();
    let now = 1_000_000;
    const limit = openFilesLimit()!;
    const fds = openDescriptors()!;
    // A share just under what is open now: this process counts as "near its limit".
    const watch = new PrimaryFdWatch(log, (fds - 5) / limit, () => now);
    expect(watch.sample()).toEqual({ fds: expect.any(Number), limit });
    watch.sample();
    expect(lines.filter((l) => /near its open files limit/.test(String(l.msg)))).toHaveLength(1);
    expect(lines[0]).toMatchObject({ limit, level: 40 });
    expect(lines[0]!.fds).toBeGreaterThanOrEqual(fds - 5);
    now += 10_000;
    watch.sample();
    expect(lines).toHaveLength(2);
    expect(watch.peak).toBeGreaterThan(0);

    // Far below the share: silent.
    const quiet = recordingLog();
    new PrimaryFdWatch(quiet.log, 0.99).sample();
    expect(quiet.lines).toHaveLength(0);
  });
});
