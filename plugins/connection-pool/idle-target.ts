import type { PoolOptions } from './options.js';

/**
 * How many warm sockets a backend should have (idle + connecting), given its active sessions:
 *
 *   target = min(max_idle, max(min_idle, ceil(preconnect_ratio × active) − active))
 *
 * The second term is Envoy's per-upstream preconnect: with ratio 1.05 and 100 active sessions,
 * 105 connections are wanted, so 5 spare. `active` counts the session being connected right now.
 * The epsilon keeps 1.05 × 100 = 105.00000000000001 from rounding up to 106.
 */
export function idleTarget(
  options: Pick<PoolOptions, 'min_idle' | 'max_idle' | 'preconnect_ratio'>,
  active: number,
): number {
  const spare =
    options.preconnect_ratio > 1 ? Math.ceil(options.preconnect_ratio * active - 1e-9) - active : 0;
  return Math.min(options.max_idle, Math.max(options.min_idle, spare));
}
