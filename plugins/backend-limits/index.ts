import type { Backend, Rejection, Session } from '../../plugin-sdk/index.js';
import { definePlugin, STAGE } from '../../plugin-sdk/index.js';
import type { BackendLimitsApi, LimitCounters } from './api.js';
import { LimitTable } from './limit-table.js';
import { type BackendLimitsOptions, canonicalOverrides, schema } from './options.js';
import { WAITER, WaitQueue } from './wait-queue.js';

export type { BackendLimitSnapshot, BackendLimitsApi, LimitCounters } from './api.js';

const NAME = 'backend-limits';
/** `session.data` mark: the balancer picked a full backend (overflow: refuse). */
const PICKED_FULL = 'backend-limits.picked-full';
const MAX_CONNECTIONS: Rejection = Object.freeze({ reason: 'max-connections' });
const NONE: Backend[] = [];

/**
 * Per-backend concurrency limits: `max_connections` sessions and `max_pending` connects in
 * progress. A session whose backend is full goes to another one, waits in a bounded FIFO queue
 * until a slot frees (HAProxy maxconn + queue + timeout queue), or is refused (Envoy overflow).
 */
export default definePlugin<BackendLimitsOptions>({
  name: NAME,
  description: 'Per-backend max connections / pending connects, with a bounded wait queue.',
  schema,
  apply(service, options) {
    const { hooks, backends } = service;
    const limits = new LimitTable(options, canonicalOverrides(options.backends));
    const counters: LimitCounters = {
      queued: 0,
      dequeued: 0,
      timeouts: 0,
      queueFull: 0,
      refused: 0,
      abandoned: 0,
      maxQueueLength: 0,
    };
    const queue = new WaitQueue(options.queue_size, options.queue_timeout, counters);
    const queueing = options.overflow === 'queue';

    const anyFull = (): boolean => {
      for (const b of backends.up) if (limits.isFull(b)) return true;
      return false;
    };
    /** Wakes as many waiters as there are free slots not yet promised to woken ones. */
    const pump = (): void => {
      if (queue.length === 0) return;
      const room = limits.room(backends.up) - queue.promised;
      if (room > 0) queue.wake(room);
    };

    hooks.backendAdded.tap(NAME, (backend) => {
      limits.add(backend);
      pump();
    });
    hooks.backendRemoved.tap(NAME, (backend) => limits.remove(backend));
    hooks.backendChanged.tap(NAME, pump);

    if (options.overflow === 'refuse') {
      // Keep the balancer's choice (hashing, affinity): wrap its pick rather than filter.
      hooks.select.intercept({
        register: (tap) => {
          const pick = tap.fn as (candidates: Backend[], session: Session) => Backend | undefined;
          return {
            ...tap,
            fn: (candidates: Backend[], session: Session) => {
              const backend = pick(candidates, session);
              if (backend === undefined || !limits.isFull(backend)) return backend;
              limits.overflowed(backend);
              session.data[PICKED_FULL] = true;
              return undefined;
            },
          };
        },
      });
    } else {
      hooks.candidates.tap(NAME, (list, session) => {
        // FIFO: while others wait, a new session queues behind them instead of taking a slot.
        if (queueing && !queue.admitted(session) && queue.length > 0 && session.attempts === 0) return NONE;
        let out: Backend[] | null = null;
        for (let i = 0; i < list.length; i++) {
          const b = list[i]!;
          if (limits.isFull(b)) {
            limits.overflowed(b);
            if (out === null) out = list.slice(0, i);
          } else if (out !== null) {
            out.push(b);
          }
        }
        return out ?? list;
      });
    }

    hooks.unavailable.tapPromise(NAME, async (session) => {
      if (options.overflow === 'refuse') {
        if (session.data[PICKED_FULL] !== true) return undefined;
        session.data[PICKED_FULL] = undefined;
        counters.refused++;
        return MAX_CONNECTIONS;
      }
      if (queueing ? queue.length === 0 && !anyFull() : !anyFull()) return undefined;
      if (!queueing) {
        counters.refused++;
        return MAX_CONNECTIONS;
      }
      // Only a newcomer triggers a pump: a woken session that found no room after all (the free
      // slot was on a backend another plugin filters out) waits for the next real release, or
      // it would be woken again at once, in a loop.
      const fresh = session.data[WAITER] === undefined;
      const answer = queue.wait(session);
      if (fresh) pump();
      return answer;
    });

    // STAGE.OBSERVE: a pool or TLS plugin may bail out of `connect`, and every connect must count.
    hooks.connect.tap({ name: NAME, stage: STAGE.OBSERVE }, (session, backend) => {
      limits.connecting(session, backend);
      return undefined;
    });
    hooks.established.tap(NAME, (session) => {
      if (queueing) queue.connectEnded(session);
      if (limits.connectEnded(session)) pump();
    });
    hooks.connectFailed.tap(NAME, (session) => {
      if (queueing) queue.connectEnded(session);
      limits.connectEnded(session);
      pump();
    });
    hooks.closed.tap(NAME, (session) => {
      limits.connectEnded(session);
      if (queueing) queue.closed(session);
      pump();
    });
    hooks.stop.tap(NAME, () => queue.clear());

    const api: BackendLimitsApi = {
      overflow: options.overflow,
      queueLength: () => queue.length,
      backends: () => backends.list().map((b) => limits.snapshot(b)),
      counters,
    };
    service.provide(NAME, api);
  },
});
