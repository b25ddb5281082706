import { type Backend, LIMITED_STATUSES, NO_SESSION_STATUSES, type Service } from '../../plugin-sdk/index.js';

/**
 * The one word the page shows for a backend: whether it takes new sessions, and why not.
 * - `up`: takes its full share.
 * - `draining`: an operator drained it; open sessions continue, no new ones.
 * - `removed`: gone from the registry; its open sessions finish.
 * - `down`: a health check (or another plugin's `down`) marked it down.
 * - `ejected`: a circuit breaker is open (or a plugin ejected it as an outlier).
 * - `half-open`: the breaker lets a few trial sessions through.
 * - `ramping`: slow start: its share grows back to its weight.
 * - `at-limit`: backend-limits' `max_connections` (or `max_pending`) is reached.
 */
export type ConditionState =
  | 'up'
  | 'draining'
  | 'removed'
  | 'down'
  | 'ejected'
  | 'half-open'
  | 'ramping'
  | 'at-limit';

export interface Condition {
  state: ConditionState;
  /** Whether it takes new sessions: all of its share, some, or none. */
  takes: 'all' | 'some' | 'none';
  /** Why, in a few words (who set it). */
  reason: string;
  /**
   * Slow start: the share reached, percent of the weight (absent when unknown). In a cluster
   * primary the mean over the workers, which ramp from the same events.
   */
  ramp?: number;
}

/** The part of `service.use('backend-limits')` read here. */
export interface LimitsView {
  backends?: () => Array<{
    backend: string;
    active: number;
    pending: number;
    maxConnections: number;
    full: boolean;
  }>;
}

/** The restricting status with the strongest effect, as [source, status]. */
function restricting(backend: Backend, set: ReadonlySet<string>): [string, string] | undefined {
  for (const source in backend.status) {
    const status = backend.status[source]!;
    if (set.has(status)) return [source, status];
  }
  return undefined;
}

/**
 * The backend's condition, strongest first: the registry's state, then statuses that stop new
 * sessions (health, breaker, outlier), then those that limit them (half-open, slow start), then
 * backend-limits. `full` is the backend-limits verdict, looked up by the caller once per poll.
 */
export function conditionOf(
  backend: Backend,
  limit: { active: number; pending: number; maxConnections: number; full: boolean } | undefined,
): Condition {
  if (backend.state === 'removed')
    return { state: 'removed', takes: 'none', reason: 'removed from the registry; open sessions finish' };
  if (backend.state === 'draining')
    return { state: 'draining', takes: 'none', reason: 'drained by an operator; open sessions continue' };
  const none = restricting(backend, NO_SESSION_STATUSES);
  if (none !== undefined) {
    const [source, status] = none;
    if (status === 'down') return { state: 'down', takes: 'none', reason: `${source}: down` };
    return { state: 'ejected', takes: 'none', reason: `${source}: ${status}` };
  }
  const some = restricting(backend, LIMITED_STATUSES);
  if (some !== undefined) {
    const [source, status] = some;
    if (status === 'half-open')
      return { state: 'half-open', takes: 'some', reason: `${source}: half-open, trial sessions only` };
    const c: Condition = { state: 'ramping', takes: 'some', reason: `${source}: share ramping up` };
    if (backend.effectiveWeight < backend.weight)
      c.ramp = Math.round((backend.effectiveWeight / backend.weight) * 100);
    return c;
  }
  if (limit?.full === true)
    return {
      state: 'at-limit',
      takes: 'none',
      reason: `backend-limits: ${limit.active} sessions, ${limit.pending} connecting (max_connections ${limit.maxConnections || '∞'})`,
    };
  return { state: 'up', takes: 'all', reason: 'takes new sessions' };
}

/** backend-limits' view of each backend of a service, by address (empty without the plugin). */
export function limitsOf(
  service: Service,
): Map<string, NonNullable<ReturnType<NonNullable<LimitsView['backends']>>>[number]> {
  const out = new Map();
  try {
    for (const b of service.use<LimitsView>('backend-limits')?.backends?.() ?? []) out.set(b.backend, b);
  } catch {
    // another plugin's bug must not take the page down
  }
  return out;
}
