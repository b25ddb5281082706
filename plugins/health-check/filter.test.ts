import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Backend, Service, Session } from '../../plugin-sdk/index.js';
import { HealthChecker } from './checker.js';
import { type InitialState, resolveSettings } from './options.js';

/** A checker over fake backends; `down` lists the ones that start marked down. Never started. */
function setup(n: number, down: number[], whenAllDown: 'refuse' | 'panic' = 'refuse') {
  const backends = Array.from(
    { length: n },
    (_, i) =>
      ({
        address: `127.0.0.1:${9000 + i}`,
        host: '127.0.0.1',
        port: 9000 + i,
        spec: { address: `127.0.0.1:${9000 + i}` },
        state: 'up',
        status: {},
      }) as unknown as Backend,
  );
  const statuses: string[] = [];
  const service = {
    backends: { up: backends, get: (a: string) => backends.find((b) => b.address === a) },
    setBackendStatus: (b: Backend, source: string, status: string) => {
      statuses.push(`${b.port}:${source}:${status}`);
      return true;
    },
  } as unknown as Service;
  const settings = resolveSettings({
    interval: 1000,
    jitter: 0,
    rise: 2,
    fall: 3,
    initial: 'fully-up',
    tls: 'auto',
    on_marked_down: 'keep',
    when_all_down: whenAllDown,
  });
  const checker = new HealthChecker(service, settings, pino({ level: 'silent' }), '/');
  backends.forEach((b, i) => {
    settings.initial = (down.includes(i) ? 'fully-down' : 'fully-up') as InitialState;
    checker.add(b);
  });
  return { checker, backends, statuses };
}

const fresh = { tried: null } as Session;

describe('candidate filter', () => {
  it('returns the very array it got while everything is healthy', () => {
    const { checker, backends } = setup(3, []);
    expect(checker.filter(backends, fresh)).toBe(backends);
  });

  it('returns a filtered copy without touching the input, and reuses it for the same input', () => {
    const { checker, backends } = setup(4, [1]);
    const before = [...backends];
    const out = checker.filter(backends, fresh);
    expect(out).toEqual([backends[0], backends[2], backends[3]]);
    expect(out).not.toBe(backends);
    expect(backends).toEqual(before);
    expect(checker.filter(backends, fresh)).toBe(out);
    // Another input (e.g. a retry subset) is filtered on its own.
    expect(checker.filter([backends[1]!, backends[3]!], fresh)).toEqual([backends[3]]);
  });

  it('on a retry whose untried backends are all down, offers the healthy ones again', () => {
    const { checker, backends } = setup(3, [1, 2]);
    const retry = { tried: [backends[0]] } as unknown as Session;
    expect(checker.filter([backends[1]!, backends[2]!], retry)).toEqual([backends[0]]);
  });

  it('refuses when all are down, or routes to all in panic mode; counts both', () => {
    const refuse = setup(2, [0, 1]);
    expect(refuse.checker.allDown).toBe(true);
    expect(refuse.checker.filter(refuse.backends, fresh)).toEqual([]);
    expect(refuse.checker.counters.refusedAllDown).toBe(1);

    const panic = setup(2, [0, 1], 'panic');
    expect(panic.checker.filter(panic.backends, fresh)).toBe(panic.backends);
    expect(panic.checker.counters.panicRouted).toBe(1);
  });

  it('reports the initial state through setBackendStatus and the API', () => {
    const { checker, backends, statuses } = setup(2, [1]);
    expect(statuses).toEqual(['9000:health-check:up', '9001:health-check:down']);
    expect(checker.isHealthy(backends[0]!)).toBe(true);
    expect(checker.isHealthy(backends[1]!)).toBe(false);
    expect(checker.get('127.0.0.1:9001')).toMatchObject({
      healthy: false,
      phase: 'down',
      checks: 0,
      lastCheckAt: null,
      lastError: null,
    });
    expect(checker.list().map((h) => h.healthy)).toEqual([true, false]);
    checker.remove(backends[1]!);
    expect(checker.filter(backends, fresh)).toBe(backends); // nothing down any more
  });
});
