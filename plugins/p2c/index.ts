import { type BalancerSelect, definePlugin } from '../../plugin-sdk/index.js';

/**
 * Power of two random choices (Mitzenmacher; Envoy's default `LEAST_REQUEST`): two distinct
 * candidates drawn at random, the one with fewer sessions per unit of weight wins —
 * `(active + peerActive + 1) / effectiveWeight`, the +1 counting the session being placed.
 * Nearly as even as least-connections, O(1) at any number of backends, and without its herd
 * behaviour: several workers or instances with stale counts do not all pick the same backend.
 */
export const select: BalancerSelect = (candidates) => {
  const n = candidates.length;
  if (n === 1) return candidates[0];
  const i = (Math.random() * n) | 0;
  let j = (Math.random() * (n - 1)) | 0;
  if (j >= i) j++;
  const a = candidates[i]!;
  const b = candidates[j]!;
  // Compared without division. A tie keeps `a`, itself a random draw.
  return (b.active + b.peerActive + 1) * a.effectiveWeight < (a.active + a.peerActive + 1) * b.effectiveWeight
    ? b
    : a;
};

export default definePlugin({
  name: 'p2c',
  kind: 'balancer',
  description: 'Power of two random choices on sessions per weight (Envoy least-request).',
  schema: { type: 'object', additionalProperties: false, properties: {} },
  apply(service) {
    service.hooks.select.tap('p2c', select);
  },
});
