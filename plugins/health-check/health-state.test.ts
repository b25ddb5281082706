import { describe, expect, it } from 'vitest';
import { HealthState } from './health-state.js';
import { resolveSettings } from './options.js';
import { firstDelay, intervalFor, jittered } from './schedule.js';

/** Feeds results ('+' pass, '-' fail) and returns the phase after each. */
function run(state: HealthState, results: string): string[] {
  return [...results].map((r) => {
    state.record(r === '+');
    return state.phase;
  });
}

describe('HealthState (rise/fall)', () => {
  it('fully-up needs `fall` consecutive failures to go down', () => {
    const s = new HealthState('fully-up', 2, 3);
    expect(run(s, '--')).toEqual(['going-down', 'going-down']);
    expect(s.healthy).toBe(true);
    expect(s.record(false)).toBe(true);
    expect(s.healthy).toBe(false);
    expect(s.phase).toBe('down');
  });

  it('a success in between resets the failure run', () => {
    const s = new HealthState('fully-up', 2, 3);
    expect(run(s, '--+--')).toEqual(['going-down', 'going-down', 'up', 'going-down', 'going-down']);
    expect(s.healthy).toBe(true);
  });

  it('fully-down needs `rise` consecutive successes to go up, and a failure resets the run', () => {
    const s = new HealthState('fully-down', 3, 2);
    expect(run(s, '++-++')).toEqual(['going-up', 'going-up', 'down', 'going-up', 'going-up']);
    expect(s.healthy).toBe(false);
    expect(s.record(true)).toBe(true);
    expect(s.phase).toBe('up');
  });

  it('initial up: the first check decides (one failure marks it down), later ones use fall', () => {
    const dead = new HealthState('up', 2, 3);
    expect(dead.healthy).toBe(true);
    expect(dead.record(false)).toBe(true);
    expect(dead.healthy).toBe(false);

    const alive = new HealthState('up', 2, 3);
    expect(alive.record(true)).toBe(false);
    expect(run(alive, '--')).toEqual(['going-down', 'going-down']);
    expect(alive.healthy).toBe(true);
  });

  it('initial down: one success marks it up; then fall failures are needed', () => {
    const s = new HealthState('down', 5, 2);
    expect(s.healthy).toBe(false);
    expect(s.record(true)).toBe(true);
    expect(s.healthy).toBe(true);
    expect(s.record(false)).toBe(false);
    expect(s.record(false)).toBe(true);
  });

  it('rise 1 / fall 1 flip on every change', () => {
    const s = new HealthState('fully-up', 1, 1);
    const flips = [...'+-+-'].map((r) => s.record(r === '+'));
    expect(flips).toEqual([false, true, true, true]);
  });
});

describe('schedule', () => {
  const settings = resolveSettings({
    interval: 1000,
    fast_interval: 100,
    down_interval: 5000,
    jitter: 10,
    rise: 2,
    fall: 3,
    initial: 'up',
    tls: 'auto',
    on_marked_down: 'keep',
    when_all_down: 'refuse',
  });

  it('uses inter when steady up, fastinter while changing state, downinter when steady down', () => {
    expect(intervalFor('up', settings)).toBe(1000);
    expect(intervalFor('going-down', settings)).toBe(100);
    expect(intervalFor('going-up', settings)).toBe(100);
    expect(intervalFor('down', settings)).toBe(5000);
  });

  it('jitter moves a delay by at most ±jitter percent', () => {
    expect(jittered(1000, 10, () => 0)).toBe(900);
    expect(jittered(1000, 10, () => 0.5)).toBe(1000);
    expect(jittered(1000, 10, () => 0.999999)).toBe(1100);
    expect(jittered(1000, 0, () => 0)).toBe(1000);
    expect(jittered(1, 50, () => 0)).toBe(1);
  });

  it('first checks land in the first jitter-percent of the interval, at once without jitter', () => {
    expect(firstDelay(2000, 10, () => 0)).toBe(0);
    expect(firstDelay(2000, 10, () => 0.5)).toBe(100);
    expect(firstDelay(2000, 10, () => 0.999)).toBeLessThan(200);
    expect(firstDelay(2000, 0, () => 0.9)).toBe(0);
  });

  it('fast_interval, down_interval and timeout default to interval', () => {
    const d = resolveSettings({
      interval: 700,
      jitter: 0,
      rise: 1,
      fall: 1,
      initial: 'up',
      tls: 'auto',
      on_marked_down: 'keep',
      when_all_down: 'refuse',
    });
    expect(d.interval).toBe(700);
    expect([d.fastInterval, d.downInterval, d.timeout]).toEqual([700, 700, 700]);
  });
});
