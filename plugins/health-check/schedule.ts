import type { HealthPhase } from './api.js';
import type { CheckSettings } from './options.js';

/** The base delay before the next check (HAProxy inter / fastinter / downinter). */
export function intervalFor(phase: HealthPhase, s: CheckSettings): number {
  if (phase === 'up') return s.interval;
  if (phase === 'down') return s.downInterval;
  return s.fastInterval;
}

/** `base` moved randomly by up to ±`jitter` percent (HAProxy spread-checks), at least 1 ms. */
export function jittered(base: number, jitter: number, random: () => number = Math.random): number {
  if (jitter <= 0) return base;
  return Math.max(1, Math.round(base * (1 + ((random() * 2 - 1) * jitter) / 100)));
}

/**
 * Delay of a backend's first check: somewhere in the first `jitter` percent of the interval, so
 * a new backend is checked promptly but a long list does not fire in one burst (0 = at once).
 */
export function firstDelay(interval: number, jitter: number, random: () => number = Math.random): number {
  return Math.floor((random() * interval * jitter) / 100);
}
