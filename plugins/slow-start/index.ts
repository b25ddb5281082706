import { definePlugin } from '../../plugin-sdk/index.js';
import { NAME, SlowStart, type SlowStartApi } from './controller.js';
import { type SlowStartOptions, schema } from './options.js';

export type { RampInfo, SlowStartApi } from './controller.js';

/**
 * Slow start (Envoy `slow_start_config`, HAProxy `slowstart`): a backend that is added or
 * comes back up gets a share of its weight that grows over `window`, so a cold cache or a
 * fresh JIT is not handed a full share at once. A modifier, usable with any balancer: it
 * scales `effectiveWeight`, which every balancer reads. See README.md.
 */
export default definePlugin<SlowStartOptions>({
  name: NAME,
  description: 'Ramps the weight of new and recovered backends over a window (any balancer).',
  schema,
  apply(service, options) {
    const slowStart = new SlowStart(service, options);
    const { hooks } = service;
    hooks.backendAdded.tap(NAME, slowStart.added);
    hooks.backendRemoved.tap(NAME, slowStart.removed);
    hooks.backendChanged.tap(NAME, slowStart.changed);
    hooks.backendStatus.tap(NAME, slowStart.status);
    hooks.start.tap(NAME, () => slowStart.start());
    hooks.stop.tap(NAME, () => slowStart.stop());
    service.provide<SlowStartApi>(NAME, slowStart);
  },
});
