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
    // Smooth-WRR running scores, only used when weights differ: one slot per registered
    // backend, in a typed array rather than a Map (a pick touches every candidate, so at 1,000
    // backends Map reads and writes cost tens of µs). `upSlots` maps positions in the
    // registry's `up` array — what `select` receives when no filter removed anyone — to slots.
    let slots = new Map<Backend, number>();
    let current = new Float64Array(0);
    let up: readonly Backend[] = [];
    let upSlots = new Uint32Array(0);

    const recompute = () => {
      const list = service.backends.list();
      uniform = list.every((b) => b.effectiveWeight === list[0]!.effectiveWeight);
      // Scores carry over for backends that stay, so a change does not restart the sequence.
      const nextSlots = new Map<Backend, number>();
      const nextCurrent = new Float64Array(list.length);
      for (let i = 0; i < list.length; i++) {
        const b = list[i]!;
        nextSlots.set(b, i);
        const old = slots.get(b);
        if (old !== undefined) nextCurrent[i] = current[old]!;
      }
      slots = nextSlots;
      current = nextCurrent;
      up = service.backends.up;
      upSlots = Uint32Array.from(up, (b) => nextSlots.get(b)!);
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
      // Locals, not the closure's variables, in the loop.
      const all = candidates === up;
      const order = up;
      const orderLength = order.length;
      const orderSlots = upSlots;
      const scores = current;
      let p = 0;
      let total = 0;
      let best = 0;
      let bestSlot = -1;
      let bestScore = -Infinity;
      for (let i = 0; i < n; i++) {
        const b = candidates[i]!;
        let slot: number;
        if (all) slot = orderSlots[i]!;
        else {
          // A filtered copy keeps the order of `up`: find each candidate further along it.
          while (p < orderLength && order[p] !== b) p++;
          slot = p < orderLength ? orderSlots[p++]! : (slots.get(b) ?? -1);
        }
        const weight = b.effectiveWeight;
        const score = (slot < 0 ? 0 : scores[slot]!) + weight;
        if (slot >= 0) scores[slot] = score;
        total += weight;
        if (score > bestScore) {
          bestScore = score;
          best = i;
          bestSlot = slot;
        }
      }
      if (bestSlot >= 0) scores[bestSlot] = bestScore - total;
      return candidates[best];
    });
  },
});
