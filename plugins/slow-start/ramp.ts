/** Envoy's slow-start curve: the share of its weight a backend gets `elapsed` ms into the window. */
export function rampFactor(elapsed: number, window: number, aggression: number, minFactor: number): number {
  if (elapsed >= window) return 1;
  const t = elapsed <= 0 ? 0 : elapsed / window;
  const shaped = aggression === 1 ? t : t ** (1 / aggression);
  return Math.max(shaped, minFactor);
}

/**
 * How often the weights are updated during a ramp: 20 steps per window (HAProxy's), at most
 * one a second, at least 25 ms apart. Each step is one `setWeightFactor` per ramping backend.
 */
export function rampStep(window: number): number {
  return Math.min(1000, Math.max(25, Math.round(window / 20)));
}
