import type { Backend } from '../../plugin-sdk/index.js';
import { definePlugin } from '../../plugin-sdk/index.js';

/**
 * Weighted round robin, the smooth variant (NGINX): with weights 5,1,1 the order is
 * a a b a c a a — the heavy backend's turns are spread out, never sent in a burst.
 * When all weights are equal it is a plain rotation (no per-pick bookkeeping). Weights are
 * `effectiveWeight` (the balancer contract, docs/plugin-sdk.md), so a slow-start ramp or any
 * other modifier shapes the rotation.
 */
export default definePlugin({
  name: 'round-robin',
  kind: 'balancer',
  description: 'Weighted smooth round robin (the default balancer).',
  schema: { type: 'object', additionalProperties: false, properties: {} },
  apply(service) {
    let uniform = true;
    let next = 0;
    /** Smooth-WRR running weight per backend; only used when weights differ. */
    const current = new Map<Backend, number>();

    const recompute = () => {
      const list = service.backends.list();
      uniform = list.every((b) => b.effectiveWeight === list[0]!.effectiveWeight);
      for (const b of current.keys()) if (b.state === 'removed') current.delete(b);
    };
    service.hooks.backendAdded.tap('round-robin', recompute);
    service.hooks.backendRemoved.tap('round-robin', recompute);
    service.hooks.backendChanged.tap('round-robin', recompute);
    service.hooks.backendWeight.tap('round-robin', recompute);

    service.hooks.select.tap('round-robin', (candidates) => {
      const n = candidates.length;
      if (n === 1) return candidates[0];
      if (uniform) {
        if (next >= n) next = 0;
        return candidates[next++];
      }
      let total = 0;
      let best: Backend | undefined;
      let bestWeight = -Infinity;
      for (let i = 0; i < n; i++) {
        const b = candidates[i]!;
        const weight = b.effectiveWeight;
        const w = (current.get(b) ?? 0) + weight;
        current.set(b, w);
        total += weight;
        if (w > bestWeight) {
          bestWeight = w;
          best = b;
        }
      }
      current.set(best!, bestWeight - total);
      return best;
    });
  },
});
