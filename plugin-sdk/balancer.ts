import type { Backend, Session } from '../core/types.js';

/**
 * A balancer's `select` tap (plugins of `kind: 'balancer'`; exactly one per service). The
 * contract, in full in docs/plugin-sdk.md ("Writing a balancer"):
 *
 * - `candidates`: the backends this attempt may use — the registry's `up` backends after every
 *   `candidates` filter (health, breaker, limits) and without those this session already
 *   failed on. Never empty. When nothing was removed it is `service.backends.up` itself
 *   (compare by reference); otherwise a copy in the same order. Never mutate it, and keep no
 *   reference to it past the call.
 * - Return one element of `candidates` (the same object), or undefined to decline: the
 *   session then goes to `unavailable` (queue or refusal).
 * - Weights: read `backend.effectiveWeight` (the configured `weight` times modifier factors
 *   such as a slow-start ramp), never `weight`. It may be fractional. A balancer that caches
 *   something derived from weights refreshes it on `backendWeight` as well as on
 *   `backendAdded` / `backendRemoved` / `backendChanged`.
 * - Load: `backend.active + backend.peerActive` — sessions here (connecting or piping) plus
 *   the other workers' sessions in a cluster (0 with one process).
 * - Statuses are the filters' business: every candidate may take a session. A candidate with a
 *   `limited` status (half-open trial, slow-start) is limited through its filter or its
 *   `effectiveWeight`, not by the balancer.
 * - Runs per connect attempt: synchronous, no allocation on the common path, no I/O, no
 *   logging; heavy work (tables) happens in registry hooks or timers, off the hot path.
 */
export type BalancerSelect = (candidates: Backend[], session: Session) => Backend | undefined;
