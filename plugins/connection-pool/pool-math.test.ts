import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { backoffDelay, healthyIdleLife, poolConnectTimeout } from './backoff.js';
import { idleTarget } from './idle-target.js';
import { type PoolEvents, PooledSocket, usable } from './pooled-socket.js';

describe('idleTarget', () => {
  const o = (min_idle: number, max_idle: number, preconnect_ratio: number) => ({
    min_idle,
    max_idle,
    preconnect_ratio,
  });

  it('is min_idle when preconnect is off (ratio 1)', () => {
    expect(idleTarget(o(2, 16, 1), 0)).toBe(2);
    expect(idleTarget(o(2, 16, 1), 500)).toBe(2);
  });

  it('is ceil(ratio × active) − active when that is more, without float round-up', () => {
    expect(idleTarget(o(0, 100, 1.05), 0)).toBe(0);
    expect(idleTarget(o(0, 100, 1.05), 1)).toBe(1);
    expect(idleTarget(o(0, 100, 1.05), 20)).toBe(1);
    expect(idleTarget(o(0, 100, 1.05), 100)).toBe(5); // 1.05 × 100 = 105.00000000000001
    expect(idleTarget(o(0, 100, 1.5), 4)).toBe(2);
    expect(idleTarget(o(3, 100, 1.05), 20)).toBe(3);
  });

  it('never exceeds max_idle', () => {
    expect(idleTarget(o(0, 8, 3), 100)).toBe(8);
    expect(idleTarget(o(5, 4, 1), 0)).toBe(4);
  });
});

describe('backoffDelay', () => {
  it('doubles per failure between half and all of the ceiling, capped', () => {
    expect(backoffDelay(0, 100, 10_000)).toBe(0);
    expect(backoffDelay(1, 100, 10_000, () => 0)).toBe(50);
    expect(backoffDelay(1, 100, 10_000, () => 1)).toBe(100);
    expect(backoffDelay(4, 100, 10_000, () => 1)).toBe(800);
    expect(backoffDelay(4, 100, 10_000, () => 0)).toBe(400);
    expect(backoffDelay(50, 100, 10_000, () => 1)).toBe(10_000);
    expect(backoffDelay(5000, 100, 10_000, () => 0)).toBe(5_000);
  });
});

describe('usable (checked on borrow)', () => {
  const owner = {} as PoolEvents;
  const entry = (socket: Partial<Socket>, since = 1000) => {
    const e = new PooledSocket(owner, socket as Socket, 1024);
    e.since = since;
    return e;
  };
  const open: Partial<Socket> = {
    destroyed: false,
    readyState: 'open',
    readable: true,
    writable: true,
    readableEnded: false,
    writableEnded: false,
  };

  it('accepts an open socket within its TTL', () => {
    expect(usable(entry(open), 1500, 1000)).toBe(true);
  });

  it('refuses destroyed, half-closed, ended or expired sockets', () => {
    expect(usable(entry({ ...open, destroyed: true }), 1500, 1000)).toBe(false);
    expect(usable(entry({ ...open, readyState: 'writeOnly' }), 1500, 1000)).toBe(false);
    expect(usable(entry({ ...open, readable: false }), 1500, 1000)).toBe(false);
    expect(usable(entry({ ...open, writable: false }), 1500, 1000)).toBe(false);
    expect(usable(entry({ ...open, readableEnded: true }), 1500, 1000)).toBe(false);
    expect(usable(entry({ ...open, writableEnded: true }), 1500, 1000)).toBe(false);
    expect(usable(entry(open), 2000, 1000)).toBe(false);
  });
});

describe('back-off rules', () => {
  it('healthy idle life is min(idle_ttl, backoff_max)', () => {
    expect(healthyIdleLife(30_000, 10_000)).toBe(10_000);
    expect(healthyIdleLife(300, 10_000)).toBe(300);
  });

  it('a pool connect has a deadline even when no connect timeout is configured', () => {
    expect(poolConnectTimeout(2000, 10_000)).toBe(2000);
    expect(poolConnectTimeout(0, 10_000)).toBe(10_000);
    expect(poolConnectTimeout(0, 200)).toBe(1000);
  });
});
