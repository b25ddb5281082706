import { definePlugin } from '../../plugin-sdk/index.js';

/**
 * Least connections (HAProxy leastconn): the candidate with the fewest sessions per unit of
 * weight, counting the one being placed — `(active + peerActive + 1) / effectiveWeight` — so
 * weights decide from the first session and a ramping (slow-start) backend keeps to its share
 * even while idle. Ties rotate, so idle backends share new sessions instead of the first one
 * taking them all. `backend.active` is kept by the core (connecting sessions count), so counts
 * stay exact when backends are added, removed, drained or re-added. In a cluster the other
 * workers' sessions count too (`backend.peerActive`, up to ~1 s old).
 */
export default definePlugin({
  name: 'least-connections',
  kind: 'balancer',
  description: 'Fewest active sessions per weight; ties rotate.',
  schema: { type: 'object', additionalProperties: false, properties: {} },
  apply(service) {
    let offset = 0;
    service.hooks.select.tap('least-connections', (candidates) => {
      const n = candidates.length;
      if (n === 1) return candidates[0];
      if (++offset >= n) offset = 0;
      let best = candidates[offset]!;
      let bestLoad = best.active + best.peerActive + 1;
      // From `offset` to the end, then from 0 to `offset` (no modulo per candidate).
      for (let pass = 0; pass < 2; pass++) {
        const from = pass === 0 ? offset + 1 : 0;
        const to = pass === 0 ? n : offset;
        for (let k = from; k < to; k++) {
          const b = candidates[k]!;
          const load = b.active + b.peerActive + 1;
          // Compared without division. `peerActive`: the other cluster workers' sessions
          // there (0 with one process), so the whole cluster is balanced.
          if (load * best.effectiveWeight < bestLoad * b.effectiveWeight) {
            best = b;
            bestLoad = load;
          }
        }
      }
      return best;
    });
  },
});
