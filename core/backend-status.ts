import type { Backend } from './types.js';

/**
 * What a status value in `backend.status[source]` means for new sessions:
 * - `none`: the backend takes no new sessions (filtered out of `candidates`).
 * - `limited`: it takes some (trial sessions of a half-open breaker, a slow-start ramp).
 * - `all`: it takes its full share.
 */
export type StatusEffect = 'none' | 'limited' | 'all';

/**
 * Every status value the built-in plugins set, with its effect and who sets it. Third-party
 * plugins use these words so the admin API (`/readyz`), connection pools, the dashboard and
 * the cluster's merge of worker statuses understand them. docs/hooks.md lists them; a test
 * keeps both in step.
 */
export const BACKEND_STATUSES = Object.freeze({
  up: { effect: 'all', setBy: 'health-check' },
  down: { effect: 'none', setBy: 'health-check' },
  closed: { effect: 'all', setBy: 'circuit-breaker' },
  open: { effect: 'none', setBy: 'circuit-breaker' },
  'half-open': { effect: 'limited', setBy: 'circuit-breaker' },
  /** Reserved for an outlier-ejecting balancer modifier; no built-in plugin sets it yet. */
  ejected: { effect: 'none', setBy: null },
  /** A new or recovered backend's share ramps up (the slow-start modifier; cleared when done). */
  'slow-start': { effect: 'limited', setBy: 'slow-start' },
} as const satisfies Record<string, { effect: StatusEffect; setBy: string | null }>);

export type BackendStatus = keyof typeof BACKEND_STATUSES;

function withEffect(effect: StatusEffect): ReadonlySet<string> {
  return new Set(
    Object.entries(BACKEND_STATUSES)
      .filter(([, v]) => v.effect === effect)
      .map(([k]) => k),
  );
}

/** Statuses under which a backend takes no new sessions: `down`, `open`, `ejected`. */
export const NO_SESSION_STATUSES: ReadonlySet<string> = withEffect('none');

/** Statuses under which a backend takes only some sessions: `half-open`, `slow-start`. */
export const LIMITED_STATUSES: ReadonlySet<string> = withEffect('limited');

/**
 * Statuses that restrict a backend at all: no sessions or only some. Connection pools do not
 * prefill such a backend; in a cluster, one worker reporting one wins the merge of statuses.
 */
export const RESTRICTED_STATUSES: ReadonlySet<string> = new Set([
  ...NO_SESSION_STATUSES,
  ...LIMITED_STATUSES,
]);

/** Whether any plugin's status says the backend takes no new sessions (its `state` aside). */
export function hasNoSessionStatus(backend: Pick<Backend, 'status'>): boolean {
  for (const source in backend.status) if (NO_SESSION_STATUSES.has(backend.status[source]!)) return true;
  return false;
}

/** Whether any plugin's status restricts the backend: no sessions or only some. */
export function hasRestrictedStatus(backend: Pick<Backend, 'status'>): boolean {
  for (const source in backend.status) if (RESTRICTED_STATUSES.has(backend.status[source]!)) return true;
  return false;
}
