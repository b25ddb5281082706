import { definePlugin } from '../../plugin-sdk/index.js';
import { ConsistentHash, type ConsistentHashApi } from './balancer.js';
import {
  type ConsistentHashOptions,
  checkOptions,
  DEFAULT_RING_POINTS,
  DEFAULT_TABLE_SIZE,
  schema,
} from './options.js';

export type { ConsistentHashApi } from './balancer.js';
export const NAME = 'consistent-hash';

/**
 * Consistent hashing (Maglev or a hash ring) on the client address: the same key reaches the
 * same backend across sessions, processes and instances, and when a backend leaves only its
 * keys move. Keys of a backend that may not take sessions (down, open, full under
 * `bounded_load`) go to the next entry and come back when it can. See README.md.
 */
export default definePlugin<ConsistentHashOptions>({
  name: NAME,
  kind: 'balancer',
  description: 'Consistent hashing on the client address (Maglev or ring), with bounded load.',
  schema,
  check: checkOptions,
  apply(service, options) {
    const balancer = new ConsistentHash(service, {
      key: options.key,
      algorithm: options.algorithm,
      tableSize: options.table_size ?? DEFAULT_TABLE_SIZE,
      ringPoints: options.ring_points ?? DEFAULT_RING_POINTS,
      boundedLoad: options.bounded_load ?? 0,
    });
    const { hooks } = service;
    // The table follows the set of `up` backends and their effective weights; statuses do
    // not rebuild it (a down backend's keys walk on to the next entry and come back).
    hooks.backendAdded.tap(NAME, balancer.invalidate);
    hooks.backendRemoved.tap(NAME, balancer.invalidate);
    hooks.backendChanged.tap(NAME, balancer.invalidate);
    hooks.backendWeight.tap(NAME, balancer.invalidate);
    hooks.select.tap(NAME, balancer.select);
    hooks.stop.tap(NAME, () => balancer.stop());
    service.provide<ConsistentHashApi>(NAME, balancer.api());
  },
});
